"""What the Trainer leaves behind: the core model and its metrics."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from modules.serving import core_model
from nfrec import contracts


def export_core_model(model, tf_transform_output, export_dir: str) -> None:
  """The trained model and Transform's vocabularies as a SavedModel (see core_model)."""
  core_model.save(core_model.CoreModel(model, tf_transform_output), export_dir)


def metrics_report(trained) -> dict:
  """metrics.json: the validation metrics of the selected epoch, how it was selected,
  and the per-epoch history of the selection fit and of the rating stage (train.Trained)."""
  return {
    **{name: value for name, value in trained.metrics.items() if isinstance(value, float)},
    "split": contracts.VALIDATION,
    "epochs_selected": trained.epochs,
    "epochs_run": len(trained.history.get("loss", [])),
    "refit_on_validation": trained.model.hparams.refit_on_validation,
    "hparams": trained.model.hparams.to_dict(),  # the preset's, or with the Tuner's choices
    "num_users": trained.model.num_users,
    "num_movies": trained.model.num_movies,
    "seconds": {name: round(value, 1) for name, value in trained.seconds.items()},
    "warm_start": trained.warm_start,
    "history": _floats(trained.history),
    "rating_stage": _rating_stage_report(trained.rating_stage),
  }


def _floats(history: dict) -> dict:
  """Keras per-epoch logs as plain floats (JSON)."""
  return {name: [float(v) for v in values] for name, values in history.items()}


def _rating_stage_report(stage) -> dict | None:
  if stage is None:
    return None
  return {
    "epochs_selected": stage.epochs,
    "epochs_run": len(stage.history.get("loss", [])),
    "history": _floats(stage.history),
  }


def write_metrics(metrics: dict, model_run_dir: str) -> None:
  """metrics.json beside the TensorBoard logs (the run summary reads it)."""
  tf.io.gfile.makedirs(model_run_dir)
  with tf.io.gfile.GFile(os.path.join(model_run_dir, contracts.TRAINER_METRICS_FILE), "w") as f:
    json.dump(metrics, f, indent=2)
