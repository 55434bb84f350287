"""A serving model of any size without a pipeline run: the real model code with
untrained weights, synthetic vocabularies, a synthetic catalog and synthetic
training interactions, indexed by ServingModelBuilder's own `build_index`.

Used by the serving benchmark (17,770 and 1M-movie catalogs) and by the tests.
Latency does not depend on what the weights learned, only on the shapes.
"""

from __future__ import annotations

import os
import re

import numpy as np
import tensorflow as tf

from components.serving_model_builder import builder
from modules import interactions
from modules.serving import serving_model
from modules.trainer import export
from modules.trainer import model as model_lib
from modules.transform import examples
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


def synthetic_catalog(
  movie_ids: list[str], titles: list[str], years: list[int]
) -> examples.Catalog:
  """A Catalog as the catalog Transform would give it: every title word is a token,
  years cut into decades (0 = unknown)."""
  words = [re.findall(r"[a-z0-9]+", title.lower()) for title in titles]
  vocabulary = {word: i for i, word in enumerate(sorted({w for ws in words for w in ws}))}
  width = max([len(ws) for ws in words] + [1])
  tokens = np.zeros((len(titles), width), np.int64)
  for row, ws in enumerate(words):
    tokens[row, : len(ws)] = [vocabulary[w] + 1 for w in ws]
  years = np.asarray(years, np.int64)
  bucket = np.where(years > 0, np.clip((years - 1900) // 10, 0, contracts.YEAR_BUCKETS - 1) + 1, 0)
  return examples.Catalog(
    movie_ids=np.array(movie_ids, dtype=object),
    title_tokens=tokens,
    year_bucket=bucket.astype(np.int64),
    titles=np.array(titles, dtype=object),
    years=years,
    num_tokens=len(vocabulary) + 2,
    num_year_buckets=contracts.YEAR_BUCKETS + 1,
  )


def export_core(
  directory: str,
  users: list[str],
  movies: list[str],
  catalog: examples.Catalog,
  preset: str = "default",
  **overrides,
) -> str:
  """Exports an untrained core model (the Trainer's export) of the preset, with these
  hyperparameters overridden, and returns its path."""
  os.makedirs(directory, exist_ok=True)
  model = model_lib.build_model(
    len(users),
    len(movies),
    config_lib.PRESETS[preset].replace(**overrides),
    movie_counts=np.ones(len(movies)),
    global_mean=3.5,
    features=model_lib.MovieFeatures.for_vocabulary(catalog, movies),
  )
  export_dir = os.path.join(directory, "core_model")
  export.export_core_model(model, VocabularyFiles(directory, users, movies), export_dir)
  return export_dir


def serving_model_from(
  core,
  num_users: int,
  movies: list[str],
  catalog: examples.Catalog,
  known: interactions.Ratings,
  top_k: int,
  index_type: str = "brute_force",
) -> serving_model.ServingModel:
  """The serving model ServingModelBuilder builds over a (loaded) core model;
  `movies` is the movie vocabulary, `catalog` may hold more (cold) movies."""
  index, _ = builder.build_index(core, movies, num_users, catalog, known)
  return serving_model.ServingModel(
    core,
    index,
    top_k=top_k,
    rating_min=1.0,
    rating_max=5.0,
    index_type=index_type,
    scann_candidates=4 * top_k,
  )


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
  catalog = synthetic_catalog(
    movies,
    [f"Movie {rng.integers(1000)} of {rng.integers(1000)}" for _ in movies],
    rng.integers(1920, 2006, num_movies).tolist(),
  )
  # Zipf-popular rated movies, `ratings_per_user` per user (duplicates removed).
  popularity = 1.0 / np.arange(1, num_movies + 1) ** 0.9
  user_index = np.repeat(np.arange(num_users), ratings_per_user)
  movie_index = rng.choice(num_movies, user_index.size, p=popularity / popularity.sum())
  pairs = np.unique(user_index.astype(np.int64) * num_movies + movie_index)
  known = interactions.Ratings(
    user=pairs // num_movies,
    movie=pairs % num_movies,
    rating=rng.integers(1, 6, pairs.size).astype(np.float32),
    time=rng.integers(0, 10**9, pairs.size),
  )
  core = tf.saved_model.load(export_core(export_dir + ".core", users, movies, catalog))
  model = serving_model_from(
    core, num_users, movies, catalog, known, top_k=top_k, index_type=index_type
  )
  serving_model.save(model, export_dir)
  return export_dir
