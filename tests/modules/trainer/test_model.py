"""The TFRS model (modules/trainer/model.py): towers, history sums, the rating head."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from modules import interactions
from modules.trainer import data
from modules.trainer import model as model_lib
from nfrec import contracts
from pipeline import config as config_lib

NUM_USERS, NUM_MOVIES = 40, 30


def _hparams(preset="default", **overrides):
  return config_lib.PRESETS[preset].replace(**overrides)


def _ratings(num_examples=512, seed=0):
  rng = np.random.default_rng(seed)
  users = rng.integers(0, NUM_USERS, num_examples)
  movies = rng.integers(0, NUM_MOVIES, num_examples)
  # A learnable signal: the rating depends on the parity of user and movie.
  ratings = np.where((users + movies) % 2 == 0, 5.0, 1.0).astype(np.float32)
  return interactions.Ratings(users, movies, ratings, np.arange(num_examples))


def _batches(hparams, ratings):
  if hparams.history_window:
    return data.sequence_batches(
      ratings,
      NUM_USERS,
      NUM_MOVIES,
      hparams.batch_size,
      hparams.history_window,
      0,
      True,
      chunk=hparams.history_chunk,
    )
  return data.shuffled_batches(ratings, hparams.batch_size, 0)


def _model(hparams, movie_counts=None, **kwargs):
  counts = np.ones(NUM_MOVIES) if movie_counts is None else movie_counts
  return model_lib.build_model(
    NUM_USERS, NUM_MOVIES, hparams, movie_counts=counts, global_mean=3.0, **kwargs
  )


@pytest.mark.parametrize("preset", sorted(config_lib.PRESETS))
def test_every_preset_builds_and_trains_a_step(preset):
  hparams = _hparams(preset, batch_size=128)
  model = _model(hparams)
  dataset, steps = _batches(hparams, _ratings())
  history = model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
  assert np.isfinite(history.history["loss"][0])
  queries, candidates, ratings = model(next(iter(dataset)))
  assert queries.shape[0] == candidates.shape[0] == ratings.shape[0] == 128
  assert queries.shape[1] == candidates.shape[1]


def test_training_lowers_the_rating_error():
  # What the model can learn, so at a constant rate.
  hparams = _hparams(
    learning_rate=0.02, learning_rate_decay=1.0, batch_size=128, user_id_dropout=0.0
  )
  model = _model(hparams)
  dataset, steps = _batches(hparams, _ratings())

  def rmse():
    return model.evaluate(dataset, steps=steps, return_dict=True, verbose=0)[contracts.RMSE]

  first = rmse()
  model.fit(dataset, steps_per_epoch=steps, epochs=30, verbose=0)
  assert rmse() < 0.5 * first


def test_history_sums_of_a_sequence_equal_those_of_padded_histories():
  """Training (prefix sums over a user-ordered chunk) and serving (padded histories)
  describe a user by the same sums when a query pools the training window
  (query_history_window=0; a longer query window is tested below)."""
  hparams = _hparams(history_window=3, recent_window=2, query_history_window=0)
  model = _model(hparams)
  # One chunk: the OOV padding user, then user 1's five rows, then user 2's three.
  users = np.array([[NUM_USERS, 1, 1, 1, 1, 1, 2, 2, 2]])
  movies = np.array([[NUM_MOVIES, 4, 7, 1, 9, 4, 3, 8, 2]])
  ratings = np.array([[0.0, 5, 1, 3, 4, 2, 5, 5, 1]], np.float32)
  sequence = model.sequence_history_sums(
    tf.constant(users), tf.constant(movies), tf.constant(ratings)
  )
  for position in range(1, users.shape[1]):
    user = users[0, position]
    before = [p for p in range(position) if users[0, p] == user]
    padded = model.history_sums(
      tf.constant([movies[0, before] if before else [0]]),
      tf.constant([ratings[0, before] if before else [0.0]]),
      tf.constant([len(before)]),
    )
    for name, expected in padded._asdict().items():
      np.testing.assert_allclose(
        getattr(sequence, name)[0, position].numpy(),
        expected[0].numpy(),
        atol=1e-5,
        err_msg=f"{name} at position {position}",
      )
  # The window holds the last three rows before: user 1's fifth row sees rows 2-4.
  assert sequence.count[0, 5].numpy() == 3 and sequence.recent_count[0, 5].numpy() == 2


@pytest.mark.parametrize("query_window, pooled", [(0, 3), (5, 5), (100, 6)])
def test_a_query_pools_the_query_window_of_the_history(query_window, pooled):
  """Training pools at most history_window ratings; a query pools query_history_window
  (0: the same), counted back from the newest."""
  model = _model(_hparams(history_window=3, recent_window=2, query_history_window=query_window))
  movies = tf.constant([[4, 7, 1, 9, 4, 3]], tf.int64)
  ratings = tf.constant([[5.0, 1, 3, 4, 2, 5]])
  sums = model.history_sums(movies, ratings, tf.constant([6]))
  assert sums.count.numpy().tolist() == [pooled]
  assert sums.recent_count.numpy().tolist() == [2]
  vectors = model.history_embedding(movies[:, 6 - pooled :])
  np.testing.assert_allclose(sums.window.numpy(), tf.reduce_sum(vectors, 1).numpy(), atol=1e-5)


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_the_pooled_history_divides_each_sum_by_its_count_to_the_pooling_power(power):
  """1.0: the means; 0.5: a long history's pooled vector does not shrink toward its mean."""
  model = _model(_hparams(history_window=4, recent_window=2, history_pooling_power=power))
  movies = tf.constant([[4, 7, 1, 9], [2, 9, 0, 0]], tf.int64)
  sums = model.history_sums(movies, tf.constant([[5.0, 1, 3, 4], [4.0, 2, 0, 0]]), [4, 2])
  pooled = model.pooled_history(sums).numpy()
  dim = sums.window.shape[1]
  for part, (total, count) in enumerate(
    [(sums.window, sums.count), (sums.weighted, sums.count), (sums.recent, sums.recent_count)]
  ):
    expected = total.numpy() / count.numpy()[:, np.newaxis] ** power
    np.testing.assert_allclose(pooled[:, part * dim : (part + 1) * dim], expected, rtol=1e-5)
  assert sums.count.numpy().tolist() == [4, 2]


def test_an_mlp_on_the_pooled_history_adds_to_its_linear_projection():
  model = _model(
    _hparams(history_window=3, recent_window=2, user_hidden_units=(16,), rating_towers=False)
  )
  movies = tf.constant([[4, 7, 1], [2, 9, 0]], tf.int64)
  sums = model.history_sums(movies, tf.constant([[5.0, 1, 3], [4.0, 2, 0]]), tf.constant([3, 2]))
  users = tf.constant([1, 2], tf.int64)
  vector, _ = model.user_tower(users, sums)
  pooled = model.pooled_history(sums)
  linear = model.user_embedding(model.user_row(users)) + model.history_projection(pooled)
  nonlinear = (vector - linear).numpy()
  np.testing.assert_allclose(nonlinear, model.history_mlp(pooled), atol=1e-6)
  assert np.abs(nonlinear).max() > 0
  # ReLU: the term of the negated sums is not the negated term.
  negated = model.history_mlp(-pooled).numpy()
  assert not np.allclose(negated, -nonlinear, atol=1e-4)


def test_ids_without_training_ratings_and_dropped_ids_use_the_oov_row():
  trained = np.ones(NUM_USERS, bool)
  trained[3] = False
  model = _model(_hparams(user_id_dropout=0.5), trained_users=trained)
  rows = model.user_row(tf.constant([2, 3, NUM_USERS], tf.int64)).numpy()
  assert rows.tolist() == [2, NUM_USERS, NUM_USERS]
  # Dropout only in training, about the configured share.
  dropped = model.user_row(tf.range(NUM_USERS, dtype=tf.int64), training=True).numpy()
  assert 0.2 < (dropped == NUM_USERS).mean() < 0.8
  assert (model.user_row(tf.range(NUM_USERS, dtype=tf.int64)).numpy() < NUM_USERS).sum() == 39


def test_content_features_give_a_movie_without_ratings_its_own_vector():
  tokens = np.zeros((NUM_MOVIES + 1, 2), np.int64)
  tokens[0], tokens[1] = [1, 2], [3, 0]
  features = model_lib.MovieFeatures(tokens, np.arange(NUM_MOVIES + 1) % 4, 5, 4)
  model = _model(_hparams(), features=features)
  oov = tf.constant([NUM_MOVIES, NUM_MOVIES], tf.int64)
  vectors, _, _ = model.movie_tower(oov, tf.constant([[1, 2], [3, 0]]), tf.constant([0, 1]))
  # Both use the OOV id row; their titles and years tell them apart.
  assert not np.allclose(vectors[0].numpy(), vectors[1].numpy())
  # A vocabulary movie reads its own features when none are given.
  own, _, _ = model.movie_tower(tf.constant([0], tf.int64))
  given, _, _ = model.movie_tower(
    tf.constant([0], tf.int64), tf.constant([[1, 2]]), tf.constant([0])
  )
  np.testing.assert_allclose(own.numpy(), given.numpy(), atol=1e-6)


def test_retrieval_bias_is_folded_into_the_vectors():
  model = _model(_hparams(retrieval_bias=True, rating_towers=False))
  model.movie_retrieval_bias.embeddings.assign(tf.fill([NUM_MOVIES + 1, 1], 0.5))
  users, movies = tf.constant([0, 1], tf.int64), tf.constant([2, 3], tf.int64)
  user_vector, _ = model.user_tower(users)
  movie_vector, _, retrieval_bias = model.movie_tower(movies)
  scores = tf.reduce_sum(
    model.query(user_vector) * model.candidate(movie_vector, retrieval_bias), 1
  )
  dot = tf.reduce_sum(user_vector * movie_vector, axis=1)
  np.testing.assert_allclose(scores, dot + 0.5, rtol=1e-5)


def test_rating_factors_extend_the_vectors_but_not_the_retrieval_query():
  hparams = _hparams(rating_factors=4, embedding_dim=8, rating_towers=False)
  model = _model(hparams)
  user_vector, _ = model.user_tower(tf.constant([0], tf.int64))
  assert user_vector.shape[1] == 8 + 4
  assert model.query(user_vector).shape[1] == 8 + int(hparams.retrieval_bias)


def test_l2_per_epoch_is_spread_over_the_steps_of_an_epoch():
  assert model_lib.embedding_l2(_hparams(l2=1e-4, l2_per_epoch=0.0), steps_per_epoch=400) == 1e-4
  assert model_lib.embedding_l2(_hparams(l2_per_epoch=0.012), steps_per_epoch=40) == pytest.approx(
    3e-4
  )
  assert model_lib.embedding_l2(_hparams(l2_per_epoch=0.012), steps_per_epoch=400) == pytest.approx(
    3e-5
  )
  model = model_lib.build_model(3, 4, _hparams(l2_per_epoch=0.012, l2=0.0), steps_per_epoch=40)
  assert model.user_embedding.embeddings_regularizer.l2 == pytest.approx(3e-4)


def test_learning_rate_decay_lowers_the_rate_once_per_epoch():
  constant = _hparams(learning_rate=0.01, learning_rate_decay=1.0)
  assert model_lib.learning_rate(constant, steps_per_epoch=7) == 0.01
  hparams = _hparams(
    learning_rate=0.01, learning_rate_decay=0.5, learning_rate_decay_examples=0, batch_size=128
  )
  model = _model(hparams, steps_per_epoch=2)
  dataset, steps = _batches(hparams, _ratings(num_examples=256))
  assert steps == 2
  rates = []  # the rate of each epoch's last step
  record = tf.keras.callbacks.LambdaCallback(
    on_epoch_end=lambda epoch, logs: rates.append(float(model.optimizer.learning_rate))
  )
  model.fit(dataset, steps_per_epoch=steps, epochs=3, callbacks=[record], verbose=0)
  np.testing.assert_allclose(rates, [0.01, 0.005, 0.0025], rtol=1e-6)


def test_a_per_epoch_decay_without_the_steps_per_epoch_is_an_error():
  with pytest.raises(ValueError, match="needs the model's steps_per_epoch"):
    _model(_hparams(learning_rate_decay=0.5, learning_rate_decay_examples=0))


# Halved every 1,024 examples: every 8 steps of 128.
_HALVED_EVERY_8_STEPS = dict(
  learning_rate=0.01, learning_rate_decay=0.5, learning_rate_decay_examples=1024, batch_size=128
)


def test_learning_rate_decay_by_examples_is_smooth_and_ignores_epochs():
  hparams = _hparams(**_HALVED_EVERY_8_STEPS)
  schedule = model_lib.learning_rate(hparams, steps_per_epoch=3)
  # Halved at step 8, by sqrt(2) at step 4.
  np.testing.assert_allclose(
    [float(schedule(step)) for step in (0, 4, 8, 16)],
    [0.01, 0.01 / np.sqrt(2), 0.005, 0.0025],
    rtol=1e-6,
  )
  assert float(model_lib.learning_rate(hparams, steps_per_epoch=100)(8)) == float(schedule(8))


def test_a_decayed_rate_stops_at_its_floor():
  hparams = _hparams(**_HALVED_EVERY_8_STEPS, learning_rate_floor=0.003)
  schedule = model_lib.learning_rate(hparams, steps_per_epoch=3)
  # 0.01, 0.005, then 0.0025 would pass the floor.
  np.testing.assert_allclose(
    [float(schedule(step)) for step in (0, 8, 16, 80)], [0.01, 0.005, 0.003, 0.003], rtol=1e-6
  )
  assert model_lib.learning_rate(hparams.replace(learning_rate_decay=1.0), 3) == 0.01


def _same_weights(source, target):
  for variable, value in zip(target.trainable_variables, source.trainable_variables, strict=True):
    variable.assign(value)


def test_sampled_negatives_estimate_the_softmax_over_the_whole_catalog():
  """With logQ-corrected samples the loss converges to the catalog softmax's: many
  draws from a small catalog give the same loss as scoring every movie."""
  flat = dict(history_window=0, recent_window=0, batch_size=64, user_id_dropout=0.0)
  catalog = _model(_hparams(retrieval_candidates="all", **flat))
  sampled = _model(
    _hparams(
      retrieval_candidates="sampled",
      retrieval_negatives=200_000,
      negative_sampling_power=1.0,
      **flat,
    ),
    movie_counts=np.arange(NUM_MOVIES) ** 2,  # far from uniform: the correction matters
  )
  _same_weights(catalog, sampled)
  batch = next(iter(data.shuffled_batches(_ratings(), 64, 0)[0]))
  expected = catalog.compute_loss(batch).numpy()
  assert sampled.compute_loss(batch).numpy() == pytest.approx(expected, rel=0.01)


def test_negatives_are_drawn_in_proportion_to_the_ratings_to_a_power():
  counts = np.arange(NUM_MOVIES)
  hparams = _hparams(
    retrieval_candidates="sampled", retrieval_negatives=100_000, negative_sampling_power=0.5
  )
  model = model_lib.build_model(NUM_USERS, NUM_MOVIES, hparams, movie_counts=counts)
  expected = np.sqrt(counts + 1.0) / np.sqrt(counts + 1.0).sum()
  drawn = np.bincount(model.sample_negatives().numpy(), minlength=NUM_MOVIES + 1)
  assert drawn[NUM_MOVIES] == 0  # never the out-of-vocabulary row
  np.testing.assert_allclose(drawn[:NUM_MOVIES] / 100_000, expected, atol=0.004)


def test_a_users_rated_movies_in_the_batch_are_no_sampled_negatives():
  model = _model(_hparams(retrieval_candidates="sampled", retrieval_negatives=8))
  rng = np.random.default_rng(3)
  # Two chunks of width 6 (history + targets); the last 3 columns are the targets.
  chunk_users = rng.integers(0, 3, (2, 6))
  chunk_movies = rng.integers(0, 5, (2, 6))
  chunk_of_row = np.repeat([0, 1], 3)
  users, movies = chunk_users[:, 3:].reshape(-1), chunk_movies[:, 3:].reshape(-1)
  sampled = np.arange(NUM_MOVIES)
  rated = model._rated_in_batch(
    tf.constant(users),
    tf.constant(movies),
    (tf.constant(chunk_of_row), tf.constant(chunk_users), tf.constant(chunk_movies)),
    tf.constant(sampled),
  ).numpy()
  pairs = set(zip(chunk_users.reshape(-1), chunk_movies.reshape(-1), strict=True))
  expected = np.array([[(user, movie) in pairs for movie in sampled] for user in users])
  np.testing.assert_array_equal(rated, expected)
  assert rated.any() and not rated.all()


@pytest.mark.parametrize("temperature", [1.0, 0.2])
def test_the_catalog_softmax_is_tfrs_retrieval_loss_with_the_positives_first(temperature):
  model = _model(_hparams(retrieval_candidates="all", retrieval_temperature=temperature))
  rng = np.random.default_rng(5)
  queries, positives = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
  negatives, unrated = rng.normal(size=(9, 4)), rng.random((6, 9)) > 0.3
  loss = model._softmax_loss(
    tf.constant(queries, tf.float32),
    tf.constant(positives, tf.float32),
    tf.constant(negatives, tf.float32),
    tf.constant(unrated),
  )
  task = tfrs.tasks.Retrieval(
    loss=tf.keras.losses.CategoricalCrossentropy(
      from_logits=True, reduction=tf.keras.losses.Reduction.NONE
    ),
    temperature=temperature,
  )
  expected = task(
    tf.constant(queries, tf.float32),
    tf.constant(np.concatenate([positives, negatives]), tf.float32),
    compute_metrics=False,
    score_mask=tf.constant(np.concatenate([np.eye(6, dtype=bool), unrated], axis=1)),
  )
  np.testing.assert_allclose(loss.numpy(), expected.numpy(), rtol=1e-5)


@pytest.mark.parametrize("chunked", [True, False])
def test_the_whole_catalog_excludes_what_the_user_rated_in_the_chunk(chunked):
  model = _model(_hparams(retrieval_candidates="all"))
  rng = np.random.default_rng(4)
  # Three chunks of width 8 (history + targets), the last 3 columns targets; users in runs.
  chunk_users = np.sort(rng.integers(0, 4, (3, 8)), axis=1)
  chunk_movies = rng.integers(0, NUM_MOVIES, (3, 8))
  chunk_of_row = np.repeat([0, 1, 2], 3)
  users, movies = chunk_users[:, 5:].reshape(-1), chunk_movies[:, 5:].reshape(-1)
  chunks = (tf.constant(chunk_of_row), tf.constant(chunk_users), tf.constant(chunk_movies))
  if not chunked:  # a flat batch: the batch's own rows are the chunk
    chunks, chunk_of_row = None, np.zeros(len(users), np.int64)
    chunk_users, chunk_movies = users[np.newaxis], movies[np.newaxis]
  unrated = model._unrated_in_chunk(tf.constant(users), tf.constant(movies), chunks).numpy()
  expected = np.array(
    [
      [movie not in chunk_movies[chunk][chunk_users[chunk] == user] for movie in range(NUM_MOVIES)]
      for user, chunk in zip(users, chunk_of_row, strict=True)
    ]
  )
  np.testing.assert_array_equal(unrated, expected)
  assert not expected.all()


def test_a_catalog_no_larger_than_the_sample_is_scored_whole_and_exactly():
  flat = dict(history_window=0, recent_window=0, batch_size=64, user_id_dropout=0.0)
  catalog = _model(_hparams(retrieval_candidates="all", **flat))
  small = _model(_hparams(retrieval_candidates="sampled", retrieval_negatives=NUM_MOVIES, **flat))
  larger = _hparams(retrieval_candidates="sampled", retrieval_negatives=NUM_MOVIES - 1, **flat)
  assert small.scores_whole_catalog and not _model(larger).scores_whole_catalog
  _same_weights(catalog, small)
  batch = next(iter(data.shuffled_batches(_ratings(), 64, 0)[0]))
  expected = catalog.compute_loss(batch).numpy()
  assert small.compute_loss(batch).numpy() == small.compute_loss(batch).numpy() == expected


def _every_layer():
  """Hyperparameters and features that build every optional layer of the model."""
  hparams = _hparams(
    embedding_dim=8,
    rating_factors=4,
    rating_dot_product=True,
    user_hidden_units=(16,),
    batch_size=128,
    user_id_dropout=0.0,
  )
  tokens = (np.arange(NUM_MOVIES + 1)[:, np.newaxis] % 5 + [1, 2]).astype(np.int64)
  features = model_lib.MovieFeatures(tokens, np.arange(NUM_MOVIES + 1) % 4, 8, 4)
  return hparams, features


def _tower_variables(model):
  return {
    variable.name
    for name in model.TOWER_LAYERS
    for variable in getattr(model, name).trainable_variables
  }


@pytest.mark.parametrize("rating_towers", [False, True])
def test_the_retrieval_loss_reaches_exactly_the_tower_layers(rating_towers):
  # The rating stage freezes TOWER_LAYERS: that list must hold all retrieval reads.
  hparams, features = _every_layer()
  hparams = hparams.replace(rating_weight=0.0, rating_towers=rating_towers)
  model = _model(hparams, features=features)
  batch = next(iter(_batches(hparams, _ratings())[0]))
  with tf.GradientTape() as tape:
    loss = model.compute_loss(batch, training=True)
  gradients = tape.gradient(loss, model.trainable_variables)
  reached = {
    variable.name
    for variable, gradient in zip(model.trainable_variables, gradients, strict=True)
    if gradient is not None and np.any(tf.convert_to_tensor(gradient).numpy() != 0)
  }
  assert reached == _tower_variables(model)


def _trained_one_epoch(hparams, features):
  """(model trained one epoch, its dataset, its steps, a batch of it)."""
  model = _model(hparams, features=features)
  dataset, steps = _batches(hparams, _ratings())
  model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
  return model, dataset, steps, next(iter(dataset))


def test_the_rating_stage_trains_the_rating_head_and_leaves_retrieval_as_it_was():
  hparams, features = _every_layer()
  model, dataset, steps, batch = _trained_one_epoch(hparams, features)
  queries, candidates, ratings = model(batch)
  model.start_rating_stage(0.01)
  trainable = {variable.name for variable in model.trainable_variables}
  assert trainable and trainable.isdisjoint(_tower_variables(model))
  model.fit(dataset, steps_per_epoch=steps, epochs=2, verbose=0)
  after_queries, after_candidates, after_ratings = model(batch)
  np.testing.assert_array_equal(queries.numpy(), after_queries.numpy())
  np.testing.assert_array_equal(candidates.numpy(), after_candidates.numpy())
  assert not np.allclose(ratings.numpy(), after_ratings.numpy())


def _rating_tower_variables(model):
  return {
    variable.ref()
    for name in model.TOWER_LAYERS
    for variable in getattr(model, model_lib.RATING_PREFIX + name, tf.keras.layers.Layer()).weights
  }


def test_the_rating_towers_start_as_the_towers_then_train_on_the_rating_loss_alone():
  hparams, features = _every_layer()
  hparams = hparams.replace(rating_towers=True)
  model, dataset, steps, batch = _trained_one_epoch(hparams, features)
  queries, candidates, ratings = model(batch)
  model.start_rating_stage(0.01)
  # Copied from the towers: the head reads towers of its own that rate as those did.
  _, _, copied = model(batch)
  np.testing.assert_allclose(copied.numpy(), ratings.numpy(), rtol=1e-5, atol=1e-5)
  twins = _rating_tower_variables(model)
  trainable = {variable.ref() for variable in model.trainable_variables}
  # The twins of the id, history and content embeddings, the projection and the MLP.
  assert len(twins) == 9 and twins <= trainable
  assert {variable.name for variable in model.trainable_variables}.isdisjoint(
    _tower_variables(model)
  )
  before = {twin: twin.deref().numpy() for twin in twins}
  model.fit(dataset, steps_per_epoch=steps, epochs=2, verbose=0)
  after_queries, after_candidates, after_ratings = model(batch)
  np.testing.assert_array_equal(queries.numpy(), after_queries.numpy())
  np.testing.assert_array_equal(candidates.numpy(), after_candidates.numpy())
  assert not np.allclose(ratings.numpy(), after_ratings.numpy())
  moved = [twin for twin in twins if not np.allclose(before[twin], twin.deref().numpy())]
  assert len(moved) == len(twins)  # the rating towers learned, not only the head


def test_sparse_user_l2_regularizes_an_epoch_as_the_table_wide_l2_through_the_batch_rows():
  hparams = _hparams(l2_per_epoch=0.012, l2=0.0, sparse_user_l2=True, batch_size=128)
  ratings = _ratings()
  dataset, steps = _batches(hparams, ratings)
  counts = np.bincount(ratings.user, minlength=NUM_USERS)
  model = _model(hparams, steps_per_epoch=steps, user_counts=counts)
  rng = np.random.default_rng(0)
  model.user_bias.embeddings.assign(rng.normal(size=(NUM_USERS + 1, 1)).astype(np.float32))
  # No table-wide regularizer on the user tables (the movie side keeps its own).
  assert not model.user_embedding.losses and not model.user_bias.losses
  assert model.movie_embedding.losses

  epoch_penalty = 0.0
  for batch in dataset.take(steps):
    users = model._targets(batch)[0]
    epoch_penalty += float(tf.nn.compute_average_loss(model.user_row_l2(users)))
  rows = np.flatnonzero(counts)
  squares = (
    np.square(model.user_embedding.embeddings.numpy()[rows]).sum()
    + np.square(model.user_bias.embeddings.numpy()[rows]).sum()
  )
  assert epoch_penalty == pytest.approx(0.012 * squares, rel=1e-4)

  batch = next(iter(dataset))
  with tf.GradientTape() as tape:
    loss = model.compute_loss(batch, training=True)
  gradient = tape.gradient(loss, model.user_embedding.embeddings)
  assert isinstance(gradient, tf.IndexedSlices)  # only the batch's rows: LazyAdam skips the rest
  batch_rows = set(model._targets(batch)[0].numpy().tolist()) | {NUM_USERS}
  assert set(gradient.indices.numpy().tolist()) <= batch_rows


def test_without_sparse_user_l2_the_user_tables_keep_the_table_wide_l2():
  model = _model(_hparams(l2_per_epoch=0.012, sparse_user_l2=False), steps_per_epoch=10)
  assert model.user_embedding.losses and model.user_bias.losses
  assert not hasattr(model, "user_l2_weights")


def test_autograph_calls_tf_keras_as_it_is():
  # Else every first trace of a training step transpiles Keras's own code (seconds each).
  from tensorflow.python.autograph.impl import conversion

  assert conversion.is_allowlisted(tf.keras.layers.Dense.__call__)
  assert not conversion.is_allowlisted(model_lib.RecommenderModel.compute_loss)


def test_a_compiled_model_has_its_variables_and_the_optimizer_its_slots():
  # Made before the first step, so Keras's training step is traced once, not twice.
  def adam_slots(model):  # the step counter, then two slots per trainable variable
    return len(model.optimizer.variables) - 1

  model = model_lib.build_model(NUM_USERS, NUM_MOVIES, _hparams(rating_stage_epochs=1))
  trained = len(model.trainable_variables)
  assert adam_slots(model) == 2 * trained > 0
  model.start_rating_stage(0.001)  # a fresh optimizer, for the stage's variables only
  assert 0 < len(model.trainable_variables) < trained
  assert adam_slots(model) == 2 * len(model.trainable_variables)
