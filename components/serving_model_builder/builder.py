"""Plain functions behind ServingModelBuilder (testable without a pipeline)."""

from __future__ import annotations

import glob
import logging
import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.types import artifact_utils
from tfx.utils import path_utils

from modules.serving import serving_model
from modules.transform import preprocessing as features

# Columns of the movie catalog CSV (Kaggle Netflix layout).
CATALOG_MOVIE_ID = "Movie_ID"
CATALOG_YEAR = "Year"
CATALOG_TITLE = "Name"


def example_files(examples_artifact, split: str | None = None) -> list[str]:
  splits = ([split] if split else
            artifact_utils.decode_split_names(examples_artifact.split_names))
  files = []
  for name in splits:
    files += sorted(glob.glob(os.path.join(
        artifact_utils.get_split_uri([examples_artifact], name), "*")))
  return files


def read_interactions(files: list[str]):
  """(user_index, movie_index, rating) numpy arrays of transformed examples."""
  spec = {name: tf.io.FixedLenFeature([], dtype) for name, dtype in (
      (features.USER_INDEX, tf.int64), (features.MOVIE_INDEX, tf.int64),
      (features.RATING, tf.float32))}
  dataset = (tf.data.TFRecordDataset(files, compression_type="GZIP")
             .batch(65_536).map(lambda batch: tf.io.parse_example(batch, spec)))
  columns = {name: [] for name in spec}
  for batch in dataset.as_numpy_iterator():
    for name in spec:
      columns[name].append(batch[name])
  return tuple(np.concatenate(columns[name]) if columns[name] else np.zeros(0)
               for name in spec)


def _first_value(feature) -> object:
  kind = feature.WhichOneof("kind")
  values = getattr(feature, kind).value if kind else []
  if not values:
    return None
  value = values[0]
  return value.decode("utf-8") if isinstance(value, bytes) else value


def read_catalog(files: list[str]) -> dict[str, tuple[str, int]]:
  """Movie_ID (as string) -> (title, year) from the catalog examples."""
  catalog = {}
  for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
    example = tf.train.Example.FromString(record)
    feature = example.features.feature
    movie_id = _first_value(feature[CATALOG_MOVIE_ID])
    year = _first_value(feature[CATALOG_YEAR])
    catalog[str(movie_id)] = (_first_value(feature[CATALOG_TITLE]) or "",
                              int(year) if year is not None else 0)
  return catalog


def build_index(core, movie_vocabulary: list[str], num_users: int,
                catalog: dict[str, tuple[str, int]], interactions) -> tuple[serving_model.IndexData, dict]:
  """IndexData for the serving model, and counts for the run report."""
  num_movies = len(movie_vocabulary)
  candidate_vectors = core.movie_vectors(tf.range(num_movies, dtype=tf.int64)).numpy()
  titled = [catalog.get(movie_id) for movie_id in movie_vocabulary]
  missing = sum(entry is None for entry in titled)
  if missing:
    logging.warning("%d rated movies are not in the movie catalog; they are served "
                    "with an empty title.", missing)
  stats = serving_model.interactions_index(*interactions, num_users=num_users,
                                           num_movies=num_movies)
  index = serving_model.IndexData(
      movie_ids=np.array(movie_vocabulary, dtype=object),
      titles=np.array([entry[0] if entry else "" for entry in titled], dtype=object),
      years=np.array([entry[1] if entry else 0 for entry in titled], dtype=np.int64),
      candidate_vectors=candidate_vectors.astype(np.float32), **stats)
  report = {"indexed_movies": num_movies, "known_users": num_users,
            "catalog_movies": len(catalog), "indexed_movies_without_title": missing,
            "training_interactions": int(stats["rated_movies"].size)}
  return index, report


def build_from_artifacts(model_uri: str, transform_graph_uri: str, transformed_examples, movies,
                         output_uri: str, top_k: int, rating_min: float, rating_max: float,
                         index_type: str = "brute_force", scann_candidates: int = 200) -> dict:
  tf_transform_output = tft.TFTransformOutput(transform_graph_uri)
  core = tf.saved_model.load(path_utils.serving_model_path(model_uri))
  movie_vocabulary = [token.decode("utf-8") if isinstance(token, bytes) else token
                      for token in tf_transform_output.vocabulary_by_name(
                          features.MOVIE_VOCABULARY)]
  num_users = tf_transform_output.vocabulary_size_by_name(features.USER_VOCABULARY)
  interactions = read_interactions(example_files(transformed_examples, "train"))
  index, report = build_index(core, movie_vocabulary, num_users,
                              read_catalog(example_files(movies)), interactions)
  model = serving_model.ServingModel(core, index, top_k, rating_min, rating_max,
                                     index_type=index_type, scann_candidates=scann_candidates)
  serving_model.save(model, path_utils.serving_model_path(output_uri))
  return report
