"""The Trainer's input: in-memory columns and their batches (modules/trainer/data.py)."""

import numpy as np
import pytest
import tensorflow as tf

from modules.trainer import data
from nfrec import contracts


def _columns(size):
  return {
    contracts.USER_INDEX: tf.range(size, dtype=tf.int64),
    contracts.MOVIE_INDEX: tf.range(size, dtype=tf.int64) % 3,
    contracts.RATING_LABEL: tf.cast(tf.range(size), tf.float32),
  }


def test_each_epoch_is_a_new_permutation_in_full_batches():
  dataset, steps = data.shuffled_batches(_columns(10), batch_size=4, seed=1)
  assert steps == 2  # 10 // 4: full batches only, one shape for XLA
  batches = list(dataset.take(3 * steps).as_numpy_iterator())
  assert all(batch[contracts.USER_INDEX].shape == (4,) for batch in batches)
  epochs = [
    np.concatenate([b[contracts.USER_INDEX] for b in batches[i : i + 2]]) for i in (0, 2, 4)
  ]
  for epoch in epochs:
    assert len(set(epoch.tolist())) == 8  # no example twice within an epoch
  assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch
  # Columns stay aligned: each row's movie and rating belong to its user.
  for batch in batches:
    np.testing.assert_array_equal(batch[contracts.MOVIE_INDEX], batch[contracts.USER_INDEX] % 3)
    np.testing.assert_array_equal(batch[contracts.RATING_LABEL], batch[contracts.USER_INDEX])


def test_same_seed_same_order():
  first, _ = data.shuffled_batches(_columns(10), batch_size=5, seed=3)
  again, _ = data.shuffled_batches(_columns(10), batch_size=5, seed=3)
  for a, b in zip(first.take(4), again.take(4), strict=True):
    np.testing.assert_array_equal(a[contracts.USER_INDEX], b[contracts.USER_INDEX])


def test_a_split_smaller_than_a_batch_is_one_batch():
  dataset, steps = data.shuffled_batches(_columns(3), batch_size=8, seed=0)
  assert steps == 1
  assert next(iter(dataset))[contracts.USER_INDEX].shape == (3,)


def test_in_order_batches_keep_every_example_in_order():
  batches = list(data.in_order_batches(_columns(5), batch_size=2).as_numpy_iterator())
  assert [b[contracts.USER_INDEX].tolist() for b in batches] == [[0, 1], [2, 3], [4]]


def test_training_statistics_count_movies_and_average_ratings():
  counts, mean = data.training_statistics(_columns(7), num_movies=4)
  assert counts.numpy().tolist() == [3, 2, 2, 0]
  assert mean == pytest.approx(3.0)
