"""Training the model: fit on train, select on validation, refit on both.

  1. Fit on the train split. After each epoch, measure on the validation split
     what the push gate measures (RMSE and filtered Recall@10, docs/metrics.md),
     each validation user described by their train history; early stopping
     watches `early_stopping_monitor` and restores the best epoch.
  2. With `rating_stage_epochs`, a rating stage: the towers frozen, the rating
     head and biases (and with `rating_towers` a copy of the towers, which the head
     reads from then on) train on the rating loss alone; its epochs are selected on
     validation RMSE (none, unless the best lowers the errors beyond validation's
     noise). The rating task keeps improving after retrieval has peaked
     (docs/results.md).
  3. With `refit_on_validation`, train a fresh model on train + validation for
     the selected numbers of epochs (both stages): the served model then knows the
     most recent period too, as the classic peers refit on it (docs/results.md).

The eval and new_users splits are never read here (tests/modules/trainer/test_run.py).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import tensorflow as tf

from modules import cold_movies, interactions
from modules.evaluation import metrics as metrics_lib
from modules.trainer import data, progress
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
# Validation Recall is measured on at most this many users (a seeded sample): it
# ranks the whole catalog for each, every epoch.
MAX_VALIDATION_USERS = 10_000
USERS_PER_CALL = 512
HISTORY_ROWS_PER_CALL = USERS_PER_CALL * 256  # padded entries a call: fewer users if long
# Validation pairs rated per call: the movie tower embeds each pair's title words, so one
# call over the 1.5M validation pairs of a 17M-rating set held 7 GB (measured).
PAIRS_PER_CALL = 65_536


def distribution_strategy(name: str) -> tf.distribute.Strategy:
  """The strategy by name. Create it before TensorFlow runs anything else in the process:
  MultiWorkerMirroredStrategy configures collective ops, which TF allows only at startup."""
  if name not in DISTRIBUTION_STRATEGIES:
    raise ValueError(
      f"Unknown distribution strategy {name!r}; choose one of {sorted(DISTRIBUTION_STRATEGIES)}."
    )
  return DISTRIBUTION_STRATEGIES[name]()


def user_queries(
  model: model_lib.RecommenderModel, histories: interactions.Histories, users: np.ndarray
):
  """(retrieval queries [U, D], user vectors [U, d], user biases [U]) from histories,
  in the order of `users`."""
  window = model.query_window
  lengths = np.minimum(histories.lengths(users), window)  # all 0 for an ids-only model
  # Called every epoch: users of alike history lengths share a call, so few calls pad
  # little (32 users a call at the 4,096-rating query window took 0.9 s of the sample's
  # 1.2 s validation pass).
  calls = interactions.calls_by_length(lengths, USERS_PER_CALL, HISTORY_ROWS_PER_CALL)
  queries, vectors, biases = [], [], []
  for call in calls:
    chunk = users[call]
    sums = None
    if window:
      movies, ratings, length = histories.padded(chunk, window)
      sums = model.history_sums(movies, ratings, length)
    vector, bias = model.user_tower(tf.constant(chunk, tf.int64), sums)
    queries.append(model.query(vector).numpy())
    vectors.append(vector.numpy())
    biases.append(bias.numpy())
  order = np.concatenate(calls)
  return tuple(
    interactions.placed(np.concatenate(parts), order) for parts in (queries, vectors, biases)
  )


class Validation:
  """The model's metrics on a split, each user described by the history split.

  RMSE/MAE of the rating head on every pair whose user and movie the model knows,
  and the retrieval metrics of metrics.retrieval_metrics (filtered: the history's
  movies excluded) on up to `max_users` users. The ranked candidates are those the
  served index holds: the vocabulary's movies, then the `cold` catalog movies (no
  training rating), embedded and biased as the ServingModelBuilder does.
  """

  def __init__(
    self,
    history: interactions.Ratings,
    split: interactions.Ratings,
    num_users: int,
    num_movies: int,
    seed: int,
    max_users: int = MAX_VALIDATION_USERS,
    cold: cold_movies.ColdMovies | None = None,
  ):
    if not len(split):
      raise ValueError("The validation split is empty: nothing to select the model on.")
    self.num_users, self.num_movies = num_users, num_movies
    self.cold = cold if cold is not None and len(cold) else None
    self.movie_counts = np.bincount(history.movie[history.movie < num_movies], minlength=num_movies)
    self.histories = interactions.Histories(history, num_users)
    known = (split.user < num_users) & (split.movie < num_movies)
    self.pairs = interactions.Ratings(*(column[known] for column in split.columns()))
    users = np.unique(self.pairs.user)
    if len(users) > max_users:
      users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    keep = np.isin(self.pairs.user, users)
    self.ranked = interactions.Ratings(*(column[keep] for column in self.pairs.columns()))
    rated = interactions.rated_index(history.user, history.movie, num_users, num_movies)
    self.exclusions = (rated["rated_row_splits"], rated["rated_movies"])

  def _errors(self, model, users, vectors, biases, pairs_per_call=PAIRS_PER_CALL) -> np.ndarray:
    row = np.searchsorted(users, self.pairs.user)
    predicted = []
    for part in interactions.slices(len(row), pairs_per_call):
      movie_vector, movie_bias, _ = model.movie_tower(tf.constant(self.pairs.movie[part]))
      user_vector, user_bias = vectors[row[part]], biases[row[part]]
      predicted.append(
        model.rate(
          tf.constant(user_vector), tf.constant(user_bias), movie_vector, movie_bias
        ).numpy()
      )
    return np.concatenate(predicted) - self.pairs.rating

  def rating_errors(self, model: model_lib.RecommenderModel) -> np.ndarray:
    """Predicted minus given rating of each pair whose user and movie the model knows."""
    users = np.unique(self.pairs.user)
    _, vectors, biases = user_queries(model, self.histories, users)
    return self._errors(model, users, vectors, biases)

  def candidates(self, model: model_lib.RecommenderModel) -> np.ndarray:
    """Retrieval vectors [M + C, D]: the vocabulary's movies, then the cold ones (the
    OOV id row and their title and year; the popularity term of half a rating)."""
    candidates = model.candidates().numpy()
    if self.cold is None:
      return candidates
    vector, _, retrieval_bias = model.movie_tower(
      tf.fill([len(self.cold)], tf.constant(self.num_movies, tf.int64)),
      tf.constant(self.cold.title_tokens),
      tf.constant(self.cold.year_bucket),
    )
    cold = model.candidate(vector, retrieval_bias).numpy()
    return cold_movies.place_cold_bias(
      np.concatenate([candidates, cold]),
      self.num_movies,
      self.movie_counts,
      model.hparams.retrieval_bias,
    )

  def __call__(self, model: model_lib.RecommenderModel) -> dict:
    users = np.unique(np.concatenate([self.pairs.user, self.ranked.user]))
    queries, vectors, biases = user_queries(model, self.histories, users)
    errors = self._errors(model, users, vectors, biases)
    candidates = self.candidates(model)
    ranker = metrics_lib.Ranker(
      num_users=self.num_users,
      num_movies=len(candidates),
      rated_row_splits=self.exclusions[0],
      rated_movies=self.exclusions[1],
      scores=lambda user_index: queries[np.searchsorted(users, user_index)] @ candidates.T,
    )
    result = metrics_lib.retrieval_metrics(
      ranker, self.ranked.user, self.ranked.movie, self.ranked.rating, curve_ks=()
    )
    result.update(
      {
        contracts.RMSE: float(np.sqrt(np.mean(errors**2))),
        contracts.MAE: float(np.mean(np.abs(errors))),
      }
    )
    return result


class ValidationCallback(tf.keras.callbacks.Callback):
  """Adds the validation metrics to each epoch's logs as `val_<name>` (for early
  stopping and TensorBoard), and keeps them per epoch."""

  def __init__(self, validation: Validation):
    super().__init__()
    self.validation = validation
    self.by_epoch: list[dict] = []

  def on_epoch_end(self, epoch, logs=None):
    metrics = self.validation(self.model)
    self.by_epoch.append(metrics)
    if logs is not None:
      logs.update(
        {f"val_{name}": value for name, value in metrics.items() if isinstance(value, float)}
      )


def _batches(ratings: interactions.Ratings, num_users: int, num_movies: int, hparams: HParams):
  if hparams.history_window:
    return data.sequence_batches(
      ratings,
      num_users,
      num_movies,
      hparams.batch_size,
      context=hparams.history_window,
      seed=hparams.seed,
      by_time=ratings.has_time,
      chunk=hparams.history_chunk,
    )
  return data.shuffled_batches(ratings, hparams.batch_size, hparams.seed)


def _build(ratings, num_users, num_movies, hparams, steps, features):
  statistics = data.training_statistics(ratings, num_users, num_movies)
  return model_lib.build_model(
    num_users,
    num_movies,
    hparams,
    steps_per_epoch=steps,
    features=features,
    **statistics,
  )


def monitor_mode(monitor: str) -> str:
  """Early stopping's direction for a Keras log name: errors and losses are minimized."""
  return "min" if monitor.endswith(("rmse", "mae", "loss")) else "max"


@dataclasses.dataclass
class RatingStage:
  epochs: int  # selected: 0 if none lowered the validation errors beyond noise
  metrics: dict  # on validation, at the selected epoch
  history: dict  # per-epoch logs


def lowers_squared_error(before: np.ndarray, after: np.ndarray, z: float = 2.0) -> bool:
  """Whether the errors `after` are smaller than `before` (the same pairs) by more than `z`
  standard errors of the mean paired difference of squared errors: a one-sided paired
  test, so a gain within validation's noise does not count."""
  gain = before.astype(np.float64) ** 2 - after.astype(np.float64) ** 2
  if len(gain) < 2:
    return False
  return bool(gain.mean() > z * gain.std(ddof=1) / np.sqrt(len(gain)))


def _start_rating_stage(model, hparams: HParams, strategy: tf.distribute.Strategy) -> None:
  with strategy.scope():
    model.start_rating_stage(hparams.rating_stage_learning_rate)


def _fit_rating_stage(
  model, dataset, steps, epochs, phase, hparams, stage_callbacks=(), callbacks=()
) -> dict:
  """Trains the started rating stage of `model` `epochs` (early stopping in
  `stage_callbacks` may end it sooner); returns the per-epoch logs."""
  return model.fit(
    dataset,
    steps_per_epoch=steps,
    epochs=epochs,
    callbacks=[
      *stage_callbacks,  # before the progress line, which shows the val_ metrics they log
      progress.TrainingProgress(phase, epochs, steps, hparams.batch_size),
      *callbacks,
    ],
    verbose=0,
  ).history


def select_rating_stage(
  model: model_lib.RecommenderModel,
  dataset: tf.data.Dataset,
  steps: int,
  validation: Validation,
  selected: dict,
  hparams: HParams,
  strategy: tf.distribute.Strategy,
  callbacks=(),
) -> RatingStage:
  """Runs the rating stage on the selected `model` (its validation metrics `selected`)
  and keeps its best epoch by validation RMSE if that lowers the validation errors beyond
  noise (lowers_squared_error), else the model as it was."""
  # Started first, so `before` holds the rating towers as copied (rating_towers).
  _start_rating_stage(model, hparams, strategy)
  before = model.get_weights()
  errors_before = validation.rating_errors(model)
  on_validation = ValidationCallback(validation)
  stopping = tf.keras.callbacks.EarlyStopping(
    monitor=f"val_{contracts.RMSE}",
    mode="min",
    patience=max(hparams.early_stopping_patience, 1),
    restore_best_weights=True,
  )
  history = _fit_rating_stage(
    model,
    dataset,
    steps,
    hparams.rating_stage_epochs,
    progress.RATING_STAGE,
    hparams,
    [on_validation, stopping],
    callbacks,
  )
  rmse = np.array([metrics[contracts.RMSE] for metrics in on_validation.by_epoch])
  rmse[~np.isfinite(rmse)] = np.inf  # a diverged epoch is never the best
  best = int(np.argmin(rmse))
  # The best epoch's weights are restored (EarlyStopping) when it is finite.
  if not np.isfinite(rmse[best]) or not lowers_squared_error(
    errors_before, validation.rating_errors(model)
  ):
    model.set_weights(before)
    return RatingStage(0, dict(selected), history)
  return RatingStage(best + 1, dict(on_validation.by_epoch[best]), history)


@dataclasses.dataclass
class Trained:
  model: model_lib.RecommenderModel
  metrics: dict  # on validation, at the selected epoch (of the rating stage, if any)
  history: dict  # per-epoch logs of the selection fit
  epochs: int  # selected
  seconds: dict  # of the selection fit, the rating stage and the refit
  warm_start: dict | None = None  # what was carried over from the last blessed model
  rating_stage: RatingStage | None = None


def fit(
  train: interactions.Ratings,
  validation: interactions.Ratings,
  num_users: int,
  num_movies: int,
  hparams: HParams,
  features: model_lib.MovieFeatures | None = None,
  strategy: tf.distribute.Strategy | None = None,
  log_dir: str | None = None,
  callbacks=(),
  warm_from=None,
  cold: cold_movies.ColdMovies | None = None,
) -> Trained:
  """Fits on train, selects on validation, and (refit_on_validation) refits on both;
  `warm_from` (warm_start.WarmStart) starts both fits from the last blessed model;
  validation ranks the `cold` catalog movies too, as the served index will."""
  validation_metrics = Validation(train, validation, num_users, num_movies, hparams.seed, cold=cold)
  dataset, steps = _batches(train, num_users, num_movies, hparams)
  strategy = strategy or tf.distribute.get_strategy()
  with strategy.scope():
    model = _build(train, num_users, num_movies, hparams, steps, features)
    warm = warm_from.apply(model) if warm_from else None
  on_validation = ValidationCallback(validation_metrics)
  stopping = []
  if hparams.early_stopping_patience:
    stopping.append(
      tf.keras.callbacks.EarlyStopping(
        monitor=hparams.early_stopping_monitor,
        mode=monitor_mode(hparams.early_stopping_monitor),
        patience=hparams.early_stopping_patience,
        min_delta=hparams.early_stopping_min_delta,
        restore_best_weights=True,
      )
    )
  logging = (
    [tf.keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch")] if log_dir else []
  )
  started = time.time()
  history = model.fit(
    dataset,
    steps_per_epoch=steps,
    epochs=hparams.epochs,
    callbacks=[
      on_validation,
      *stopping,
      *logging,
      progress.TrainingProgress(progress.SELECTION, hparams.epochs, steps, hparams.batch_size),
      *callbacks,
    ],
    verbose=0,
  ).history
  seconds = {"selection": time.time() - started}
  epochs_run = len(history.get("loss", []))
  best = (
    stopping[0].best_epoch if stopping and stopping[0].best_weights is not None else epochs_run - 1
  )
  metrics = dict(on_validation.by_epoch[best]) if epochs_run else validation_metrics(model)
  stage = None
  if hparams.rating_stage_epochs and epochs_run:
    started = time.time()
    stage = select_rating_stage(
      model, dataset, steps, validation_metrics, metrics, hparams, strategy, callbacks
    )
    metrics = stage.metrics
    seconds["rating_stage"] = time.time() - started
  if hparams.refit_on_validation and epochs_run:
    both = train.concat(validation)
    dataset, steps = _batches(both, num_users, num_movies, hparams)
    with strategy.scope():
      model = _build(both, num_users, num_movies, hparams, steps, features)
      if warm_from:
        warm_from.apply(model)
    started = time.time()
    refit_progress = progress.TrainingProgress(progress.REFIT, best + 1, steps, hparams.batch_size)
    model.fit(
      dataset,
      steps_per_epoch=steps,
      epochs=best + 1,
      callbacks=[refit_progress, *callbacks],
      verbose=0,
    )
    if stage and stage.epochs:
      _start_rating_stage(model, hparams, strategy)
      _fit_rating_stage(
        model,
        dataset,
        steps,
        stage.epochs,
        progress.REFIT_RATING_STAGE,
        hparams,
        callbacks=callbacks,
      )
    seconds["refit"] = time.time() - started
  return Trained(
    model,
    metrics,
    history,
    epochs=best + 1 if epochs_run else 0,
    seconds=seconds,
    warm_start=warm,
    rating_stage=stage,
  )
