"""Warm start: a new model starts from the last blessed model's weights.

The last blessed serving model (a SavedModel; `fn_args.base_model`) holds the
trained Keras model's variables under `core/model/...` and the vocabularies it
was trained with. Transform's vocabularies change from run to run (new users
and movies, a new order by count), so rows of the id-indexed tables are
carried over **by id**: a user or movie in both vocabularies gets its old row,
a new one keeps its fresh initialization, the out-of-vocabulary row its old
OOV row. Every other weight (towers' dense layers, the rating head, title-word
and year embeddings) is copied when its shape is unchanged. The optimizer
state is not carried over (a new optimizer, as TFX's warm-start guidance says),
and neither are the data-derived constants (which ids were trained, the
catalog features, popularity and the negative-sampling distribution).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from nfrec import contracts

# Tables with one row per vocabulary id, plus the OOV row last.
USER_TABLES = ("user_embedding", "user_bias", "user_rating_factors", "rating_user_embedding")
MOVIE_TABLES = (
  "movie_embedding",
  "history_embedding",
  "rating_movie_embedding",
  "rating_history_embedding",
  "movie_bias",
  "movie_retrieval_bias",
  "movie_rating_factors",
)
# Data, not learned: rebuilt from this run's data.
NOT_CARRIED = (
  "optimizer",
  "rating_task",  # its metrics' running totals
  "trained_users",
  "user_l2_weights",
  "trained_movies",
  "title_tokens",
  "year_bucket",
  "movie_sampling_probability",
  "sampling_probability",
  "negative_probability",
)
MODEL_PREFIX = "core/model/"
SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


@dataclasses.dataclass
class Previous:
  """The last blessed model's weights (by object path) and vocabularies."""

  weights: dict[str, np.ndarray]
  user_ids: list[str]
  movie_ids: list[str]

  @classmethod
  def load(cls, saved_model_dir: str) -> Previous:
    reader = tf.train.load_checkpoint(f"{saved_model_dir}/variables/variables")
    weights = {
      key[len(MODEL_PREFIX) : -len(SUFFIX)]: reader.get_tensor(key)
      for key in reader.get_variable_to_shape_map()
      if key.startswith(MODEL_PREFIX) and key.endswith(SUFFIX)
    }

    def vocabulary(name):
      with tf.io.gfile.GFile(contracts.asset_path(saved_model_dir, name), "rb") as f:
        return [line.rstrip(b"\n").decode() for line in f if line.strip()]

    return cls(
      weights,
      vocabulary(contracts.USER_VOCABULARY),
      vocabulary(contracts.MOVIE_VOCABULARY),
    )


@dataclasses.dataclass
class WarmStart:
  """What a fit starts from: the previous model and this run's vocabularies."""

  previous: Previous
  user_ids: list[str]
  movie_ids: list[str]

  def apply(self, model) -> dict:
    return warm_start(model, self.previous, self.user_ids, self.movie_ids)


def variable_paths(root) -> dict[str, tf.Variable]:
  """Object path (as checkpoints name them) -> variable, under a Keras model."""
  paths, seen = {}, set()

  def walk(obj, prefix):
    if id(obj) in seen:
      return
    seen.add(id(obj))
    for name, child in obj._trackable_children().items():  # the checkpoint's own graph
      path = f"{prefix}/{name}" if prefix else name
      if isinstance(child, tf.Variable):
        paths.setdefault(path, child)
      elif isinstance(child, tf.__internal__.tracking.Trackable):
        walk(child, path)

  walk(root, "")
  return paths


def remap_rows(old: np.ndarray, old_ids: list[str], new: np.ndarray, new_ids: list[str]):
  """Rows of `new` ([len(new_ids) + 1, ...]) taken from `old` by id; the OOV row too.
  Returns (table, rows carried over)."""
  table = new.copy()
  row_of = {token: row for row, token in enumerate(old_ids)}
  pairs = [(i, row_of[token]) for i, token in enumerate(new_ids) if token in row_of]
  if pairs:
    new_rows, old_rows = map(np.array, zip(*pairs, strict=True))
    table[new_rows] = old[old_rows]
  table[-1] = old[-1]  # the OOV row
  return table, len(pairs)


def warm_start(model, previous: Previous, user_ids: list[str], movie_ids: list[str]) -> dict:
  """Assigns `previous`'s weights into the built `model`; returns what was carried."""
  report = {"remapped_users": 0, "remapped_movies": 0, "copied": 0, "skipped": []}
  for path, variable in variable_paths(model).items():
    top = path.split("/")[0]
    if top in NOT_CARRIED or path not in previous.weights:
      continue
    old = previous.weights[path]
    if top in USER_TABLES or top in MOVIE_TABLES:
      ids, old_ids = (
        (user_ids, previous.user_ids) if top in USER_TABLES else (movie_ids, previous.movie_ids)
      )
      if old.shape[1:] != tuple(variable.shape[1:]):
        report["skipped"].append(path)
        continue
      value, carried = remap_rows(old, old_ids, variable.numpy(), ids)
      report["remapped_users" if top in USER_TABLES else "remapped_movies"] = carried
    elif old.shape == tuple(variable.shape):
      value = old
      report["copied"] += 1
    else:
      report["skipped"].append(path)
      continue
    variable.assign(value)
  return report
