"""The Tuner: given train to fit and validation to score, never eval or new_users; its
choice reaches the Trainer's run_fn."""

import os

import pytest
from tfx.components.tuner import executor as stock_tuner_executor
from tfx.dsl.components.base import base_executor

from components.recommender_trainer import tuner as tuner_component
from nfrec import contracts
from pipeline import config as config_lib
from pipeline import pipeline as pipeline_lib
from tests.components.recommender_trainer.test_component import training_inputs

SPACE = (("embedding_dim", (128, 256)), ("user_hidden_units", ((), (256,))))


def _components(tmp_path, tuning_space):
  config = config_lib.PipelineConfig(
    data_dir=str(tmp_path / "data"), output_dir=str(tmp_path), tuning_space=tuning_space
  )
  return {component.id: component for component in pipeline_lib.create_components(config)}


def test_without_a_tuning_space_there_is_no_tuner(tmp_path):
  components = _components(tmp_path, ())
  assert pipeline_lib.TUNER not in components
  assert "hyperparameters" not in components[pipeline_lib.TRAINER].inputs


def test_the_tuners_choice_is_the_trainers_hyperparameters_input(tmp_path):
  components = _components(tmp_path, SPACE)
  tuner, trainer = components[pipeline_lib.TUNER], components[pipeline_lib.TRAINER]
  assert trainer.inputs["hyperparameters"] is tuner.outputs["best_hyperparameters"]
  for name in ("examples", "transform_graph", "catalog", "catalog_transform_graph"):
    assert tuner.inputs[name] is trainer.inputs[name]


def test_the_tuner_is_given_train_and_validation_only(tmp_path, monkeypatch):
  tuner = _components(tmp_path, SPACE)[pipeline_lib.TUNER]
  inputs = training_inputs(tmp_path)
  given = []

  def tuner_fn(fn_args):
    given.append(fn_args)
    raise StopIteration  # the search itself is tests/modules/tuner's

  monkeypatch.setattr(stock_tuner_executor, "_get_tuner_fn", lambda _: tuner_fn)
  properties = {
    name: value.field_value if hasattr(value, "field_value") else value
    for name, value in tuner.exec_properties.items()
  }
  with pytest.raises(StopIteration):
    context = base_executor.BaseExecutor.Context(tmp_dir=str(tmp_path / "tmp"), unique_id="1")
    tuner_component.Executor(context).Do(inputs, {}, properties)
  (fn_args,) = given
  assert [os.path.basename(os.path.dirname(p)) for p in fn_args.train_files] == ["Split-train"]
  assert [os.path.basename(os.path.dirname(p)) for p in fn_args.eval_files] == ["Split-validation"]
  assert fn_args.transform_graph_path == str(tmp_path / "graph")
  config = fn_args.custom_config
  assert config[contracts.CATALOG_FILES] == [str(tmp_path / "catalog" / "Split-catalog" / "*")]
  assert config[contracts.CATALOG_TRANSFORM_OUTPUT] == str(tmp_path / "catalog_graph")
  assert config["hparams"] == config_lib.PRESETS["default"].to_dict()
  assert config["tuning_space"] == [
    ["embedding_dim", [128, 256]],
    ["user_hidden_units", [[], [256]]],
  ]
