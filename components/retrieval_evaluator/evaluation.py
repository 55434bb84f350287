"""What RetrievalEvaluator does, as plain functions (testable without a pipeline).

Everything is measured through the serving model itself, on raw ids, as a user
of the served model would see it: its vocabulary and catalog tables, its
precomputed queries, its exclusions (each user's ratings before the eval
period), its `recommend_from_ratings` path for people it has never seen.

  eval        the known users' future ratings: retrieval metrics, RMSE/MAE, and
              the same by user activity (light and heavy users)
  new_users   users held out of training: the first half of each one's ratings
              (by time) given at request time, scored on the rest
  baselines   most popular (same exclusions, same code), global mean and damped
              user + movie bias (RMSE), on the same pairs
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf
from tfx.utils import path_utils

from modules import interactions
from modules.evaluation import metrics as metrics_lib
from modules.transform import examples
from nfrec import contracts

PREDICT_BATCH = 65_536
# Given ratings per call of the new-user path (query_from_ratings and
# predict_rating_from_ratings): each row's history is embedded ([rows, width, dim]
# floats), so a call holds at most this many ratings.
GIVEN_RATINGS_PER_CALL = 250_000
NEW_USERS_PER_CALL = 512


def load_serving_model(model_uri: str):
  try:
    import scann  # noqa: F401  (a ScaNN index needs its ops registered to load)
  except ImportError:
    pass
  return tf.saved_model.load(path_utils.serving_model_path(model_uri))


@dataclasses.dataclass(frozen=True)
class RawRatings:
  """Ratings with raw ids (as strings, as the serving signatures take them)."""

  user_ids: np.ndarray  # [N] object (str)
  movie_ids: np.ndarray  # [N] object (str)
  ratings: np.ndarray  # [N] float32
  times: np.ndarray  # [N] int64 (0 without time)

  def __len__(self) -> int:
    return len(self.ratings)

  def columns(self) -> tuple:
    # Not dataclasses.astuple: it deep-copies every array, element by element for the
    # id strings, and select() runs once per new user (quadratic: about half of this
    # component's time at 1M ratings, 78.5 s -> 37.7 s without it).
    return tuple(getattr(self, field.name) for field in dataclasses.fields(self))

  def select(self, mask) -> RawRatings:
    return RawRatings(*(column[mask] for column in self.columns()))

  @staticmethod
  def concatenate(parts) -> RawRatings:
    return RawRatings(
      *(np.concatenate(column) for column in zip(*(part.columns() for part in parts), strict=True))
    )

  def concat(self, other: RawRatings) -> RawRatings:
    return RawRatings.concatenate([self, other])


def read_raw(examples_artifact, split: str, feature_spec: dict) -> RawRatings:
  """One split of ExampleGen's output (the raw ratings)."""
  columns = examples.read_columns(examples.split_pattern(examples_artifact, split), feature_spec)
  as_text = np.vectorize(
    lambda value: str(int(value)) if not isinstance(value, bytes) else value.decode(),
    otypes=[object],
  )
  size = len(columns[contracts.RATING])
  return RawRatings(
    user_ids=as_text(columns[contracts.USER_ID]) if size else np.zeros(0, object),
    movie_ids=as_text(columns[contracts.MOVIE_ID]) if size else np.zeros(0, object),
    ratings=columns[contracts.RATING].astype(np.float32),
    times=columns[contracts.TIMESTAMP].astype(np.int64)
    if contracts.TIMESTAMP in columns
    else np.zeros(size, np.int64),
  )


def raw_feature_spec(schema) -> dict:
  """The parsing spec of the raw ratings (the curated schema's columns)."""
  from tensorflow_transform.tf_metadata import schema_utils

  spec = schema_utils.schema_as_feature_spec(schema).feature_spec
  return {name: tf.io.FixedLenFeature([], feature.dtype) for name, feature in spec.items()}


def rows_of(model, ratings: RawRatings) -> tuple[np.ndarray, np.ndarray]:
  """(user rows, candidate rows) in the model's own tables; unknown users get the
  number of users, unknown movies the number of candidates (a miss)."""
  if not len(ratings):
    return np.zeros(0, np.int64), np.zeros(0, np.int64)
  users = model.core.user_index(tf.constant(ratings.user_ids.tolist(), tf.string)).numpy()
  movies = model.candidate_rows(tf.constant(ratings.movie_ids.tolist(), tf.string)).numpy()
  return users, np.where(movies >= 0, movies, int(model.candidate_vectors.shape[0]))


def predict(model, signature: str, batch: int = PREDICT_BATCH, **inputs) -> np.ndarray:
  """One output (the rating) of a signature, in batches (what TF Serving computes)."""
  function = model.signatures[signature]
  size = len(next(iter(inputs.values())))
  out = [
    function(**{name: tf.constant(values[part]) for name, values in inputs.items()})[
      contracts.OUTPUT_RATING
    ].numpy()
    for part in interactions.slices(size, batch)
  ]
  return np.concatenate(out) if out else np.zeros(0, np.float32)


def _rating_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict:
  if not len(labels):
    return {contracts.RMSE: 0.0, contracts.MAE: 0.0}
  return {
    contracts.RMSE: float(np.sqrt(np.mean((predictions - labels) ** 2))),
    contracts.MAE: float(np.mean(np.abs(predictions - labels))),
  }


def _popularity(model, like: metrics_lib.Ranker) -> metrics_lib.Ranker:
  return metrics_lib.popularity_ranker(model.movie_training_ratings.numpy(), like)


def known_users(model, known: RawRatings, eval_: RawRatings) -> dict:
  """The eval split: the model, most popular, the rating baselines, activity slices."""
  ranker = metrics_lib.serving_model_ranker(model)
  users, movies = rows_of(model, eval_)
  known_users_, known_movies = rows_of(model, known)
  predictions = predict(
    model,
    contracts.SIGNATURE_PREDICT_RATING,
    **{
      contracts.INPUT_USER_ID: eval_.user_ids.tolist(),
      contracts.INPUT_MOVIE_ID: eval_.movie_ids.tolist(),
    },
  )
  counts = np.bincount(np.minimum(known_users_, ranker.num_users), minlength=ranker.num_users + 1)
  pair_counts = counts[np.minimum(users, ranker.num_users)]
  return {
    "model": {
      **metrics_lib.retrieval_metrics(ranker, users, movies, eval_.ratings),
      **_rating_metrics(predictions, eval_.ratings),
      "rmse_by_activity": metrics_lib.rmse_by_activity(predictions, eval_.ratings, pair_counts),
      "recall_by_activity": metrics_lib.recall_by_activity(
        ranker, users, movies, eval_.ratings, pair_counts
      ),
    },
    "most_popular": metrics_lib.retrieval_metrics(
      _popularity(model, ranker), users, movies, eval_.ratings
    ),
    "rating_baselines": metrics_lib.rating_baselines(
      (known_users_, known_movies, known.ratings),
      (users, movies, eval_.ratings),
      ranker.num_users,
      ranker.num_movies,
    ),
  }


def halves(new_users: RawRatings) -> tuple[list[RawRatings], list[RawRatings]]:
  """Per new user: the first half of their ratings (given) and the rest (scored),
  by time (ties by movie id); users with fewer than two ratings are left out."""
  order = np.lexsort(
    (new_users.movie_ids.astype(str), new_users.times, new_users.user_ids.astype(str))
  )
  ordered = new_users.select(order)
  boundaries = np.flatnonzero(ordered.user_ids[1:] != ordered.user_ids[:-1]) + 1
  given, rest = [], []
  for rows in np.split(np.arange(len(ordered)), boundaries):
    half = len(rows) // 2
    if half:
      given.append(ordered.select(rows[:half]))
      rest.append(ordered.select(rows[half:]))
  return given, rest


def _padded(parts: list[RawRatings]) -> tuple[np.ndarray, np.ndarray]:
  width = max((len(part) for part in parts), default=1)
  movie_ids = np.full((len(parts), width), "", dtype=object)
  ratings = np.zeros((len(parts), width), np.float32)
  for row, part in enumerate(parts):
    movie_ids[row, : len(part)] = part.movie_ids
    ratings[row, : len(part)] = part.ratings
  return movie_ids, ratings


def new_users(model, new: RawRatings) -> dict:
  """The new-user protocol (docs/metrics.md) through `recommend_from_ratings`'s path."""
  given, rest = halves(new)
  if not given:
    return {}
  # Calls pad their rows to the longest given history among them: people (and, below,
  # rows) of alike given lengths share a call, so the padding stays small.
  lengths = np.array([len(part) for part in given])
  calls = interactions.calls_by_length(lengths, NEW_USERS_PER_CALL, GIVEN_RATINGS_PER_CALL)
  queries, excluded = [], [None] * len(given)
  for call in calls:
    movie_ids, ratings = _padded([given[i] for i in call])
    query, rows, _ = model.query_from_ratings(tf.constant(movie_ids.tolist()), tf.constant(ratings))
    queries.append(query.numpy())
    # One conversion of the ragged rows (indexing a RaggedTensor row by row took 13 s
    # for the Netflix subset's 5,558 new users).
    splits = rows.row_splits.numpy()
    for i, row in zip(call, np.split(rows.flat_values.numpy(), splits[1:-1]), strict=True):
      excluded[i] = row
  queries = interactions.placed(np.concatenate(queries), np.concatenate(calls))
  candidates = model.candidate_vectors
  excluded_lengths = np.array([len(rows) for rows in excluded])
  ranker = metrics_lib.Ranker(
    num_users=len(given),
    num_movies=int(candidates.shape[0]),
    rated_row_splits=np.concatenate([[0], np.cumsum(excluded_lengths)]).astype(np.int64),
    rated_movies=np.concatenate(excluded).astype(np.int64),
    scores=lambda person: tf.matmul(
      tf.gather(queries, person), candidates, transpose_b=True
    ).numpy(),
  )
  scored = RawRatings.concatenate(rest)
  person = np.repeat(np.arange(len(rest)), [len(r) for r in rest])
  _, movies = rows_of(model, scored)
  # Bounded memory: a row carries its person's whole given history (found at ML-1M,
  # where 65,536 rows x 871 given ratings x 128 floats asked for 23 GB), so the rows'
  # histories are built one call at a time, never for all rows at once (a generated 1M
  # set: 51,392 rows x 2,709 given ratings took 5.1 GB that way).
  row_calls = interactions.calls_by_length(lengths[person], PREDICT_BATCH, GIVEN_RATINGS_PER_CALL)
  predictions = []
  for rows in row_calls:
    people, row_person = np.unique(person[rows], return_inverse=True)
    movie_ids, ratings = _padded([given[i] for i in people])
    inputs = {
      contracts.INPUT_MOVIE_IDS: movie_ids[row_person],
      contracts.INPUT_RATINGS: ratings[row_person],
      contracts.INPUT_MOVIE_ID: scored.movie_ids[rows].tolist(),
    }
    predictions.append(
      predict(model, contracts.SIGNATURE_PREDICT_RATING_FROM_RATINGS, len(rows), **inputs)
    )
  # Every person scored has at least one row (halves), so there is at least one call.
  predictions = interactions.placed(np.concatenate(predictions), np.concatenate(row_calls))
  return {
    "users": len(given),
    "model": {
      **metrics_lib.retrieval_metrics(ranker, person, movies, scored.ratings),
      **_rating_metrics(predictions, scored.ratings),
    },
    "most_popular": metrics_lib.retrieval_metrics(
      _popularity(model, ranker), person, movies, scored.ratings
    ),
  }


def evaluate(
  model, known: RawRatings, eval_: RawRatings, new: RawRatings, baseline_model=None
) -> dict:
  """Every metric of the model, of the last blessed model and of the baselines."""
  report = known_users(model, known, eval_)
  report["new_users"] = new_users(model, new)
  report["rating_counts"] = {
    split: {
      f"{value:g}": int(count)
      for value, count in zip(*np.unique(ratings, return_counts=True), strict=True)
    }
    for split, ratings in (("known", known.ratings), (contracts.EVAL, eval_.ratings))
  }
  if baseline_model is not None:
    users, movies = rows_of(baseline_model, eval_)  # its own tables
    report["baseline_model"] = metrics_lib.retrieval_metrics(
      metrics_lib.serving_model_ranker(baseline_model), users, movies, eval_.ratings
    )
  return report


def evaluate_artifacts(
  serving_model_uri: str,
  examples_artifact,
  schema,
  output_uri: str,
  baseline_model_uri: str | None = None,
) -> dict:
  model = load_serving_model(serving_model_uri)
  baseline = load_serving_model(baseline_model_uri) if baseline_model_uri else None
  spec = raw_feature_spec(schema)
  split = lambda name: read_raw(examples_artifact, name, spec)  # noqa: E731
  report = evaluate(
    model,
    known=split(contracts.TRAIN).concat(split(contracts.VALIDATION)),
    eval_=split(contracts.EVAL),
    new=split(contracts.NEW_USERS),
    baseline_model=baseline,
  )
  tf.io.gfile.makedirs(output_uri)
  with tf.io.gfile.GFile(os.path.join(output_uri, contracts.RETRIEVAL_EVALUATION_FILE), "w") as f:
    json.dump(report, f, indent=1)
  return report


def gate(
  report: dict,
  rating_blessed: bool,
  metric: str,
  min_ratio_to_popular: float,
  change_tolerance: float,
) -> tuple[bool, list[str]]:
  """(blessed, reasons it is not)."""
  reasons = []
  if not rating_blessed:
    reasons.append("the rating gate (TFMA: RMSE bound or change threshold) did not bless it")
  value = report["model"][metric]
  popular = report["most_popular"][metric]
  if value < popular * min_ratio_to_popular:
    reasons.append(
      f"{metric} {value:.4f} is below the most-popular baseline's {popular:.4f}"
      + (f" x {min_ratio_to_popular:g}" if min_ratio_to_popular != 1 else "")
    )
  baseline = report.get("baseline_model")
  if baseline and value < baseline[metric] - change_tolerance:
    reasons.append(
      f"{metric} {value:.4f} is worse than the last blessed model's "
      f"{baseline[metric]:.4f} by more than {change_tolerance:g}"
    )
  return not reasons, reasons


def write_blessing(uri: str, blessed: bool, reasons: list[str]) -> None:
  """BLESSED / NOT_BLESSED marker files as TFMA's Evaluator writes them, and the reasons."""
  tf.io.gfile.makedirs(uri)
  with tf.io.gfile.GFile(os.path.join(uri, "BLESSED" if blessed else "NOT_BLESSED"), "w") as f:
    f.write("")
  with tf.io.gfile.GFile(os.path.join(uri, contracts.GATE_FILE), "w") as f:
    json.dump({"blessed": blessed, "reasons": reasons}, f, indent=1)
