"""Training and evaluation on in-memory columns (modules/trainer/train.py)."""

import numpy as np
import pytest
import tensorflow as tf

from modules.trainer import model as model_lib
from modules.trainer import train as trainer_lib
from nfrec import contracts
from pipeline import config as config_lib
from tests.conftest import called_once


def _hparams(**overrides):
  return config_lib.PRESETS["default"].replace(**overrides)


def test_evaluate_counts_hits_over_all_candidates_and_unseen_movies_as_misses():
  model = called_once(
    model_lib.build_model(3, 4, _hparams(embedding_dim=2, retrieval_bias=False, use_bias=False))
  )
  model.user_embedding.embeddings.assign([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
  model.movie_embedding.embeddings.assign(
    [[3.0, 0.0], [2.0, 1.0], [1.0, 2.0], [0.0, 3.0], [0.0, 0.0]]
  )
  # Ranks: (user 0, movie 0) -> 0, (user 0, movie 3) -> 3, (user 1, movie 2) -> 1,
  # (user 1, movie 4 = out of vocabulary) -> a miss whatever its score.
  dataset = tf.data.Dataset.from_tensor_slices(
    {
      contracts.USER_INDEX: tf.constant([0, 0, 1, 1], tf.int64),
      contracts.MOVIE_INDEX: tf.constant([0, 3, 2, 4], tf.int64),
      contracts.RATING_LABEL: tf.constant([5.0, 1.0, 4.0, 3.0]),
    }
  ).batch(3)
  metrics = trainer_lib.evaluate(model, dataset, num_movies=4, ks=(1, 2, 4))
  assert metrics["eval_examples"] == 4
  assert metrics["top_1_accuracy"] == 0.25  # only (0, 0)
  assert metrics["top_2_accuracy"] == 0.5  # and (1, 2)
  assert metrics["top_4_accuracy"] == 0.75  # all but the unseen movie
  errors = (
    model.predict_ratings(tf.constant([0, 0, 1, 1], tf.int64), tf.constant([0, 3, 2, 4], tf.int64))
    - tf.constant([5.0, 1.0, 4.0, 3.0])
  ).numpy()
  assert metrics["rmse"] == pytest.approx(float(np.sqrt(np.mean(errors**2))), rel=1e-5)
  assert metrics["mae"] == pytest.approx(float(np.mean(np.abs(errors))), rel=1e-5)


def _columns(num_examples, num_users, num_movies, seed):
  rng = np.random.default_rng(seed)
  users = rng.integers(0, num_users, num_examples)
  movies = rng.integers(0, num_movies, num_examples)
  ratings = np.where((users + movies) % 2 == 0, 5.0, 1.0).astype(np.float32)
  return {
    contracts.USER_INDEX: tf.constant(users, tf.int64),
    contracts.MOVIE_INDEX: tf.constant(movies, tf.int64),
    contracts.RATING_LABEL: tf.constant(ratings),
  }


def test_fit_trains_stops_early_and_reports_its_history():
  hparams = _hparams(
    batch_size=64,
    epochs=30,
    early_stopping_patience=1,
    early_stopping_min_delta=10.0,
    jit_compile=False,
    steps_per_execution=1,
  )
  model, metrics = trainer_lib.fit(
    _columns(512, 20, 15, seed=0), _columns(128, 20, 15, seed=1), 20, 15, hparams
  )
  # min_delta 10 on val_rmse: no epoch counts as better than the first, so patience 1
  # stops after the second epoch and the first epoch's weights are restored.
  assert metrics["epochs_run"] == 2
  assert len(metrics["history"]["val_rmse"]) == 2 and len(metrics["history"]["loss"]) == 2
  assert metrics["num_users"] == 20 and metrics["num_movies"] == 15
  assert 0 <= metrics[contracts.top_k_accuracy(10)] <= metrics[contracts.top_k_accuracy(100)] <= 1
  assert metrics["eval_examples"] == 128
  assert isinstance(model, model_lib.RecommenderModel)


def test_an_empty_split_is_a_clear_error():
  empty = _columns(0, 5, 5, seed=0)
  with pytest.raises(ValueError, match="The train split is empty"):
    trainer_lib.fit(empty, _columns(10, 5, 5, seed=1), 5, 5, _hparams())
  with pytest.raises(ValueError, match="The eval split is empty"):
    trainer_lib.fit(_columns(10, 5, 5, seed=1), empty, 5, 5, _hparams())


def test_every_configurable_strategy_exists():
  assert set(trainer_lib.DISTRIBUTION_STRATEGIES) == set(contracts.DISTRIBUTION_STRATEGIES)
  assert trainer_lib.distribution_strategy("default") is tf.distribute.get_strategy()
  with pytest.raises(ValueError, match="Unknown distribution strategy 'tpu'"):
    trainer_lib.distribution_strategy("tpu")
