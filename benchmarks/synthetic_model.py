"""A serving model of any size without a pipeline run: the real model code with
untrained weights, synthetic vocabularies and synthetic training interactions.

Used by the serving benchmark (17,770 and 1M-movie catalogs) and by the tests.
Latency does not depend on what the weights learned, only on the shapes.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from modules.serving import serving_model
from modules.trainer import export
from modules.trainer import model as model_lib
from nfrec import contracts
from pipeline import config as config_lib


class VocabularyFiles:
  """Stands in for tft.TFTransformOutput: the three methods the core model uses."""

  def __init__(self, directory: str, users: list[str], movies: list[str]):
    self._files = {}
    for name, tokens in ((contracts.USER_VOCABULARY, users), (contracts.MOVIE_VOCABULARY, movies)):
      path = os.path.join(directory, name)
      with open(path, "w") as f:
        f.write("\n".join(tokens) + "\n")
      self._files[name] = (path, len(tokens))

  def vocabulary_file_by_name(self, name):
    return self._files[name][0]

  def vocabulary_size_by_name(self, name):
    return self._files[name][1]

  def raw_feature_spec(self):
    return {name: tf.io.FixedLenFeature([], tf.int64) for name in contracts.RATINGS_COLUMNS}


def export_core(
  directory: str, users: list[str], movies: list[str], preset: str = "default"
) -> str:
  """Exports an untrained core model (the Trainer's export) and returns its path."""
  os.makedirs(directory, exist_ok=True)
  model = model_lib.build_model(
    len(users),
    len(movies),
    config_lib.PRESETS[preset],
    movie_counts=np.ones(len(movies)),
    global_mean=3.5,
  )
  model(
    {
      contracts.USER_INDEX: tf.constant([0], tf.int64),
      contracts.MOVIE_INDEX: tf.constant([0], tf.int64),
    }
  )
  export_dir = os.path.join(directory, "core_model")
  export.export_core_model(model, VocabularyFiles(directory, users, movies), export_dir)
  return export_dir


def build_serving_model(
  export_dir: str,
  num_users: int,
  num_movies: int,
  ratings_per_user: int = 200,
  index_type: str = "brute_force",
  top_k: int = 10,
  seed: int = 0,
) -> str:
  """Writes a serving model over a synthetic catalog to `export_dir`; returns it."""
  rng = np.random.default_rng(seed)
  users = [str(1_000_000 + i) for i in range(num_users)]
  movies = [str(i + 1) for i in range(num_movies)]
  core = tf.saved_model.load(export_core(export_dir + ".core", users, movies))
  # Zipf-popular rated movies, `ratings_per_user` per user (duplicates removed).
  popularity = 1.0 / np.arange(1, num_movies + 1) ** 0.9
  user_index = np.repeat(np.arange(num_users), ratings_per_user)
  movie_index = rng.choice(num_movies, user_index.size, p=popularity / popularity.sum())
  pairs = np.unique(user_index.astype(np.int64) * num_movies + movie_index)
  user_index, movie_index = pairs // num_movies, pairs % num_movies
  stats = serving_model.interactions_index(
    user_index,
    movie_index,
    rng.integers(1, 6, pairs.size).astype(np.float32),
    num_users=num_users,
    num_movies=num_movies,
  )
  index = serving_model.IndexData(
    movie_ids=np.array(movies, dtype=object),
    titles=np.array([f"Movie {m}" for m in movies], dtype=object),
    years=rng.integers(1920, 2006, num_movies),
    candidate_vectors=core.movie_vectors(tf.range(num_movies, dtype=tf.int64)).numpy(),
    **stats,
  )
  model = serving_model.ServingModel(
    core, index, top_k=top_k, rating_min=1.0, rating_max=5.0, index_type=index_type
  )
  serving_model.save(model, export_dir)
  return export_dir
