"""Tuner module: `tuner_fn` chooses hyperparameters on the validation split.

The search is a grid over `custom_config["tuning_space"]` (knob names and values,
pipeline/config.py), the other knobs as the preset has them. A trial is one
selection fit of train.fit (fit on train, early stopping on validation; no rating
stage, no refit: those do not change what a trial is scored on), scored by the
preset's early-stopping metric at its selected epoch: validation Recall@10 in the
default preset. The Trainer then runs the whole recipe with the best values
(modules/trainer/run.py). Like the Trainer, the Tuner reads train and validation
only, never eval or new_users (tests/components/recommender_trainer/).
"""

from __future__ import annotations

import math

import absl.logging
import keras_tuner
from keras_tuner.engine import base_tuner
from tfx import v1 as tfx

from modules.trainer import run, train
from modules.trainer.hparams import HParams, tuning_choices

PROJECT_NAME = "nfrec"


class FitTuner(base_tuner.BaseTuner):
  """KerasTuner's search loop and bookkeeping around our own training: each trial
  calls `fit_trial` with the trial's values and reports the metrics it returns."""

  def __init__(self, fit_trial, **kwargs):
    super().__init__(**kwargs)
    self.fit_trial = fit_trial

  def run_trial(self, trial, *_, **__):
    try:
      return self.fit_trial(trial.hyperparameters.values)
    except Exception as error:
      # KerasTuner would mark the trial invalid and go on; a failing recipe is a bug to see.
      raise keras_tuner.errors.FatalError(
        f"Tuner trial {trial.trial_id} ({trial.hyperparameters.values}) failed: {error!r}"
      ) from error


def search_space(space) -> keras_tuner.HyperParameters:
  """A Choice per knob, in the order given: [[name, [value, ...]], ...]."""
  hyperparameters = keras_tuner.HyperParameters()
  for name, values in space:
    hyperparameters.Choice(name, tuning_choices(name, values), ordered=False)
  return hyperparameters


def trial_hparams(preset: HParams) -> HParams:
  """What one trial trains: the selection fit only."""
  return preset.replace(refit_on_validation=False, rating_stage_epochs=0)


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
  """TFX Tuner entry point; the preset in `custom_config["hparams"]`, the grid in
  `custom_config["tuning_space"]`."""
  config = fn_args.custom_config
  preset = trial_hparams(HParams.from_dict(config["hparams"]))
  space = config["tuning_space"]
  objective = preset.early_stopping_monitor
  if not objective.startswith("val_"):
    raise ValueError(f"The preset's early_stopping_monitor {objective!r} is no validation metric.")
  inputs = run.read_training_data(fn_args)

  def fit_trial(values: dict) -> dict:
    hparams = preset.tuned(values)
    trained = train.fit(**inputs.fit_inputs(), hparams=hparams)
    scores = {
      f"val_{name}": value for name, value in trained.metrics.items() if isinstance(value, float)
    }
    absl.logging.info(
      "Tuner trial %s: %s %.4f at epoch %d", values, objective, scores[objective], trained.epochs
    )
    return scores

  grid_size = math.prod(len(values) for _, values in space)
  tuner = FitTuner(
    fit_trial,
    oracle=keras_tuner.oracles.GridSearchOracle(
      objective=keras_tuner.Objective(objective, direction=train.monitor_mode(objective)),
      max_trials=grid_size,
      hyperparameters=search_space(space),
      allow_new_entries=False,
      tune_new_entries=False,
    ),
    directory=fn_args.working_dir,
    project_name=PROJECT_NAME,
    overwrite=True,
  )
  return tfx.components.TunerFnResult(tuner=tuner, fit_kwargs={})
