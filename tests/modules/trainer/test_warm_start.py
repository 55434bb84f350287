"""Warm start from the last blessed serving model, rows carried over by id."""

import numpy as np
import pytest
import tensorflow as tf

from modules.trainer import model as model_lib
from modules.trainer import warm_start
from pipeline import config as config_lib
from tests.conftest import CATALOG, MOVIES, USERS


@pytest.fixture(scope="module")
def previous(saved_model_dir):
  return warm_start.Previous.load(saved_model_dir)


def test_the_last_model_is_read_back_with_its_vocabularies(previous, saved_model_dir):
  assert previous.user_ids == USERS and previous.movie_ids == MOVIES
  served = tf.saved_model.load(saved_model_dir).core.model
  np.testing.assert_array_equal(
    previous.weights["user_embedding/embeddings"], served.user_embedding.embeddings.numpy()
  )


def test_ids_in_both_vocabularies_keep_their_rows_new_ids_start_fresh(previous):
  # The new run's vocabularies: user 30 is now first, 40 is new; movie 500 is new.
  users, movies = ["30", "40", "10"], ["200", "100", "500"]
  model = model_lib.build_model(
    len(users),
    len(movies),
    config_lib.PRESETS["default"],
    features=model_lib.MovieFeatures.for_vocabulary(CATALOG, movies),
  )
  fresh_user_rows = model.user_embedding.embeddings.numpy().copy()
  report = warm_start.warm_start(model, previous, users, movies)
  assert report["remapped_users"] == 2 and report["remapped_movies"] == 2
  old_users = previous.weights["user_embedding/embeddings"]
  new_users = model.user_embedding.embeddings.numpy()
  np.testing.assert_array_equal(new_users[0], old_users[USERS.index("30")])
  np.testing.assert_array_equal(new_users[2], old_users[USERS.index("10")])
  np.testing.assert_array_equal(new_users[1], fresh_user_rows[1])  # 40: fresh
  np.testing.assert_array_equal(new_users[-1], old_users[-1])  # the OOV row
  old_history = previous.weights["history_embedding/embeddings"]
  np.testing.assert_array_equal(
    model.history_embedding.embeddings.numpy()[1], old_history[MOVIES.index("100")]
  )
  # Shared layers are copied as they are; data-derived constants are this run's.
  np.testing.assert_array_equal(
    model.history_projection.kernel.numpy(), previous.weights["history_projection/kernel"]
  )
  assert report["copied"] > 0
  assert model.trained_users.numpy().tolist() == [True] * 3
  # Every constant derived from the data (not trained) is rebuilt, never carried over.
  constants = {
    path.split("/")[0]
    for path, variable in warm_start.variable_paths(model).items()
    if not variable.trainable
  }
  assert "negative_probability" in constants and constants <= set(warm_start.NOT_CARRIED)
