"""How ratings are split into train, validation, eval and new_users (docs/metrics.md).

Plain functions, deterministic for a seed, used by the ExampleGen executor (in
Beam) and testable on their own. Three protocols:

  user_time    each user's latest ratings are eval, the ones just before them
               validation, the rest train: "what will this user rate next?"
  global_time  a global cutoff: the last `eval_share` of all ratings in time are
               eval, the `validation_share` before them validation
  random       a seeded random split of the ratings (data without time)

Whatever the protocol, a seeded `new_user_share` of the users is held out of
training entirely: all their ratings go to new_users, where the evaluators give
the model the first half of each user's ratings at request time and score it on
the rest.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from nfrec import contracts

PROTOCOLS = ("user_time", "global_time", "random")
# "auto": user_time when the ratings have a Timestamp column, else random (the
# executor decides, from the files it reads).
AUTO = "auto"
# Each split's index in contracts.SPLITS: the vectorized functions return these codes.
TRAIN_CODE, VALIDATION_CODE, EVAL_CODE, NEW_USERS_CODE = (
  contracts.SPLITS.index(name)
  for name in (contracts.TRAIN, contracts.VALIDATION, contracts.EVAL, contracts.NEW_USERS)
)


@dataclasses.dataclass(frozen=True)
class SplitConfig:
  protocol: str
  eval_share: float  # of each user's ratings (user_time) or of all ratings
  validation_share: float
  new_user_share: float  # of the users, held out of training entirely
  seed: int
  # user_time: users with fewer ratings keep them all in train (nothing to predict from).
  min_user_ratings: int = 3

  def __post_init__(self):
    if self.protocol not in (*PROTOCOLS, AUTO):
      raise ValueError(
        f"Unknown split protocol {self.protocol!r}; choose one of {(*PROTOCOLS, AUTO)}."
      )
    shares = (self.eval_share, self.validation_share, self.new_user_share)
    if any(not 0 <= share < 1 for share in shares) or self.eval_share + self.validation_share >= 1:
      raise ValueError(f"Split shares must be in [0, 1) and leave ratings to train on: {shares}.")


def resolve(config: SplitConfig, has_time: bool) -> SplitConfig:
  """The config with "auto" made concrete for data with or without a rating time."""
  if config.protocol != AUTO:
    return config
  return dataclasses.replace(config, protocol="user_time" if has_time else "random")


def unit_hash(seed: int, *parts) -> float:
  """A number in [0, 1) that depends only on the seed and the parts (any process, any run).

  Ids are hashed in their string form (as the vocabularies hold them), so an id read
  as an integer here and as a numpy integer there gets the same draw.
  """
  key = "\x1f".join([str(seed), *(str(part) for part in parts)])
  digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
  return int.from_bytes(digest, "big") / 2**64


def is_new_user(user_id, config: SplitConfig) -> bool:
  return unit_hash(config.seed, "new user", user_id) < config.new_user_share


def random_split(user_id, movie_id, config: SplitConfig) -> str:
  """The split of one rating of a known user, by a seeded hash of (user, movie)."""
  draw = unit_hash(config.seed, "rating", user_id, movie_id)
  if draw < config.eval_share:
    return contracts.EVAL
  if draw < config.eval_share + config.validation_share:
    return contracts.VALIDATION
  return contracts.TRAIN


def user_time_splits(times: np.ndarray, movie_ids: np.ndarray, config: SplitConfig) -> list[str]:
  """The split of each of one known user's ratings, given in any order.

  Ordered by time (ties by movie id, so the order does not depend on the input's):
  the last round(eval_share * n) are eval (at least one), the round(validation_share
  * n) before them validation (at least one), and at least one rating stays in train.
  """
  codes = user_time_codes(np.zeros(len(times), np.int64), movie_ids, times, config)
  return [contracts.SPLITS[code] for code in codes.tolist()]


def user_time_codes(user_index, movie_ids, times, config: SplitConfig) -> np.ndarray:
  """user_time_splits for many users at once, as codes into contracts.SPLITS.

  `user_index` is any integer labelling of the users (one value per user); each
  user's ratings are ranked by (time, movie id string) and cut as user_time_splits says.
  """
  n = len(user_index)
  # Ties in time are broken by the movie id's string form, whatever type the ids come in.
  order = np.lexsort((np.asarray(movie_ids).astype(str), np.asarray(times), user_index))
  sorted_users = np.asarray(user_index)[order]
  starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
  counts = np.diff(np.r_[starts, n]).astype(np.int64)
  rank = np.arange(n) - np.repeat(starts, counts)
  count = np.repeat(counts, counts)
  # np.rint rounds half to even, as Python's round does.
  n_eval = np.maximum(1, np.rint(config.eval_share * count)) if config.eval_share else 0
  n_validation = (
    np.maximum(1, np.rint(config.validation_share * count)) if config.validation_share else 0
  )
  n_validation = np.minimum(n_validation, count - n_eval - 1)
  codes = np.full(n, TRAIN_CODE, np.int8)
  codes[order] = np.where(
    count < config.min_user_ratings,
    TRAIN_CODE,
    np.where(
      rank >= count - n_eval,
      EVAL_CODE,
      np.where(rank >= count - n_eval - n_validation, VALIDATION_CODE, TRAIN_CODE),
    ),
  )
  return codes


def global_time_cutoffs(times: np.ndarray, config: SplitConfig) -> tuple[float, float]:
  """(validation start, eval start): the time quantiles that leave the shares after them."""
  eval_start = float(np.quantile(times, 1 - config.eval_share))
  validation_start = float(np.quantile(times, 1 - config.eval_share - config.validation_share))
  return validation_start, eval_start


def factorize(values: np.ndarray) -> np.ndarray:
  """An integer label per value, equal for equal values (ids of any type, None included)."""
  values = np.asarray(values)
  if values.dtype != object:
    return np.unique(values, return_inverse=True)[1]
  labels: dict = {}
  return np.array([labels.setdefault(value, len(labels)) for value in values.tolist()], np.int64)


def per_distinct(values: np.ndarray, function) -> np.ndarray:
  """function(value) for each value, called once per distinct value."""
  values = np.asarray(values)
  labels = factorize(values)
  first = np.zeros(labels.max() + 1 if len(labels) else 0, np.int64)
  first[labels[::-1]] = np.arange(len(labels))[::-1]  # where each label first occurs
  results = np.array([function(value) for value in values[first].tolist()], dtype=object)
  return results[labels]


def new_user_mask(users, config: SplitConfig) -> np.ndarray:
  """Whether each rating's user is held out as a new user (one hash per distinct user)."""
  return per_distinct(users, lambda user: is_new_user(user, config)).astype(bool)


def random_codes(users, movies, config: SplitConfig) -> np.ndarray:
  """random_split of each (user, movie), as codes into contracts.SPLITS."""
  return np.array(
    [
      contracts.SPLITS.index(random_split(user, movie, config))
      for user, movie in zip(np.asarray(users).tolist(), np.asarray(movies).tolist(), strict=True)
    ],
    dtype=np.int8,
  )


def global_time_codes(times, cutoffs: tuple[float, float]) -> np.ndarray:
  """The split of each time by the cutoffs (validation start, eval start), as codes into
  contracts.SPLITS: eval from the eval start on, validation from the validation start."""
  validation_start, eval_start = cutoffs
  times = np.asarray(times)
  return np.where(
    times >= eval_start,
    EVAL_CODE,
    np.where(times >= validation_start, VALIDATION_CODE, TRAIN_CODE),
  ).astype(np.int8)


def known_user_codes(users, movies, times, config: SplitConfig, cutoffs=None) -> np.ndarray:
  """The split codes of known users' ratings by the (resolved) protocol. user_time needs
  every rating of each user given here; global_time needs `cutoffs` from all ratings."""
  if config.protocol == "random":
    return random_codes(users, movies, config)
  if config.protocol == "global_time":
    return global_time_codes(times, cutoffs)
  return user_time_codes(factorize(users), movies, times, config)


def split_all(users, movies, times, config: SplitConfig) -> np.ndarray:
  """The split of every rating of a whole data set (numpy, in memory): what the
  ExampleGen executor computes with Beam, for tests and benchmarks."""
  users, movies, times = np.asarray(users), np.asarray(movies), np.asarray(times)
  codes = np.full(len(users), NEW_USERS_CODE, np.int8)
  known = ~new_user_mask(users, config)
  cutoffs = None
  if config.protocol == "global_time":
    cutoffs = global_time_cutoffs(times[known], config)
  codes[known] = known_user_codes(users[known], movies[known], times[known], config, cutoffs)
  return np.array(contracts.SPLITS, dtype=object)[codes]
