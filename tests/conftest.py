"""Shared fixtures: a tiny data folder and a tiny serving model."""

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import synthetic_model
from modules import interactions
from modules.serving import serving_model
from nfrec import contracts
from nfrec.data import sample as sample_data

# Every component of the pipeline (the id each runs under), as the tests expect them.
PIPELINE_COMPONENTS = (
  "RatingsExampleGen",
  "MoviesExampleGen",
  "StatisticsGen",
  "ImportSchemaGen",
  "ExampleValidator",
  "MoviesStatisticsGen",
  "MoviesSchemaGen",
  "MoviesExampleValidator",
  "approved_statistics_resolver",
  "DistributionValidator",
  "DataGate",
  "Transform",
  "CatalogTransform",
  "Trainer",
  "ServingModelBuilder",
  "latest_blessed_model_resolver",
  "Evaluator",
  "RetrievalEvaluator",
  "Pusher",
  "BatchRecommender",
)

TINY_SAMPLE = sample_data.SampleSpec(
  num_users=300, num_movies=120, mean_ratings_per_user=20.0, seed=7
)


def pytest_collection_modifyitems(items):
  """The whole-pipeline tests first: the longest, so under `-n` (make test) they start at
  once, each file on a worker, while the other workers take the unit tests."""
  items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
  """A small Netflix-layout data folder (ratings/ and movies/)."""
  root = tmp_path_factory.mktemp("tiny_data")
  sample_data.write(str(root), TINY_SAMPLE)
  return str(root)


# A tiny serving model: real model code, untrained weights, hand-made vocabularies.
USERS = ["10", "20", "30"]  # vocabulary order (most active first)
MOVIES = ["100", "200", "300", "400"]  # the movie vocabulary (movies with training ratings)
# The catalog also has a movie nobody rated yet: a candidate from its title and year.
CATALOG = synthetic_model.synthetic_catalog(
  MOVIES + ["500"],
  ["Hamlet", "Hamlet", "Heat", "Up", "Heat Returns"],
  [1948, 1996, 1995, 2009, 2006],
)
# Known ratings (vocabulary indices): user 0 rated movies 0 then 1, user 1 movie 0.
KNOWN = interactions.Ratings(
  user=np.array([0, 0, 1]),
  movie=np.array([0, 1, 0]),
  rating=np.array([5.0, 3.0, 4.0], np.float32),
  time=np.array([1, 2, 3]),
)
INTERACTIONS = (KNOWN.user, KNOWN.movie, KNOWN.rating)
TOP_K = 4


@pytest.fixture(scope="session")
def core(tmp_path_factory):
  directory = str(tmp_path_factory.mktemp("core"))
  return tf.saved_model.load(synthetic_model.export_core(directory, USERS, MOVIES, CATALOG))


def tiny_serving_model(core, index_type="brute_force"):
  return synthetic_model.serving_model_from(
    core, len(USERS), MOVIES, CATALOG, KNOWN, top_k=TOP_K, index_type=index_type
  )


def save_serving_model(model, tmp_path_factory, name) -> str:
  """Saves a serving model as version 1 of a fresh model base path; returns the version."""
  export_dir = str(tmp_path_factory.mktemp(name) / "1")
  serving_model.save(model, export_dir)
  return export_dir


@pytest.fixture(scope="session")
def saved_model_dir(core, tmp_path_factory):
  """The tiny serving model (top 4), as the Pusher would write it."""
  return save_serving_model(tiny_serving_model(core), tmp_path_factory, "serving")


def called_once(model):
  """A Keras model after one call on one (user, movie) pair, so its variables exist."""
  model(
    {
      contracts.USER_INDEX: tf.constant([0], tf.int64),
      contracts.MOVIE_INDEX: tf.constant([0], tf.int64),
    }
  )
  return model
