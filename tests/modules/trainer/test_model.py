import numpy as np
import pytest
import tensorflow as tf

from modules.trainer import model as model_lib
from nfrec import contracts
from pipeline import config as config_lib
from tests.conftest import called_once

NUM_USERS, NUM_MOVIES = 40, 30


def _hparams(preset="default", **overrides):
  return config_lib.PRESETS[preset].replace(**overrides)


def _batches(num_examples=512, batch_size=128, seed=0):
  rng = np.random.default_rng(seed)
  users = rng.integers(0, NUM_USERS, num_examples)
  movies = rng.integers(0, NUM_MOVIES, num_examples)
  # A learnable signal: the rating depends on the parity of user and movie.
  ratings = np.where((users + movies) % 2 == 0, 5.0, 1.0).astype(np.float32)
  return tf.data.Dataset.from_tensor_slices(
    {contracts.USER_INDEX: users, contracts.MOVIE_INDEX: movies, contracts.RATING_LABEL: ratings}
  ).batch(batch_size)


@pytest.mark.parametrize("preset", sorted(config_lib.PRESETS))
def test_every_preset_builds_and_trains_a_step(preset):
  model = model_lib.build_model(
    NUM_USERS,
    NUM_MOVIES,
    _hparams(preset),
    movie_counts=np.arange(1, NUM_MOVIES + 1),
    global_mean=3.0,
  )
  history = model.fit(_batches(), epochs=1, verbose=0)
  assert np.isfinite(history.history["loss"][0])
  user_vectors, movie_vectors, ratings = model(next(iter(_batches())))
  assert user_vectors.shape[0] == movie_vectors.shape[0] == ratings.shape[0] == 128
  assert user_vectors.shape[1] == movie_vectors.shape[1]


def test_training_lowers_the_rating_error():
  model = model_lib.build_model(
    NUM_USERS,
    NUM_MOVIES,
    _hparams(learning_rate=0.02),
    movie_counts=np.ones(NUM_MOVIES),
    global_mean=3.0,
  )
  first = model.evaluate(_batches(), return_dict=True, verbose=0)["rmse"]
  model.fit(_batches(), epochs=30, verbose=0)
  assert model.evaluate(_batches(), return_dict=True, verbose=0)["rmse"] < 0.5 * first


def test_retrieval_bias_is_folded_into_the_vectors():
  model = called_once(model_lib.build_model(NUM_USERS, NUM_MOVIES, _hparams(retrieval_bias=True)))
  model.movie_retrieval_bias.embeddings.assign(tf.fill([NUM_MOVIES + 1, 1], 0.5))
  users = tf.constant([0, 1], tf.int64)
  movies = tf.constant([2, 3], tf.int64)
  scores = tf.reduce_sum(model.user_vectors(users) * model.movie_vectors(movies), axis=1)
  dot = tf.reduce_sum(model.user_embedding(users) * model.movie_embedding(movies), axis=1)
  np.testing.assert_allclose(scores, dot + 0.5, rtol=1e-5)


def test_retrieval_ranks_count_better_scored_candidates():
  model = called_once(model_lib.build_model(3, 4, _hparams(embedding_dim=2, retrieval_bias=False)))
  model.user_embedding.embeddings.assign([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
  model.movie_embedding.embeddings.assign(
    [[3.0, 0.0], [2.0, 1.0], [1.0, 2.0], [0.0, 3.0], [0.0, 0.0]]
  )
  ranks = model_lib.retrieval_ranks(
    model,
    tf.constant([0, 0, 1], tf.int64),
    tf.constant([0, 3, 2], tf.int64),
    model_lib.candidate_vectors(model, num_movies=4),
  )
  assert ranks.numpy().tolist() == [0, 3, 1]


def test_l2_per_epoch_is_spread_over_the_steps_of_an_epoch():
  assert model_lib.embedding_l2(_hparams(l2=1e-4, l2_per_epoch=0.0), steps_per_epoch=400) == 1e-4
  assert model_lib.embedding_l2(_hparams(l2_per_epoch=0.012), steps_per_epoch=40) == pytest.approx(
    3e-4
  )
  assert model_lib.embedding_l2(_hparams(l2_per_epoch=0.012), steps_per_epoch=400) == pytest.approx(
    3e-5
  )
  model = model_lib.build_model(3, 4, config_lib.PRESETS["default"], steps_per_epoch=40)
  assert model.user_embedding.embeddings_regularizer.l2 == pytest.approx(3e-4)
