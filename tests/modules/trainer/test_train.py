"""Training, selection on validation and the refit (modules/trainer/train.py)."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from modules import cold_movies, interactions
from modules.trainer import model as model_lib
from modules.trainer import progress
from modules.trainer import train as trainer_lib
from nfrec import contracts
from pipeline import config as config_lib


def _hparams(**overrides):
  return config_lib.PRESETS["default"].replace(**overrides)


def _ids_only_hparams():
  """Two-dimensional id embeddings and nothing else: scores a test can set by hand."""
  return _hparams(
    embedding_dim=2,
    history_window=0,
    content_features=False,
    retrieval_bias=False,
    use_bias=False,
    rating_factors=0,
  )


def _ratings(users, movies, ratings, time=None):
  return interactions.Ratings(
    np.asarray(users, np.int64),
    np.asarray(movies, np.int64),
    np.asarray(ratings, np.float32),
    np.arange(len(users)) if time is None else np.asarray(time),
  )


def test_validation_ranks_every_movie_excludes_the_history_and_rates_known_pairs():
  hparams = _ids_only_hparams()
  model = model_lib.build_model(3, 4, hparams)
  model.user_embedding.embeddings.assign([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
  model.movie_embedding.embeddings.assign(
    [[3.0, 0.0], [2.0, 1.0], [1.0, 2.0], [0.0, 3.0], [0.0, 0.0]]
  )
  # Scores: user 0 ranks movies 0 > 1 > 2 > 3; user 1 ranks 3 > 2 > 1 > 0.
  history = _ratings([0, 1], [0, 3], [5.0, 5.0])
  # User 0 liked 1 (rank 1 once 0, rated, is excluded); user 1 liked 0 (last); the
  # pair (1, movie 4 = out of vocabulary) is never rated nor retrieved.
  validation = _ratings([0, 1, 1], [1, 0, 4], [5.0, 4.0, 2.0])
  metrics = trainer_lib.Validation(history, validation, 3, 4, seed=0)(model)
  assert metrics[contracts.recall_at(10)] == pytest.approx(1.0)  # 4 movies: all in the top 10
  assert metrics["users_with_relevant"] == 2
  user_vector, user_bias = model.user_tower(tf.constant([0, 1], tf.int64))
  movie_vector, movie_bias, _ = model.movie_tower(tf.constant([1, 0], tf.int64))
  errors = model.rate(user_vector, user_bias, movie_vector, movie_bias).numpy() - [5.0, 4.0]
  assert metrics[contracts.RMSE] == pytest.approx(float(np.sqrt(np.mean(errors**2))), rel=1e-5)
  assert metrics[contracts.MAE] == pytest.approx(float(np.mean(np.abs(errors))), rel=1e-5)


def test_validation_ranks_the_cold_catalog_movies_as_the_served_index_does():
  """A catalog movie without ratings is a candidate at serving (the OOV row, its title
  and year): validation ranks it too, so it can push a rated movie out of the top 10."""
  hparams = _ids_only_hparams()
  model = model_lib.build_model(2, 11, hparams)
  model.user_embedding.embeddings.assign([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
  # Movie i scores 11 - i for user 0; the OOV row (the cold movie's) scores 20.
  model.movie_embedding.embeddings.assign([[11.0 - i, 0.0] for i in range(11)] + [[20.0, 0.0]])
  history = _ratings([0, 1], [0, 1], [5.0, 5.0])  # movie 0 is excluded for user 0
  validation = _ratings([0], [10], [5.0])  # the 10th of the 10 unrated vocabulary movies
  cold = cold_movies.ColdMovies(np.zeros((1, 1), np.int64), np.zeros(1, np.int64))
  rated_only = trainer_lib.Validation(history, validation, 2, 11, seed=0)
  with_cold = trainer_lib.Validation(history, validation, 2, 11, seed=0, cold=cold)
  assert rated_only(model)[contracts.recall_at(10)] == pytest.approx(1.0)
  assert with_cold(model)[contracts.recall_at(10)] == pytest.approx(0.0)
  assert with_cold.candidates(model).tolist()[-1] == [20.0, 0.0]


def test_a_cold_movie_in_validation_has_the_popularity_term_of_half_a_rating():
  hparams = _hparams(embedding_dim=2, history_window=0, content_features=False, rating_factors=0)
  model = model_lib.build_model(2, 3, hparams)
  model.movie_retrieval_bias.embeddings.assign([[1.0], [2.0], [3.0], [9.0]])  # OOV row: 9
  history = _ratings([0, 0, 1, 0, 1, 0], [0, 1, 1, 2, 2, 2], [5.0] * 6)  # counts 1, 2, 3
  cold = cold_movies.ColdMovies(np.zeros((1, 1), np.int64), np.zeros(1, np.int64))
  candidates = trainer_lib.Validation(history, history, 2, 3, seed=0, cold=cold).candidates(model)
  expected = cold_movies.cold_retrieval_bias(np.array([1.0, 2.0, 3.0]), np.array([1, 2, 3]))
  assert candidates[:3, -1].tolist() == [1.0, 2.0, 3.0]
  assert candidates[3, -1] == pytest.approx(expected) and expected < 1.0  # never the OOV's 9


def _signal(num_examples, num_users, num_movies, seed):
  rng = np.random.default_rng(seed)
  users = rng.integers(0, num_users, num_examples)
  movies = rng.integers(0, num_movies, num_examples)
  return _ratings(users, movies, np.where((users + movies) % 2 == 0, 5.0, 1.0))


def test_fit_selects_on_validation_stops_early_and_refits_on_both():
  hparams = _hparams(
    batch_size=64,
    epochs=30,
    early_stopping_monitor="val_rmse",
    early_stopping_patience=1,
    early_stopping_min_delta=10.0,
    refit_on_validation=True,
    rating_stage_epochs=0,  # the stage has its own test below
  )
  trained = trainer_lib.fit(
    _signal(512, 20, 15, seed=0), _signal(128, 20, 15, seed=1), 20, 15, hparams
  )
  # min_delta 10 on val_rmse: no epoch counts as better than the first, so patience 1
  # stops after the second epoch; the first is selected, and the refit runs it once.
  assert len(trained.history["loss"]) == 2 and len(trained.history["val_rmse"]) == 2
  assert trained.epochs == 1
  assert trained.metrics[contracts.RMSE] == pytest.approx(trained.history["val_rmse"][0])
  assert set(trained.seconds) == {"selection", "refit"}
  assert 0 <= trained.metrics[contracts.recall_at(10)] <= 1
  assert isinstance(trained.model, model_lib.RecommenderModel)


def test_recall_is_maximised_and_rmse_minimised():
  hparams = _hparams(
    batch_size=64,
    epochs=3,
    early_stopping_patience=5,
    refit_on_validation=False,
    rating_stage_epochs=0,
  )
  for monitor in ("val_recall_at_10", "val_rmse"):
    trained = trainer_lib.fit(
      _signal(512, 20, 15, seed=0),
      _signal(128, 20, 15, seed=1),
      20,
      15,
      hparams.replace(early_stopping_monitor=monitor),
    )
    values = trained.history[monitor]
    best = (max if "recall" in monitor else min)(values)
    assert trained.history[monitor][trained.epochs - 1] == best
    assert "refit" not in trained.seconds


def test_empty_splits_are_clear_errors():
  empty = _ratings([], [], [])
  with pytest.raises(ValueError, match="The train split is empty"):
    trainer_lib.fit(empty, _signal(10, 5, 5, seed=1), 5, 5, _hparams())
  with pytest.raises(ValueError, match="The validation split is empty"):
    trainer_lib.fit(_signal(10, 5, 5, seed=1), empty, 5, 5, _hparams())


def test_every_configurable_strategy_exists():
  assert set(trainer_lib.DISTRIBUTION_STRATEGIES) == set(contracts.DISTRIBUTION_STRATEGIES)
  assert trainer_lib.distribution_strategy("default") is tf.distribute.get_strategy()
  with pytest.raises(ValueError, match="Unknown distribution strategy 'tpu'"):
    trainer_lib.distribution_strategy("tpu")


@pytest.mark.parametrize("rating_towers", [False, True])
def test_the_rating_stage_keeps_its_best_epoch_by_validation_rmse_and_the_refit_repeats_it(
  caplog, rating_towers
):
  hparams = _hparams(
    batch_size=64,
    epochs=2,
    early_stopping_patience=1,
    refit_on_validation=True,
    rating_stage_epochs=4,
    rating_stage_learning_rate=0.01,
    rating_towers=rating_towers,
  )
  with caplog.at_level(logging.INFO, logger=contracts.PROGRESS_LOGGER):
    trained = trainer_lib.fit(
      _signal(512, 20, 15, seed=0), _signal(128, 20, 15, seed=1), 20, 15, hparams
    )
  stage = trained.rating_stage
  selected = trained.epochs - 1
  rmse = stage.history["val_rmse"]
  # The head learns the parity signal further: the stage's best epoch beats the selection.
  assert 1 <= stage.epochs <= len(rmse) and rmse[stage.epochs - 1] == min(rmse)
  assert trained.metrics[contracts.RMSE] == pytest.approx(min(rmse))
  assert min(rmse) < trained.history["val_rmse"][selected]
  # Retrieval is the selected epoch's: the towers did not move.
  assert trained.metrics[contracts.recall_at(10)] == pytest.approx(
    trained.history["val_recall_at_10"][selected]
  )
  refit_stage = [
    record
    for record in caplog.records
    if record.levelno == logging.INFO and record.progress["phase"] == progress.REFIT_RATING_STAGE
  ]
  assert len(refit_stage) == stage.epochs
  assert set(trained.seconds) == {"selection", "rating_stage", "refit"}


@pytest.mark.parametrize("rating_towers", [False, True])
def test_a_rating_stage_that_does_not_help_leaves_the_selected_model(rating_towers):
  # With rating towers, "as it was" is the towers' copy, not the untrained twins.
  hparams = _hparams(
    batch_size=64,
    epochs=2,
    early_stopping_patience=1,
    refit_on_validation=False,
    rating_stage_epochs=2,
    rating_stage_learning_rate=1000.0,  # diverges
    rating_towers=rating_towers,
  )
  train, validation = _signal(512, 20, 15, seed=0), _signal(128, 20, 15, seed=1)
  trained = trainer_lib.fit(train, validation, 20, 15, hparams)
  selected = trained.history["val_rmse"][trained.epochs - 1]
  assert trained.rating_stage.epochs == 0
  assert not any(rmse <= selected for rmse in trained.rating_stage.history["val_rmse"])  # or NaN
  assert trained.metrics[contracts.RMSE] == pytest.approx(selected)
  again = trainer_lib.Validation(train, validation, 20, 15, seed=hparams.seed)(trained.model)
  assert again[contracts.RMSE] == pytest.approx(selected, rel=1e-5)


def test_only_a_gain_beyond_validation_noise_lowers_the_squared_error():
  rng = np.random.default_rng(0)
  before = rng.normal(0.0, 1.0, 10_000)
  assert trainer_lib.lowers_squared_error(before, 0.9 * before)
  assert not trainer_lib.lowers_squared_error(before, before)
  assert not trainer_lib.lowers_squared_error(0.9 * before, before)
  # Each pair moved at random, the squared errors 0.2 % lower on average: noise.
  noisy = before + rng.normal(0.0, 0.3, before.size)
  noisy *= np.sqrt(0.998 * np.mean(before**2) / np.mean(noisy**2))
  assert np.mean(noisy**2) < np.mean(before**2)
  assert not trainer_lib.lowers_squared_error(before, noisy)


@pytest.mark.parametrize("chunk", [4, 16])
def test_history_chunk_sets_the_targets_per_chunk_of_the_training_batches(chunk):
  hparams = _hparams(batch_size=64, history_window=8, history_chunk=chunk)
  dataset, steps = trainer_lib._batches(_signal(512, 20, 15, seed=0), 20, 15, hparams)
  batch = next(iter(dataset))
  # batch_size // chunk stretches, each the history window followed by `chunk` targets.
  assert batch[contracts.USER_INDEX].shape == (64 // chunk, 8 + chunk)
  assert steps == 512 // 64


@pytest.mark.parametrize("query_window", [0, 6])
def test_validation_queries_pool_the_query_window_of_each_history(query_window):
  hparams = _hparams(history_window=3, recent_window=1, query_history_window=query_window)
  model = model_lib.build_model(2, 8, hparams)
  # User 0 rated six movies (oldest first), user 1 one.
  history = _ratings([0, 0, 0, 0, 0, 0, 1], [1, 2, 3, 4, 5, 6, 7], [5.0, 1, 4, 2, 3, 5, 4])
  histories = interactions.Histories(history, 2)
  queries, _, _ = trainer_lib.user_queries(model, histories, np.array([0, 1]))
  pooled = query_window or 3
  movies = tf.constant([[1, 2, 3, 4, 5, 6][-pooled:]], tf.int64)
  ratings = tf.constant([[5.0, 1, 4, 2, 3, 5][-pooled:]])
  sums = model.history_sums(movies, ratings, tf.constant([pooled]))
  expected, _ = model.user_tower(tf.constant([0], tf.int64), sums)
  np.testing.assert_allclose(queries[0], model.query(expected)[0].numpy(), atol=1e-5)


def test_validation_queries_keep_the_order_of_the_users_asked_for():
  """Users are grouped into calls by history length; the outputs follow `users`."""
  model = model_lib.build_model(20, 15, _hparams())
  histories = interactions.Histories(_signal(300, 20, 15, seed=1), 20)
  users = np.array([7, 3, 19, 0, 11])
  queries, vectors, biases = trainer_lib.user_queries(model, histories, users)
  for position, user in enumerate(users):
    one = trainer_lib.user_queries(model, histories, np.array([user]))
    np.testing.assert_allclose(queries[position], one[0][0], atol=1e-5)
    np.testing.assert_allclose(vectors[position], one[1][0], atol=1e-5)
    np.testing.assert_allclose(biases[position], one[2][0], atol=1e-5)


def test_validation_rates_pairs_in_bounded_calls_with_the_same_errors():
  """Large validation splits are rated a slice of pairs at a time; the errors do not
  depend on the slice size (the default preset: history and title words)."""
  tokens = np.random.default_rng(0).integers(0, 9, (16, 3))
  features = model_lib.MovieFeatures(tokens, np.arange(16) % 4, 9, 4)
  model = model_lib.build_model(20, 15, _hparams(), features=features)
  history = _signal(300, 20, 15, seed=1)
  validation = trainer_lib.Validation(history, _signal(101, 20, 15, seed=2), 20, 15, seed=0)
  users = np.unique(validation.pairs.user)
  _, vectors, biases = trainer_lib.user_queries(model, validation.histories, users)
  whole = validation._errors(model, users, vectors, biases, pairs_per_call=len(validation.pairs))
  sliced = validation._errors(model, users, vectors, biases, pairs_per_call=7)
  assert whole.shape == sliced.shape == (101,)
  np.testing.assert_allclose(sliced, whole, atol=1e-5)
  np.testing.assert_allclose(validation.rating_errors(model), whole, atol=1e-5)
