"""The split protocols (splits.py) and their Beam form in the executor."""

import collections

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing import util as beam_testing

from components.ratings_example_gen import csv_batches, executor, splits
from nfrec import contracts


def _config(protocol, **overrides):
  values = dict(
    protocol=protocol, eval_share=0.2, validation_share=0.1, new_user_share=0.2, seed=42
  )
  return splits.SplitConfig(**{**values, **overrides})


def _ratings(num_users=60, per_user=20, seed=0):
  rng = np.random.default_rng(seed)
  users = np.repeat(np.arange(1000, 1000 + num_users), per_user)
  movies = np.concatenate([rng.choice(500, per_user, replace=False) for _ in range(num_users)])
  times = rng.integers(10**9, 2 * 10**9, users.size)
  return users, movies, times


def test_user_time_holds_out_each_users_latest_ratings():
  times = np.array([50, 10, 40, 20, 30, 60, 70, 80, 90, 100])
  got = splits.user_time_splits(times, np.arange(10), _config("user_time"))
  # Ordered by time: the last 2 (20 %) are eval, the 1 (10 %) before them validation.
  by_time = [got[i] for i in np.argsort(times)]
  assert by_time == ["train"] * 7 + ["validation"] + ["eval"] * 2
  # Too few ratings to predict from: all train.
  assert (
    splits.user_time_splits(np.array([1, 2]), np.arange(2), _config("user_time")) == ["train"] * 2
  )


def test_user_time_breaks_ties_by_movie_id_whatever_the_input_order():
  times = np.zeros(10, int)
  movies = np.arange(10)
  got = splits.user_time_splits(times, movies, _config("user_time"))
  shuffled = np.random.default_rng(1).permutation(10)
  again = splits.user_time_splits(times[shuffled], movies[shuffled], _config("user_time"))
  assert [again[list(shuffled).index(m)] for m in movies] == got


@pytest.mark.parametrize("eval_share, validation_share", [(0.2, 0.1), (0.1, 0.0), (0.5, 0.45)])
def test_user_time_cuts_every_user_of_a_data_set_by_the_rule(eval_share, validation_share):
  # Users with 1 to 25 ratings, shuffled together: each user's cut, counted by the
  # rule written out with Python's round, equals what the vectorized split gives.
  rng = np.random.default_rng(3)
  counts = np.arange(1, 26)
  users = rng.permutation(np.repeat(np.arange(25), counts))
  times = rng.integers(0, 50, users.size)  # ties in time are frequent
  movies = rng.integers(0, 1000, users.size)
  config = _config("user_time", eval_share=eval_share, validation_share=validation_share)
  codes = splits.user_time_codes(users, movies, times, config)
  for user, n in enumerate(counts.tolist()):
    mine = codes[users == user]
    n_eval = max(1, round(eval_share * n)) if eval_share else 0
    n_validation = max(1, round(validation_share * n)) if validation_share else 0
    n_validation = max(0, min(n_validation, n - n_eval - 1))
    if n < config.min_user_ratings:
      n_eval = n_validation = 0
    assert (mine == splits.EVAL_CODE).sum() == n_eval, (user, n)
    assert (mine == splits.VALIDATION_CODE).sum() == n_validation, (user, n)
    # The held-out ratings are the user's latest: (time, movie id string) order.
    mine_times, mine_movies = times[users == user].tolist(), movies[users == user].astype(str)
    order = sorted(zip(mine_times, mine_movies, mine, strict=True))
    assert [code for *_, code in order] == sorted(mine, key=[0, 1, 2].index)


@pytest.mark.parametrize("protocol", splits.PROTOCOLS)
def test_every_protocol_holds_out_new_users_and_keeps_the_shares(protocol):
  users, movies, times = _ratings()
  result = splits.split_all(users, movies, times, _config(protocol))
  new = {u for u, s in zip(users, result, strict=True) if s == contracts.NEW_USERS}
  # A new user is new in all their ratings; about 20 % of the users.
  assert all(s == contracts.NEW_USERS for u, s in zip(users, result, strict=True) if u in new)
  assert 0.05 < len(new) / 60 < 0.4
  known = result[result != contracts.NEW_USERS]
  shares = collections.Counter(known.tolist())
  assert shares[contracts.EVAL] / len(known) == pytest.approx(0.2, abs=0.06)
  assert shares[contracts.VALIDATION] / len(known) == pytest.approx(0.1, abs=0.05)
  # Same seed, same split; another seed, another one.
  assert (splits.split_all(users, movies, times, _config(protocol)) == result).all()
  other = splits.split_all(users, movies, times, _config(protocol, seed=7))
  assert (other != result).any()


def test_time_protocols_put_the_future_in_eval():
  users, movies, times = _ratings()
  result = splits.split_all(users, movies, times, _config("user_time"))
  for user in np.unique(users):
    mine = users == user
    train, eval_ = times[mine & (result == "train")], times[mine & (result == "eval")]
    if len(eval_):
      assert train.max() < eval_.min()  # each user's future
  result = splits.split_all(users, movies, times, _config("global_time"))
  assert times[result == "train"].max() < times[result == "validation"].min()
  assert times[result == "validation"].max() < times[result == "eval"].min()  # one cutoff


def test_auto_picks_user_time_for_data_with_time_and_random_without():
  assert splits.resolve(_config("auto"), has_time=True).protocol == "user_time"
  assert splits.resolve(_config("auto"), has_time=False).protocol == "random"
  with pytest.raises(ValueError, match="Unknown split protocol 'weekly'"):
    _config("weekly")
  with pytest.raises(ValueError, match="leave ratings to train on"):
    _config("random", eval_share=0.6, validation_share=0.5)


def _write_csv(path, rows):
  path.write_text(
    "User_ID,Rating,Movie_ID,Timestamp\n" + "".join(f"{u},3,{m},{t}\n" for u, m, t in rows)
  )


@pytest.mark.parametrize("protocol", ["user_time", "random"])
def test_the_beam_executor_splits_exactly_as_split_all(protocol, tmp_path, monkeypatch):
  users, movies, times = _ratings(num_users=30, per_user=12)
  config = _config(protocol)
  expected = splits.split_all(users, movies, times, config)
  rows = list(zip(users.tolist(), movies.tolist(), times.tolist(), strict=True))
  # Two files in shuffled order, read in batches of about 20 rows: a user's ratings are
  # spread over batches and files, as in a real data folder.
  order = np.random.default_rng(1).permutation(len(rows))
  _write_csv(tmp_path / "a.csv", [rows[i] for i in order[:150]])
  _write_csv(tmp_path / "b.csv", [rows[i] for i in order[150:]])
  monkeypatch.setattr(csv_batches, "BLOCK_BYTES", 500)
  with beam.Pipeline() as pipeline:
    [batches] = csv_batches.read(pipeline, [str(tmp_path / "*.csv")])
    assigned = batches | beam.Map(lambda batch: batch.num_rows) | "Sizes" >> beam.combiners.ToList()
    beam_testing.assert_that(
      assigned, lambda sizes: _assert(len(sizes[0]) > 10 and max(sizes[0]) < 30), label="Batched"
    )
    rows_by_split = executor.assign_splits(batches, config) | beam.FlatMap(
      lambda item: [
        ((user, movie, time), contracts.SPLITS[item[0]])
        for user, movie, time in zip(
          *(item[1].column(name).to_pylist() for name in ("User_ID", "Movie_ID", "Timestamp")),
          strict=True,
        )
      ]
    )
    beam_testing.assert_that(
      rows_by_split,
      beam_testing.equal_to(
        [(row, split) for row, split in zip(rows, expected.tolist(), strict=True)]
      ),
    )


def _assert(condition):
  assert condition
