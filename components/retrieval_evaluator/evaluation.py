"""What RetrievalEvaluator does, as plain functions (testable without a pipeline)."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx.utils import path_utils

from components.retrieval_evaluator import metrics as metrics_lib
from modules.transform import examples, vocabulary
from nfrec import contracts

PREDICT_BATCH = 65_536


def load_serving_model(model_uri: str):
  try:
    import scann  # noqa: F401  (a ScaNN index needs its ops registered to load)
  except ImportError:
    pass
  return tf.saved_model.load(path_utils.serving_model_path(model_uri))


def vocabulary_ids(model, model_dir: str) -> tuple[np.ndarray, np.ndarray]:
  """(user ids, movie ids) by vocabulary index, from the serving model itself: the user
  vocabulary is Transform's file among its assets, the movie ids are a variable."""
  user_ids = vocabulary.read_vocabulary(contracts.asset_path(model_dir, contracts.USER_VOCABULARY))
  return user_ids, model.movie_ids.numpy()


def predict_ratings(model, user_ids: np.ndarray, movie_ids: np.ndarray) -> np.ndarray:
  """Through the `predict_rating` signature: what TF Serving (and TFMA) computes."""
  predict = model.signatures[contracts.SIGNATURE_PREDICT_RATING]
  out = [
    predict(
      **{
        contracts.INPUT_USER_ID: tf.constant(user_ids[i : i + PREDICT_BATCH].tolist(), tf.string),
        contracts.INPUT_MOVIE_ID: tf.constant(movie_ids[i : i + PREDICT_BATCH].tolist(), tf.string),
      }
    )[contracts.OUTPUT_RATING].numpy()
    for i in range(0, len(user_ids), PREDICT_BATCH)
  ]
  return np.concatenate(out) if out else np.zeros(0, np.float32)


def evaluate(model, model_dir: str, train: tuple, eval_: tuple, baseline_model=None) -> dict:
  """Retrieval metrics of the model, of the last blessed model and of the baselines.

  `train`/`eval_` are (user index, movie index, rating) in the model's vocabulary
  (Transform's output it was trained on).
  """
  ranker = metrics_lib.serving_model_ranker(model)
  num_users, num_movies = ranker.num_users, ranker.num_movies
  user_ids, movie_ids = vocabulary_ids(model, model_dir)
  eval_user, eval_movie, eval_rating = eval_
  raw_users = vocabulary.ids_of(user_ids, eval_user)
  raw_movies = vocabulary.ids_of(movie_ids, eval_movie)

  predictions = predict_ratings(model, raw_users, raw_movies)
  user_train_counts = np.bincount(train[0], minlength=num_users + 1)
  report = {
    "model": dict(
      metrics_lib.retrieval_metrics(ranker, eval_user, eval_movie, eval_rating),
      **{
        contracts.RMSE: float(np.sqrt(np.mean((predictions - eval_rating) ** 2))),
        contracts.MAE: float(np.mean(np.abs(predictions - eval_rating))),
      },
      rmse_by_activity=metrics_lib.rmse_by_activity(
        predictions, eval_rating, user_train_counts[np.minimum(eval_user, num_users)]
      ),
    ),
    "most_popular": metrics_lib.retrieval_metrics(
      metrics_lib.popularity_ranker(
        np.bincount(train[1][train[1] < num_movies], minlength=num_movies), ranker
      ),
      eval_user,
      eval_movie,
      eval_rating,
    ),
    "rating_baselines": metrics_lib.rating_baselines(train, eval_, num_users, num_movies),
    "rating_counts": {
      split: {
        f"{value:g}": int(count)
        for value, count in zip(*np.unique(ratings, return_counts=True), strict=True)
      }
      for split, ratings in (("train", train[2]), ("eval", eval_rating))
    },
  }
  if baseline_model is not None:
    # The last blessed model has its own vocabulary: map the eval pairs through raw ids.
    baseline_ranker = metrics_lib.serving_model_ranker(baseline_model)
    baseline_users = baseline_model.core.user_index(tf.constant(raw_users.tolist())).numpy()
    baseline_movies = baseline_model.core.movie_index(tf.constant(raw_movies.tolist())).numpy()
    report["baseline_model"] = metrics_lib.retrieval_metrics(
      baseline_ranker, baseline_users, baseline_movies, eval_rating
    )
  return report


def evaluate_artifacts(
  serving_model_uri: str,
  transformed_examples,
  transform_graph_uri: str,
  output_uri: str,
  baseline_model_uri: str | None = None,
) -> dict:
  model_dir = path_utils.serving_model_path(serving_model_uri)
  model = load_serving_model(serving_model_uri)
  baseline = load_serving_model(baseline_model_uri) if baseline_model_uri else None
  spec = tft.TFTransformOutput(transform_graph_uri).transformed_feature_spec()
  train = examples.read_interactions(transformed_examples, "train", spec)
  eval_ = examples.read_interactions(transformed_examples, "eval", spec)
  report = evaluate(model, model_dir, train, eval_, baseline)
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
