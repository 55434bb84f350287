"""Plain functions behind ServingModelBuilder (testable without a pipeline)."""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.types import artifact_utils
from tfx.utils import path_utils

from modules.serving import serving_model
from modules.transform import examples
from nfrec import contracts


def _first_value(feature) -> object:
  kind = feature.WhichOneof("kind")
  values = getattr(feature, kind).value if kind else []
  if not values:
    return None
  value = values[0]
  return value.decode("utf-8") if isinstance(value, bytes) else value


def read_catalog(movies_examples) -> dict[str, tuple[str, int]]:
  """Movie_ID (as string) -> (title, year) from the catalog examples (every split)."""
  files = [
    path
    for split in artifact_utils.decode_split_names(movies_examples.split_names)
    for path in sorted(tf.io.gfile.glob(examples.split_pattern(movies_examples, split)))
  ]
  catalog = {}
  for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
    feature = tf.train.Example.FromString(record).features.feature
    movie_id = _first_value(feature[contracts.MOVIE_ID])
    year = _first_value(feature[contracts.YEAR])
    catalog[str(movie_id)] = (
      _first_value(feature[contracts.TITLE]) or "",
      int(year) if year is not None else 0,
    )
  return catalog


def build_index(
  core,
  movie_vocabulary: list[str],
  num_users: int,
  catalog: dict[str, tuple[str, int]],
  interactions,
) -> tuple[serving_model.IndexData, dict]:
  """IndexData for the serving model, and counts for the run report."""
  num_movies = len(movie_vocabulary)
  candidate_vectors = core.movie_vectors(tf.range(num_movies, dtype=tf.int64)).numpy()
  titled = [catalog.get(movie_id) for movie_id in movie_vocabulary]
  missing = sum(entry is None for entry in titled)
  if missing:
    logging.warning(
      "%d rated movies are not in the movie catalog; they are served with an empty title.", missing
    )
  stats = serving_model.interactions_index(
    *interactions, num_users=num_users, num_movies=num_movies
  )
  index = serving_model.IndexData(
    movie_ids=np.array(movie_vocabulary, dtype=object),
    titles=np.array([entry[0] if entry else "" for entry in titled], dtype=object),
    years=np.array([entry[1] if entry else 0 for entry in titled], dtype=np.int64),
    candidate_vectors=candidate_vectors.astype(np.float32),
    **stats,
  )
  report = {
    "indexed_movies": num_movies,
    "known_users": num_users,
    "catalog_movies": len(catalog),
    "indexed_movies_without_title": missing,
    "training_interactions": int(stats["rated_movies"].size),
  }
  return index, report


def build_from_artifacts(
  model_uri: str,
  transform_graph_uri: str,
  transformed_examples,
  movies,
  output_uri: str,
  top_k: int,
  rating_min: float,
  rating_max: float,
  index_type: str,
  scann_candidates: int,
) -> dict:
  tf_transform_output = tft.TFTransformOutput(transform_graph_uri)
  core = tf.saved_model.load(path_utils.serving_model_path(model_uri))
  movie_vocabulary = [
    token.decode("utf-8") if isinstance(token, bytes) else token
    for token in tf_transform_output.vocabulary_by_name(contracts.MOVIE_VOCABULARY)
  ]
  num_users = tf_transform_output.vocabulary_size_by_name(contracts.USER_VOCABULARY)
  interactions = examples.read_interactions(
    transformed_examples, "train", tf_transform_output.transformed_feature_spec()
  )
  index, report = build_index(core, movie_vocabulary, num_users, read_catalog(movies), interactions)
  model = serving_model.ServingModel(
    core,
    index,
    top_k,
    rating_min,
    rating_max,
    index_type=index_type,
    scann_candidates=scann_candidates,
  )
  serving_model.save(model, path_utils.serving_model_path(output_uri))
  return report
