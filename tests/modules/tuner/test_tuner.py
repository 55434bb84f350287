"""tuner_fn: a grid over the tuning space, each trial one selection fit scored on validation."""

import types

import numpy as np
import pytest
from keras_tuner import errors as tuner_errors

from modules import interactions
from modules.trainer import train as train_lib
from modules.tuner import tuner as tuner_lib
from pipeline import config as config_lib

DEFAULT = config_lib.PRESETS["default"]
SPACE = [["embedding_dim", [128, 256]], ["user_hidden_units", [[], [256]]]]
SPLIT = interactions.Ratings(
  np.zeros(1, int), np.zeros(1, int), np.ones(1, np.float32), np.zeros(1, int)
)


def _search(tmp_path, monkeypatch, score):
  """Runs tuner_fn's search with train.fit replaced by `score(hparams)`; returns the
  tuner and the hyperparameters each trial was fitted with."""
  inputs = tuner_lib.run.TrainingData(SPLIT, SPLIT, ["7"], ["1"], None, None, None)
  fitted = []

  def fit(train, validation, hparams, **_):
    assert train is SPLIT and validation is SPLIT
    fitted.append(hparams)
    return train_lib.Trained(model=None, metrics=score(hparams), history={}, epochs=1, seconds={})

  monkeypatch.setattr(tuner_lib.run, "read_training_data", lambda _: inputs)
  monkeypatch.setattr(train_lib, "fit", fit)
  fn_args = types.SimpleNamespace(
    working_dir=str(tmp_path),
    custom_config={"hparams": DEFAULT.to_dict(), "tuning_space": SPACE},
  )
  result = tuner_lib.tuner_fn(fn_args)
  result.tuner.search(**result.fit_kwargs)
  return result.tuner, fitted


def test_every_combination_is_fitted_once_and_the_best_on_validation_wins(tmp_path, monkeypatch):
  def score(hparams):  # the wider model with the MLP is best; RMSE is not the objective
    recall = 0.1 * (hparams.embedding_dim == 256) + 0.05 * bool(hparams.user_hidden_units)
    return {"recall_at_10": 0.2 + recall, "rmse": 1.0 - recall}

  tuner, fitted = _search(tmp_path, monkeypatch, score)
  tried = {(h.embedding_dim, h.user_hidden_units) for h in fitted}
  assert len(fitted) == 4 and tried == {(128, ()), (128, (256,)), (256, ()), (256, (256,))}
  # A trial is the selection fit only, every other knob as the preset has it.
  for hparams in fitted:
    assert not hparams.refit_on_validation and hparams.rating_stage_epochs == 0
    assert (
      hparams.replace(
        embedding_dim=128,
        user_hidden_units=(),
        refit_on_validation=True,
        rating_stage_epochs=DEFAULT.rating_stage_epochs,
      )
      == DEFAULT
    )
  best = tuner.get_best_hyperparameters()[0].values
  assert DEFAULT.tuned(best).embedding_dim == 256
  assert DEFAULT.tuned(best).user_hidden_units == (256,)
  assert tuner.oracle.get_best_trials(1)[0].score == pytest.approx(0.35)


def test_a_failing_trial_stops_the_search_with_its_values(tmp_path, monkeypatch):
  def score(hparams):
    if hparams.embedding_dim == 256:
      raise MemoryError("out of memory")
    return {"recall_at_10": 0.2, "rmse": 1.0}

  with pytest.raises(tuner_errors.FatalError, match="'embedding_dim': 256.*out of memory"):
    _search(tmp_path, monkeypatch, score)


def test_the_objective_must_be_a_validation_metric(tmp_path):
  preset = DEFAULT.replace(early_stopping_monitor="loss")
  fn_args = types.SimpleNamespace(
    working_dir=str(tmp_path), custom_config={"hparams": preset.to_dict(), "tuning_space": SPACE}
  )
  with pytest.raises(ValueError, match="'loss' is no validation metric"):
    tuner_lib.tuner_fn(fn_args)
