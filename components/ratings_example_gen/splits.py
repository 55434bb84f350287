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
  n = len(times)
  splits = [contracts.TRAIN] * n
  if n < config.min_user_ratings:
    return splits
  n_eval = max(1, round(config.eval_share * n)) if config.eval_share else 0
  n_validation = max(1, round(config.validation_share * n)) if config.validation_share else 0
  n_validation = min(n_validation, n - n_eval - 1)
  # Ties in time are broken by the movie id's string form, whatever type the ids come in.
  order = np.lexsort((np.asarray(movie_ids).astype(str), np.asarray(times)))
  for position in order[n - n_eval :]:
    splits[position] = contracts.EVAL
  for position in order[n - n_eval - n_validation : n - n_eval]:
    splits[position] = contracts.VALIDATION
  return splits


def global_time_cutoffs(times: np.ndarray, config: SplitConfig) -> tuple[float, float]:
  """(validation start, eval start): the time quantiles that leave the shares after them."""
  eval_start = float(np.quantile(times, 1 - config.eval_share))
  validation_start = float(np.quantile(times, 1 - config.eval_share - config.validation_share))
  return validation_start, eval_start


def global_time_split(time, cutoffs: tuple[float, float]) -> str:
  validation_start, eval_start = cutoffs
  if time >= eval_start:
    return contracts.EVAL
  if time >= validation_start:
    return contracts.VALIDATION
  return contracts.TRAIN


def split_all(users, movies, times, config: SplitConfig) -> np.ndarray:
  """The split of every rating of a whole data set (numpy, in memory): what the
  ExampleGen executor computes with Beam, for tests and benchmarks."""
  users, movies = np.asarray(users), np.asarray(movies)
  result = np.empty(len(users), dtype=object)
  new = np.array([is_new_user(u, config) for u in users.tolist()], dtype=bool)
  result[new] = contracts.NEW_USERS
  known = np.flatnonzero(~new)
  if config.protocol == "random":
    for i in known.tolist():
      result[i] = random_split(users[i].item(), movies[i].item(), config)
  elif config.protocol == "global_time":
    cutoffs = global_time_cutoffs(np.asarray(times)[known], config)
    for i in known.tolist():
      result[i] = global_time_split(times[i], cutoffs)
  else:
    order = known[np.argsort(users[known], kind="stable")]
    boundaries = np.flatnonzero(np.diff(users[order])) + 1
    for rows in np.split(order, boundaries):
      if rows.size:
        result[rows] = user_time_splits(np.asarray(times)[rows], movies[rows], config)
  return result
