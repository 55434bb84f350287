"""Hyperparameters: the presets are the only defaults; a wrong knob fails loudly."""

import dataclasses

import pytest

from modules.trainer import hparams as hparams_lib
from modules.trainer import optimizers
from pipeline import config as config_lib

DEFAULT = config_lib.PRESETS["default"]


def test_dict_round_trip_is_exact():
  assert hparams_lib.HParams.from_dict(DEFAULT.to_dict()) == DEFAULT


def test_unknown_and_missing_knobs_are_named():
  values = dict(DEFAULT.to_dict(), embeding_dim=8)
  del values["epochs"]
  with pytest.raises(ValueError, match=r"unknown \['embeding_dim'\]; missing \['epochs'\]"):
    hparams_lib.HParams.from_dict(values)
  with pytest.raises(ValueError, match="Unknown hyperparameter 'embeding_dim'"):
    DEFAULT.replace(embeding_dim=8)


@pytest.mark.parametrize(
  "knob, value, message",
  [
    ("epochs", "4", "epochs must be int"),
    ("use_bias", 1, "use_bias must be bool"),
    ("learning_rate", True, "learning_rate must be float"),
    ("optimizer", "sgd", "optimizer 'sgd' is not one of"),
    ("retrieval_loss_reduction", "max", "retrieval_loss_reduction 'max' is not one of"),
    ("batch_size", 0, "batch_size must be at least 1"),
    ("retrieval_temperature", 0.0, "retrieval_temperature must be positive"),
    ("learning_rate_decay", 0.0, r"learning_rate_decay must be in \(0, 1\]"),
    ("learning_rate_decay", 1.5, r"learning_rate_decay must be in \(0, 1\]"),
    ("learning_rate_floor", -0.001, "learning_rate_floor must not be negative"),
    ("learning_rate", 0.0001, r"learning_rate_floor \(.+\) must not exceed learning_rate"),
    ("user_hidden_units", (64, 0), r"user_hidden_units must be at least 1 each, got \(64, 0\)"),
    ("history_pooling_power", 1.5, r"history_pooling_power must be in \[0, 1\], got 1.5"),
  ],
)
def test_a_bad_value_fails_with_its_name(knob, value, message):
  with pytest.raises(ValueError, match=message):
    DEFAULT.replace(**{knob: value})


def test_rating_towers_need_the_rating_stage_that_trains_them():
  assert DEFAULT.rating_towers and DEFAULT.rating_stage_epochs
  assert DEFAULT.trains_rating_towers
  assert not DEFAULT.replace(rating_stage_epochs=0).trains_rating_towers
  assert not DEFAULT.replace(rating_towers=False).trains_rating_towers


def test_a_lower_rate_is_accepted_with_a_lower_floor():
  changed = DEFAULT.replace(learning_rate=0.0001, learning_rate_floor=0.00001)
  assert (changed.learning_rate, changed.learning_rate_floor) == (0.0001, 0.00001)


def test_integers_are_accepted_as_floats_and_lists_as_tuples():
  changed = DEFAULT.replace(l2=0, rating_hidden_units=[64], user_hidden_units=[32, 16])
  assert changed.l2 == 0 and changed.rating_hidden_units == (64,)
  assert changed.user_hidden_units == (32, 16)
  assert hparams_lib.HParams.from_dict(changed.to_dict()) == changed


def test_every_preset_sets_every_knob_and_every_optimizer_is_built():
  fields = {field.name for field in dataclasses.fields(hparams_lib.HParams)}
  for preset in config_lib.PRESETS.values():
    assert set(preset.to_dict()) == fields
  assert set(optimizers.OPTIMIZERS) == set(hparams_lib.OPTIMIZERS)


def test_the_tuners_choices_come_back_as_the_knobs_types():
  # KerasTuner's Choice holds scalars: a tuple knob travels as JSON text.
  choices = hparams_lib.tuning_choices("user_hidden_units", [(), (256,)])
  assert choices == ["[]", "[256]"]
  assert hparams_lib.tuning_choices("embedding_dim", [128, 256]) == [128, 256]
  tuned = DEFAULT.tuned({"user_hidden_units": choices[1], "embedding_dim": 256})
  assert tuned.user_hidden_units == (256,) and tuned.embedding_dim == 256
  assert tuned.replace(user_hidden_units=(), embedding_dim=128) == DEFAULT
  with pytest.raises(ValueError, match="history_pooling_power must be in"):
    DEFAULT.tuned({"history_pooling_power": 2.0})
