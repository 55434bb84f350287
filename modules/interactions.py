"""Ratings in memory, grouped by user: one home for the Trainer and the components.

`Ratings` holds one split as columns of vocabulary indices; `Histories` each
user's ratings oldest first, as the user tower reads them; `rated_index` each
user's rated movies, as the evaluators and the serving model exclude them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from nfrec import contracts


def group_by_user(users: np.ndarray, num_users: int, *sort_keys: np.ndarray):
  """(row_splits [num_users + 1], order): the rows of user u are
  order[row_splits[u]:row_splits[u + 1]], sorted within the user by `sort_keys`
  (the last key first, as np.lexsort). Users must be in [0, num_users)."""
  users = np.asarray(users, np.int64)
  order = np.lexsort((*sort_keys, users))
  counts = np.bincount(users, minlength=num_users)
  return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), order


def rated_index(users, movies, num_users: int, num_movies: int) -> dict[str, np.ndarray]:
  """Each known user's rated movies, sorted (rows with an unknown user or movie are
  left out): {"rated_row_splits": [num_users + 1], "rated_movies": [...]}."""
  users, movies = np.asarray(users, np.int64), np.asarray(movies, np.int64)
  known = (users < num_users) & (movies < num_movies)
  row_splits, order = group_by_user(users[known], num_users, movies[known])
  return {"rated_row_splits": row_splits, "rated_movies": movies[known][order]}


@dataclasses.dataclass(frozen=True)
class Ratings:
  """One split as numpy columns: vocabulary indices, rating, time (0 without time)."""

  user: np.ndarray
  movie: np.ndarray
  rating: np.ndarray
  time: np.ndarray

  @classmethod
  def from_columns(cls, columns: dict) -> Ratings:
    size = len(columns[contracts.RATING_LABEL])
    time = columns.get(contracts.RATING_TIME)
    return cls(
      user=np.asarray(columns[contracts.USER_INDEX], np.int64),
      movie=np.asarray(columns[contracts.MOVIE_INDEX], np.int64),
      rating=np.asarray(columns[contracts.RATING_LABEL], np.float32),
      time=np.zeros(size, np.int64) if time is None else np.asarray(time, np.int64),
    )

  def __len__(self) -> int:
    return len(self.rating)

  @property
  def has_time(self) -> bool:
    return bool(len(self.time)) and bool((self.time != self.time[0]).any())

  def concat(self, other: Ratings) -> Ratings:
    return Ratings(
      *(np.concatenate([a, b]) for a, b in zip(self.columns(), other.columns(), strict=True))
    )

  def columns(self) -> tuple:
    return (self.user, self.movie, self.rating, self.time)

  def as_tensors(self) -> dict[str, tf.Tensor]:
    return {
      contracts.USER_INDEX: tf.constant(self.user),
      contracts.MOVIE_INDEX: tf.constant(self.movie),
      contracts.RATING_LABEL: tf.constant(self.rating),
    }


def by_user_oldest_first(ratings: Ratings, num_users: int):
  """(row splits over num_users + 1 rows, the OOV user last; row order): each user's
  rows together, oldest first (ties by movie index)."""
  return group_by_user(
    np.minimum(ratings.user, num_users), num_users + 1, ratings.movie, ratings.time
  )


def calls_by_length(lengths: np.ndarray, most: int, cells: int) -> list[np.ndarray]:
  """Positions into `lengths` (each row's history length, window-capped), one array per
  tower call, shortest histories first: a call pads its rows to its longest, so rows of
  alike lengths pad little. Each call holds at most `most` rows and `cells` padded
  entries (at least one row); together they cover every position once."""
  order = np.argsort(lengths, kind="stable")
  width = np.maximum(np.asarray(lengths)[order], 1)
  calls, start = [], 0
  while start < len(order):
    stop = min(len(order), start + most)
    # (rows so far) x (the last row's width) only grows with each row added.
    fits = np.arange(1, stop - start + 1) * width[start:stop] <= cells
    stop = start + max(1, int(fits.sum()))
    calls.append(order[start:stop])
    start = stop
  return calls


def placed(values: np.ndarray, order: np.ndarray) -> np.ndarray:
  """values[i] moved to position order[i]: a tower's outputs, computed in the calls'
  order, back in the caller's order."""
  result = np.empty_like(values)
  result[order] = values
  return result


def slices(count: int, size: int):
  """Consecutive slices of at most `size` covering range(count): one tower call each."""
  for start in range(0, count, size):
    yield slice(start, min(start + size, count))


class Histories:
  """Each user's ratings, oldest first, as one flat array with row splits.

  Row u (a vocabulary index, the OOV index included) holds that user's movies and
  ratings; `padded` gives the last N of them per user, as the user tower reads them.
  """

  def __init__(self, ratings: Ratings, num_users: int):
    self.row_splits, order = by_user_oldest_first(ratings, num_users)
    self.movies = ratings.movie[order]
    self.ratings = ratings.rating[order]

  def lengths(self, users: np.ndarray) -> np.ndarray:
    return self.row_splits[users + 1] - self.row_splits[users]

  def padded(self, users: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """([B, L] movies, [B, L] ratings, [B] lengths): each user's last `window` ratings,
    oldest first, valid entries first; L is the longest of them (at least 1)."""
    users = np.asarray(users, np.int64)
    total = self.lengths(users)
    length = np.minimum(total, window)
    width = max(int(length.max(initial=0)), 1)
    position = (self.row_splits[users] + total - length)[:, None] + np.arange(width)[None, :]
    valid = np.arange(width)[None, :] < length[:, None]
    position = np.where(valid, position, 0)
    if not len(self.movies):
      return (
        np.zeros((len(users), width), np.int64),
        np.zeros((len(users), width), np.float32),
        length,
      )
    return (
      np.where(valid, self.movies[position], 0),
      np.where(valid, self.ratings[position], 0.0).astype(np.float32),
      length,
    )
