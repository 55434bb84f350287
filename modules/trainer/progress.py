"""The Trainer's progress, as log records a person can read and a CLI can draw.

Each epoch is one INFO record of the `nfrec.progress` logger: a readable line
(for Kubeflow's and CI's logs) carrying its fields in `record.progress` (for
`nfrec run`'s live line, nfrec/cli/progress.py). Within an epoch, at most one
DEBUG record a second gives the step, so a terminal can show a long epoch move.
"""

from __future__ import annotations

import logging
import time

import tensorflow as tf

from nfrec import contracts

log = logging.getLogger(contracts.PROGRESS_LOGGER)

# The epoch metrics worth a line: the loss and what model selection reads.
SHOWN_METRICS = ("loss", "val_recall_at_10", "val_rmse")
STEP_INTERVAL_S = 1.0
SELECTION = "selection fit"  # on train, epochs selected on validation
REFIT = "refit"  # on train + validation, for the selected epochs
# The rating stage (train.py): the rating head alone, its epochs selected on validation
# RMSE, then again in the refit.
RATING_STAGE = "rating stage"
REFIT_RATING_STAGE = "refit rating stage"
EARLY_STOPPED = (SELECTION, RATING_STAGE)  # may end before their `epochs`


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds} s"
  minutes, seconds = divmod(seconds, 60)
  if minutes < 60:
    return f"{minutes} min {seconds:02d} s"
  hours, minutes = divmod(minutes, 60)
  return f"{hours} h {minutes:02d} min"


class TrainingProgress(tf.keras.callbacks.Callback):
  """Logs each epoch of one fit: time, examples/s, metrics, and what is left.

  `phase` names the fit (SELECTION, RATING_STAGE: up to `epochs`, early stopping
  may end it sooner; REFIT, REFIT_RATING_STAGE: exactly `epochs`)."""

  def __init__(self, phase: str, epochs: int, steps_per_epoch: int, batch_size: int):
    super().__init__()
    self.phase = phase
    self.epochs = epochs
    self.steps_per_epoch = steps_per_epoch
    self.batch_size = batch_size
    self.epoch_seconds: list[float] = []
    self._epoch_start = 0.0
    self._last_step_log = 0.0

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch_start = self._last_step_log = time.perf_counter()

  def on_train_batch_end(self, batch, logs=None):
    now = time.perf_counter()
    if now - self._last_step_log < STEP_INTERVAL_S:
      return
    self._last_step_log = now
    epoch = len(self.epoch_seconds) + 1
    log.debug(
      "Trainer %s: epoch %d/%d, step %d/%d",
      self.phase,
      epoch,
      self.epochs,
      batch + 1,
      self.steps_per_epoch,
      extra={"progress": self._fields(epoch, step=batch + 1)},
    )

  def on_epoch_end(self, epoch, logs=None):
    seconds = time.perf_counter() - self._epoch_start
    self.epoch_seconds.append(seconds)
    metrics = {name: float(logs[name]) for name in SHOWN_METRICS if logs and name in logs}
    left = (self.epochs - epoch - 1) * (sum(self.epoch_seconds) / len(self.epoch_seconds))
    fields = self._fields(epoch + 1, seconds=seconds, metrics=metrics, left_s=left)
    shown = ", ".join(f"{name} {value:.4g}" for name, value in metrics.items())
    if not left:
      ends = "this fit is done"
    elif self.phase in EARLY_STOPPED:
      ends = f"this fit ends in at most {_duration(left)}"
    else:
      ends = f"this fit ends in about {_duration(left)}"
    log.info(
      "Trainer %s: epoch %d/%d in %.1f s (%s examples/s): %s; %s",
      self.phase,
      epoch + 1,
      self.epochs,
      seconds,
      f"{fields['examples_per_s']:,.0f}",
      shown,
      ends,
      extra={"progress": fields},
    )

  def _fields(self, epoch: int, **extra) -> dict:
    fields = {
      "phase": self.phase,
      "epoch": epoch,
      "epochs": self.epochs,
      "steps": self.steps_per_epoch,
      **extra,
    }
    if "seconds" in extra:
      fields["examples_per_s"] = (
        self.steps_per_epoch * self.batch_size / max(extra["seconds"], 1e-9)
      )
    return fields
