"""The Trainer's input: in-memory columns and their batches (modules/trainer/data.py)."""

import numpy as np
import pytest

from modules import interactions
from modules.trainer import data
from nfrec import contracts


def _ratings(size, num_users=None, seed=0):
  """Row i: user i (or a random one of num_users), movie i % 3, rating i, time i."""
  rng = np.random.default_rng(seed)
  users = np.arange(size) if num_users is None else rng.integers(0, num_users, size)
  return interactions.Ratings(
    user=users.astype(np.int64),
    movie=np.arange(size, dtype=np.int64) % 3,
    rating=np.arange(size, dtype=np.float32),
    time=rng.permutation(size).astype(np.int64),
  )


def test_each_epoch_is_a_new_permutation_in_full_batches():
  dataset, steps = data.shuffled_batches(_ratings(10), batch_size=4, seed=1)
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
  first, _ = data.shuffled_batches(_ratings(10), batch_size=5, seed=3)
  again, _ = data.shuffled_batches(_ratings(10), batch_size=5, seed=3)
  for a, b in zip(first.take(4), again.take(4), strict=True):
    np.testing.assert_array_equal(a[contracts.USER_INDEX], b[contracts.USER_INDEX])


def test_a_split_smaller_than_a_batch_is_one_batch():
  dataset, steps = data.shuffled_batches(_ratings(3), batch_size=8, seed=0)
  assert steps == 1
  assert next(iter(dataset))[contracts.USER_INDEX].shape == (3,)


def test_both_batchings_prefetch_without_the_autotuner():
  # With tf.data's autotuner on, deleting the iterator at the end of each model.fit
  # waited for its thread to wake (up to 41 s measured on the sample).
  shuffled, _ = data.shuffled_batches(_ratings(10), batch_size=4, seed=0)
  sequence, _ = data.sequence_batches(
    _ratings(10, num_users=3), 3, 3, 8, context=4, seed=0, by_time=True, chunk=4
  )
  for dataset in (shuffled, sequence):
    assert dataset.options().autotune.enabled is False
    assert len(list(dataset.take(2).as_numpy_iterator())) == 2


def _epoch(ratings, num_users, by_time, context=4, chunk=4, batch_size=8, seed=0):
  dataset, steps = data.sequence_batches(
    ratings, num_users, 3, batch_size, context=context, seed=seed, by_time=by_time, chunk=chunk
  )
  return list(dataset.take(steps).as_numpy_iterator()), steps


@pytest.mark.parametrize("by_time", [True, False])
def test_sequence_batches_target_every_row_once_with_the_rows_before_as_context(by_time):
  num_users, context, chunk = 5, 4, 4
  ratings = _ratings(64, num_users=num_users)
  batches, steps = _epoch(ratings, num_users, by_time, context=context, chunk=chunk)
  assert steps == 64 // 8
  # Recover each row by its rating (= its row number).
  targets = np.concatenate(
    [b[contracts.RATING_LABEL][:, context:].reshape(-1) for b in batches]
  ).astype(int)
  assert sorted(targets.tolist()) == list(range(64))  # every row once per epoch
  for batch in batches:
    users, rows = batch[contracts.USER_INDEX], batch[contracts.RATING_LABEL].astype(int)
    assert users.shape == (8 // chunk, context + chunk)
    for chunk_users, chunk_rows in zip(users, rows, strict=True):
      for position in range(1, context + chunk):
        user = chunk_users[position]
        if user == chunk_users[position - 1] and user < num_users:
          # Within a user's run, rows come in the order the user gave them.
          if by_time:
            assert ratings.time[chunk_rows[position - 1]] < ratings.time[chunk_rows[position]]
      # A target's user is a real user; the context before the sequence starts is
      # the OOV user's padding (index num_users).
      assert (chunk_users[context:] < num_users).all()
      np.testing.assert_array_equal(chunk_users[context:], ratings.user[chunk_rows[context:]])


def test_without_time_each_epoch_gives_a_user_a_new_order():
  ratings = _ratings(64, num_users=2)
  first, _ = _epoch(ratings, 2, by_time=False, seed=0)
  again, _ = data.sequence_batches(ratings, 2, 3, 8, context=4, seed=0, by_time=False, chunk=4)
  epochs = list(again.take(2 * (64 // 8)).as_numpy_iterator())

  def order(batches):
    return np.concatenate([b[contracts.RATING_LABEL][:, 4:].reshape(-1) for b in batches])

  np.testing.assert_array_equal(order(first), order(epochs[:8]))  # same seed, same epoch
  assert not np.array_equal(order(epochs[:8]), order(epochs[8:]))


def test_training_statistics_count_movies_users_trained_ids_and_the_mean():
  ratings = interactions.Ratings(
    user=np.array([0, 0, 2, 5]),  # 5: out of vocabulary
    movie=np.array([1, 1, 0, 3]),
    rating=np.array([1.0, 2.0, 3.0, 6.0], np.float32),
    time=np.zeros(4, np.int64),
  )
  statistics = data.training_statistics(ratings, num_users=3, num_movies=3)
  assert statistics["movie_counts"].tolist() == [1, 2, 0]
  assert statistics["user_counts"].tolist() == [2, 0, 1]
  assert statistics["trained_users"].tolist() == [True, False, True]
  assert statistics["trained_movies"].tolist() == [True, True, False]
  assert statistics["global_mean"] == pytest.approx(3.0)


def test_an_empty_train_split_is_a_clear_error():
  with pytest.raises(ValueError, match="The train split is empty"):
    data.training_statistics(_ratings(0), num_users=3, num_movies=3)


def test_calls_by_length_cover_every_row_once_in_bounded_calls_of_alike_lengths():
  lengths = np.array([5, 0, 300, 7, 6, 1, 299, 2])
  calls = interactions.calls_by_length(lengths, most=3, cells=600)
  assert sorted(np.concatenate(calls).tolist()) == list(range(8))
  for call in calls:  # at most 3 rows, and rows x the longest (at least 1) <= 600
    assert 1 <= len(call) <= 3
    assert len(call) * max(lengths[call].max(), 1) <= 600
  # Shortest first: the two long histories share a call, padded to 300, not the short ones.
  assert [lengths[call].tolist() for call in calls] == [[0, 1, 2], [5, 6, 7], [299, 300]]
  # A row longer than `cells` still gets a call of its own.
  assert [c.tolist() for c in interactions.calls_by_length(np.array([10, 1]), 4, 5)] == [[1], [0]]


def test_slices_cover_the_range_once_in_bounded_parts():
  parts = list(interactions.slices(10, 4))
  assert parts == [slice(0, 4), slice(4, 8), slice(8, 10)]
  assert list(interactions.slices(0, 4)) == []
