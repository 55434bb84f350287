"""Shared fixtures: a tiny data folder and a tiny serving model."""

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import synthetic_model
from modules.serving import serving_model
from modules.trainer import export
from modules.trainer import model as model_lib
from nfrec import contracts
from nfrec.data import sample as sample_data
from pipeline import config as config_lib

# Every component of the pipeline (the id each runs under), as the tests expect them.
PIPELINE_COMPONENTS = (
  "RatingsExampleGen",
  "MoviesExampleGen",
  "StatisticsGen",
  "ImportSchemaGen",
  "ExampleValidator",
  "DataGate",
  "Transform",
  "Trainer",
  "ServingModelBuilder",
  "latest_blessed_model_resolver",
  "Evaluator",
  "RetrievalEvaluator",
  "Pusher",
)

TINY_SAMPLE = sample_data.SampleSpec(
  num_users=300, num_movies=120, mean_ratings_per_user=20.0, seed=7
)


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
  """A small Netflix-layout data folder (ratings/ and movies/)."""
  root = tmp_path_factory.mktemp("tiny_data")
  sample_data.write(str(root), TINY_SAMPLE)
  return str(root)


# A tiny serving model: real model code, untrained weights, hand-made vocabularies.
USERS = ["10", "20", "30"]  # vocabulary order (most active first)
MOVIES = ["100", "200", "300", "400"]


@pytest.fixture(scope="session")
def core(tmp_path_factory):
  directory = tmp_path_factory.mktemp("core")
  model = model_lib.build_model(
    len(USERS),
    len(MOVIES),
    config_lib.PRESETS["default"],
    movie_counts=np.ones(len(MOVIES)),
    global_mean=3.5,
  )
  model(
    {
      contracts.USER_INDEX: tf.constant([0], tf.int64),
      contracts.MOVIE_INDEX: tf.constant([0], tf.int64),
    }
  )
  export_dir = str(directory / "core_model")
  export.export_core_model(
    model, synthetic_model.VocabularyFiles(str(directory), USERS, MOVIES), export_dir
  )
  return tf.saved_model.load(export_dir)


# Training interactions (vocabulary indices): user 0 rated movies 0 and 1, user 1 movie 0.
INTERACTIONS = (np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([5.0, 3.0, 4.0], np.float32))


def tiny_index(core):
  """The serving model's index over MOVIES, with INTERACTIONS as the training ratings."""
  stats = serving_model.interactions_index(*INTERACTIONS, num_users=3, num_movies=4)
  return serving_model.IndexData(
    movie_ids=np.array(MOVIES, dtype=object),
    titles=np.array(["Hamlet", "Hamlet", "Heat", "Up"], dtype=object),
    years=np.array([1948, 1996, 1995, 2009]),
    candidate_vectors=core.movie_vectors(tf.range(4, dtype=tf.int64)).numpy(),
    **stats,
  )


def save_serving_model(model, tmp_path_factory, name) -> str:
  """Saves a serving model as version 1 of a fresh model base path; returns the version."""
  export_dir = str(tmp_path_factory.mktemp(name) / "1")
  serving_model.save(model, export_dir)
  return export_dir


@pytest.fixture(scope="session")
def saved_model_dir(core, tmp_path_factory):
  """A tiny serving model (top 3), as the Pusher would write it."""
  return save_serving_model(
    serving_model.ServingModel(core, tiny_index(core), top_k=3, rating_min=1.0, rating_max=5.0),
    tmp_path_factory,
    "serving",
  )


def called_once(model):
  """A Keras model after one call on one (user, movie) pair, so its variables exist."""
  model(
    {
      contracts.USER_INDEX: tf.constant([0], tf.int64),
      contracts.MOVIE_INDEX: tf.constant([0], tf.int64),
    }
  )
  return model
