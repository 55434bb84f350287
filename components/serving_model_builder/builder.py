"""Plain functions behind ServingModelBuilder (testable without a pipeline).

The serving model answers with precomputed vectors: each known user's query
from their whole known history (train and validation: everything before the
eval period), and every catalog movie's candidate vector, the movies without
a training rating included (from their title and year).
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.types import artifact_utils
from tfx.utils import path_utils

from modules import interactions
from modules.cold_movies import candidate_rows, place_cold_bias
from modules.serving import serving_model, warmup
from modules.transform import examples
from nfrec import contracts

CHUNK = 4096  # users or movies per tower call
# Padded history entries per user-tower call (interactions.calls_by_length): users with
# long histories go fewer to a call, so the embedded rows stay bounded.
HISTORY_ROWS_PER_CALL = 4096 * 256


def user_vectors(core, histories: interactions.Histories, num_users: int) -> dict[str, np.ndarray]:
  """The user tower's output for every vocabulary user, from their histories."""
  window = int(core.history_window)
  users = np.arange(num_users, dtype=np.int64)
  # Users of alike history lengths share a call, so a call pads little (the query window
  # is up to 4,096 ratings; most users have far fewer).
  calls = interactions.calls_by_length(
    np.minimum(histories.lengths(users), window), CHUNK, HISTORY_ROWS_PER_CALL
  )
  if not calls:
    return {
      "query": np.zeros((0, 1), np.float32),
      "vector": np.zeros((0, 1), np.float32),
      "bias": np.zeros((0,), np.float32),
    }
  parts: dict[str, list] = {"query": [], "vector": [], "bias": []}
  for call in calls:
    movies, ratings, length = histories.padded(users[call], max(window, 1))
    out = core.user_tower(
      tf.constant(users[call]), tf.constant(movies), tf.constant(ratings), tf.constant(length)
    )
    for name in parts:
      parts[name].append(out[name].numpy())
  order = np.concatenate(calls)
  return {
    name: interactions.placed(np.concatenate(values), order) for name, values in parts.items()
  }


def movie_vectors(
  core, num_vocabulary_movies: int, rows: list, catalog: examples.Catalog, movie_counts=None
) -> dict:
  """The movie tower's output for every candidate, from its catalog features;
  `movie_counts` (known ratings per vocabulary movie) place the cold movies' bias."""
  if movie_counts is None:
    movie_counts = np.ones(num_vocabulary_movies)
  tokens, years = catalog.features_at(rows)
  index = np.minimum(np.arange(len(rows)), num_vocabulary_movies)  # cold movies: the OOV row
  parts: dict[str, list] = {"candidate": [], "vector": [], "bias": [], "retrieval_bias": []}
  for part in interactions.slices(len(rows), CHUNK):
    out = core.movie_tower(
      tf.constant(index[part]), tf.constant(tokens[part]), tf.constant(years[part])
    )
    for name in parts:
      parts[name].append(out[name].numpy())
  result = {name: np.concatenate(values) for name, values in parts.items()}
  place_cold_bias(
    result["candidate"], num_vocabulary_movies, movie_counts, bool(core.has_retrieval_bias.numpy())
  )
  return result


def build_index(
  core,
  movie_vocabulary: list[str],
  num_users: int,
  catalog: examples.Catalog,
  known: interactions.Ratings,
) -> tuple[serving_model.IndexData, dict]:
  """IndexData for the serving model, and counts for the run report. `known` is every
  rating before the eval period (train and validation)."""
  num_movies = len(movie_vocabulary)
  ids, rows = candidate_rows(movie_vocabulary, catalog)
  missing = sum(row < 0 for row in rows)
  if missing:
    logging.warning(
      "%d rated movies are not in the movie catalog; they are served with an empty title.",
      missing,
    )
  users = user_vectors(core, interactions.Histories(known, num_users), num_users)
  stats = serving_model.interactions_index(
    known.user, known.movie, known.rating, num_users=num_users, num_movies=num_movies
  )
  movies = movie_vectors(core, num_movies, rows, catalog, stats["movie_counts"])
  cold = len(ids) - num_movies
  pad = lambda values, fill: np.concatenate([values, np.full(cold, fill, values.dtype)])  # noqa: E731
  titled = np.asarray(rows) >= 0
  index = serving_model.IndexData(
    movie_ids=np.array(ids, dtype=object),
    titles=np.where(
      titled, catalog.titles[np.asarray(rows)] if len(catalog.titles) else "", ""
    ).astype(object),
    years=np.where(titled, catalog.years[np.asarray(rows)] if len(catalog.years) else 0, 0).astype(
      np.int64
    ),
    candidate_vectors=movies["candidate"].astype(np.float32),
    movie_vectors=movies["vector"].astype(np.float32),
    movie_biases=movies["bias"].astype(np.float32),
    movie_counts=pad(stats["movie_counts"], 0),
    movie_mean_rating=pad(stats["movie_mean_rating"], np.float32(stats["global_mean_rating"])),
    user_queries=users["query"].astype(np.float32),
    user_vectors=users["vector"].astype(np.float32),
    user_biases=users["bias"].astype(np.float32),
    user_mean_rating=stats["user_mean_rating"],
    global_mean_rating=stats["global_mean_rating"],
    rated_row_splits=stats["rated_row_splits"],
    rated_movies=stats["rated_movies"],
    num_vocabulary_movies=num_movies,
  )
  report = {
    "indexed_movies": len(ids),
    "movies_without_ratings": cold,
    "known_users": num_users,
    "catalog_movies": len(catalog.movie_ids),
    "indexed_movies_without_title": missing,
    "known_interactions": int(stats["rated_movies"].size),
  }
  return index, report


def _split_patterns(examples_artifact) -> list[str]:
  return [
    examples.split_pattern(examples_artifact, split)
    for split in artifact_utils.decode_split_names(examples_artifact.split_names)
  ]


def build_from_artifacts(
  model_uri: str,
  transform_graph_uri: str,
  transformed_examples,
  catalog_examples,
  catalog_transform_graph_uri: str,
  output_uri: str,
  top_k: int,
  rating_min: float,
  rating_max: float,
  index_type: str,
  scann_candidates: int,
  model_name: str,
) -> dict:
  tf_transform_output = tft.TFTransformOutput(transform_graph_uri)
  core = tf.saved_model.load(path_utils.serving_model_path(model_uri))
  movie_vocabulary = [
    token.decode("utf-8")
    for token in tf_transform_output.vocabulary_by_name(contracts.MOVIE_VOCABULARY)
  ]
  num_users = tf_transform_output.vocabulary_size_by_name(contracts.USER_VOCABULARY)
  spec = tf_transform_output.transformed_feature_spec()
  known = interactions.Ratings.from_columns(
    examples.read_columns(
      [
        examples.split_pattern(transformed_examples, split)
        for split in (contracts.TRAIN, contracts.VALIDATION)
      ],
      spec,
    )
  )
  catalog = examples.read_catalog(
    _split_patterns(catalog_examples), tft.TFTransformOutput(catalog_transform_graph_uri)
  )
  index, report = build_index(core, movie_vocabulary, num_users, catalog, known)
  model = serving_model.ServingModel(
    core,
    index,
    top_k,
    rating_min,
    rating_max,
    index_type=index_type,
    scann_candidates=scann_candidates,
  )
  export_dir = path_utils.serving_model_path(output_uri)
  serving_model.save(model, export_dir)
  users = tf_transform_output.vocabulary_by_name(contracts.USER_VOCABULARY)
  warmup.write(
    export_dir,
    model_name,
    user_id=users[0].decode() if len(users) else "",
    movie_ids=movie_vocabulary[:3] or [""],
  )
  return report
