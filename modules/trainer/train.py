"""Training and evaluating the model on in-memory columns (see data.py)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from modules.trainer import data
from modules.trainer import model as model_lib
from modules.trainer.hparams import HParams
from nfrec import contracts

# contracts.DISTRIBUTION_STRATEGIES: one device, all local devices (GPUs/CPUs), or
# synchronous data parallelism across the workers named in TF_CONFIG (a cluster).
DISTRIBUTION_STRATEGIES = {
  "default": tf.distribute.get_strategy,
  "mirrored": tf.distribute.MirroredStrategy,
  "multi_worker_mirrored": tf.distribute.MultiWorkerMirroredStrategy,
}


def distribution_strategy(name: str) -> tf.distribute.Strategy:
  if name not in DISTRIBUTION_STRATEGIES:
    raise ValueError(
      f"Unknown distribution strategy {name!r}; choose one of {sorted(DISTRIBUTION_STRATEGIES)}."
    )
  return DISTRIBUTION_STRATEGIES[name]()


def evaluate(
  model: model_lib.RecommenderModel,
  dataset: tf.data.Dataset,
  num_movies: int,
  ks=contracts.RETRIEVAL_KS,
) -> dict:
  """Rating RMSE/MAE and top-K accuracy over the whole candidate set (docs/metrics.md)."""
  squared_error = absolute_error = 0.0
  hits = {k: 0 for k in ks}
  count = 0
  candidates = model_lib.candidate_vectors(model, num_movies)  # once, not per batch
  for batch in dataset:
    user_index, movie_index = batch[contracts.USER_INDEX], batch[contracts.MOVIE_INDEX]
    error = model.predict_ratings(user_index, movie_index) - batch[contracts.RATING_LABEL]
    squared_error += float(tf.reduce_sum(error * error))
    absolute_error += float(tf.reduce_sum(tf.abs(error)))
    ranks = model_lib.retrieval_ranks(model, user_index, movie_index, candidates)
    # A movie the model never saw in training cannot be retrieved: a miss.
    ranks = tf.where(movie_index < num_movies, ranks, num_movies)
    for k in ks:
      hits[k] += int(tf.reduce_sum(tf.cast(ranks < k, tf.int32)))
    count += int(tf.shape(user_index)[0])
  if not count:
    raise ValueError("The eval split is empty: nothing to evaluate the model on.")
  metrics = {
    contracts.RMSE: float(np.sqrt(squared_error / count)),
    contracts.MAE: absolute_error / count,
    "eval_examples": count,
  }
  metrics.update({contracts.top_k_accuracy(k): hits[k] / count for k in ks})
  return metrics


def fit(
  train_columns: dict,
  eval_columns: dict,
  num_users: int,
  num_movies: int,
  hparams: HParams,
  strategy_name: str = "default",
  log_dir: str | None = None,
) -> tuple[model_lib.RecommenderModel, dict]:
  """Builds and fits the model; returns it with its metrics on `eval_columns`."""
  counts, mean_rating = data.training_statistics(train_columns, num_movies)
  if not data.num_examples(eval_columns):
    raise ValueError("The eval split is empty: nothing to evaluate the model on.")
  train_data, steps_per_epoch = data.shuffled_batches(
    train_columns, hparams.batch_size, hparams.seed
  )
  eval_data = data.in_order_batches(eval_columns, hparams.batch_size)

  with distribution_strategy(strategy_name).scope():
    model = model_lib.build_model(
      num_users,
      num_movies,
      hparams,
      movie_counts=counts,
      global_mean=mean_rating,
      steps_per_epoch=steps_per_epoch,
    )
  callbacks = []
  if log_dir:
    callbacks.append(tf.keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"))
  if hparams.early_stopping_patience:
    callbacks.append(
      tf.keras.callbacks.EarlyStopping(
        monitor=hparams.early_stopping_monitor,
        patience=hparams.early_stopping_patience,
        min_delta=hparams.early_stopping_min_delta,
        restore_best_weights=True,
      )
    )
  history = model.fit(
    train_data,
    steps_per_epoch=steps_per_epoch,
    validation_data=eval_data,
    epochs=hparams.epochs,
    callbacks=callbacks,
    verbose=0,
  )
  metrics = evaluate(model, eval_data, num_movies)
  metrics.update(
    num_users=num_users,
    num_movies=num_movies,
    epochs_run=len(history.history.get("loss", [])),
    history={name: [float(v) for v in values] for name, values in history.history.items()},
  )
  return model, metrics
