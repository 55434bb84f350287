"""What the Trainer reads: train to fit, validation to select; never eval or new_users."""

import os

import numpy as np
from google.protobuf import json_format
from tfx.proto import transform_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs

from components.recommender_trainer import component as trainer_component
from modules import interactions
from modules.trainer import run as run_lib
from modules.trainer import train as train_lib
from nfrec import contracts
from pipeline import config as config_lib
from pipeline import pipeline as pipeline_lib


def _artifact(kind, uri, splits=None):
  artifact = kind()
  artifact.uri = uri
  if splits is not None:
    artifact.split_names = artifact_utils.encode_split_names(list(splits))
    for split in splits:
      os.makedirs(os.path.join(uri, f"Split-{split}"), exist_ok=True)
  return artifact


def training_inputs(tmp_path):
  """The input artifacts of the Trainer and the Tuner: the four splits, the catalog, graphs."""
  return {
    standard_component_specs.EXAMPLES_KEY: [
      _artifact(standard_artifacts.Examples, str(tmp_path / "examples"), contracts.SPLITS)
    ],
    standard_component_specs.TRANSFORM_GRAPH_KEY: [
      _artifact(standard_artifacts.TransformGraph, str(tmp_path / "graph"))
    ],
    trainer_component.CATALOG_KEY: [
      _artifact(standard_artifacts.Examples, str(tmp_path / "catalog"), ["catalog"])
    ],
    trainer_component.CATALOG_TRANSFORM_GRAPH_KEY: [
      _artifact(standard_artifacts.TransformGraph, str(tmp_path / "catalog_graph"))
    ],
  }


def _fn_args(tmp_path):
  """The FnArgs the Trainer's executor gives run_fn, with the pipeline's own Trainer."""
  (trainer,) = [
    component
    for component in pipeline_lib.create_components(
      config_lib.PipelineConfig(data_dir=str(tmp_path / "data"), output_dir=str(tmp_path))
    )
    if component.id == pipeline_lib.TRAINER
  ]
  inputs = training_inputs(tmp_path)
  outputs = {
    standard_component_specs.MODEL_KEY: [
      _artifact(standard_artifacts.Model, str(tmp_path / "model"))
    ],
    standard_component_specs.MODEL_RUN_KEY: [
      _artifact(standard_artifacts.ModelRun, str(tmp_path / "model_run"))
    ],
  }
  properties = {
    name: value.field_value if hasattr(value, "field_value") else value
    for name, value in trainer.exec_properties.items()
  }
  return trainer_component.Executor()._GetFnArgs(inputs, outputs, properties)


def test_the_trainer_is_given_train_and_validation_only(tmp_path):
  fn_args = _fn_args(tmp_path)
  assert [os.path.basename(os.path.dirname(p)) for p in fn_args.train_files] == ["Split-train"]
  assert [os.path.basename(os.path.dirname(p)) for p in fn_args.eval_files] == ["Split-validation"]
  # The catalog's locations come in custom_config, beside the hyperparameters.
  config = fn_args.custom_config
  assert config[contracts.CATALOG_FILES] == [str(tmp_path / "catalog" / "Split-catalog" / "*")]
  assert config[contracts.CATALOG_TRANSFORM_OUTPUT] == str(tmp_path / "catalog_graph")
  assert config_lib.PRESETS["default"].to_dict() == config["hparams"]


class _Transformed:
  """Stands in for TFTransformOutput: three users, two movies."""

  def __init__(self, *_):
    pass

  def vocabulary_by_name(self, name):
    return [b"7", b"8", b"9"] if name == contracts.USER_VOCABULARY else [b"1", b"2"]


def test_run_fn_reads_what_it_is_given_and_nothing_else(tmp_path, monkeypatch):
  fn_args = _fn_args(tmp_path)
  read, fitted = [], {}
  split = interactions.Ratings(
    np.zeros(1, int), np.zeros(1, int), np.ones(1, np.float32), np.zeros(1, int)
  )

  def read_split(patterns, _):
    read.append(list(patterns))
    return split

  def fit(train, validation, **kwargs):
    fitted.update(train=train, validation=validation, **kwargs)
    raise StopIteration  # what happens after fitting is not the point here

  monkeypatch.setattr(run_lib.tft, "TFTransformOutput", _Transformed)
  monkeypatch.setattr(run_lib.examples, "read_catalog", lambda *_: None)
  monkeypatch.setattr(run_lib.MovieFeatures, "for_vocabulary", lambda *_: None)
  monkeypatch.setattr(run_lib.cold_movies.ColdMovies, "of_catalog", lambda *_: None)
  monkeypatch.setattr(run_lib.data, "read_split", read_split)
  monkeypatch.setattr(train_lib, "fit", fit)
  try:
    run_lib.run_fn(fn_args)
  except StopIteration:
    pass
  assert read == [fn_args.train_files, fn_args.eval_files]
  assert fitted["num_users"] == 3 and fitted["num_movies"] == 2
  assert fitted["warm_from"] is None  # warm start is off unless configured
  assert fitted["hparams"] == config_lib.PRESETS["default"]  # no Tuner ran
  every_read = [p for patterns in read for p in patterns]
  assert not any(
    f"Split-{s}" in p for s in (contracts.EVAL, contracts.NEW_USERS) for p in every_read
  )


def test_run_fn_trains_with_the_tuners_choice_over_the_preset(tmp_path, monkeypatch):
  fn_args = _fn_args(tmp_path)
  fn_args.hyperparameters = {
    "space": [],
    "values": {"embedding_dim": 256, "user_hidden_units": "[256]"},
  }
  fitted = {}

  def fit(**kwargs):
    fitted.update(kwargs)
    raise StopIteration

  inputs = run_lib.TrainingData(None, None, ["7"], ["1"], None, None, None)
  monkeypatch.setattr(run_lib, "read_training_data", lambda _: inputs)
  monkeypatch.setattr(train_lib, "fit", fit)
  try:
    run_lib.run_fn(fn_args)
  except StopIteration:
    pass
  chosen = config_lib.PRESETS["default"].replace(embedding_dim=256, user_hidden_units=(256,))
  assert fitted["hparams"] == chosen


def test_transform_analyzes_and_materializes_train_and_validation_only(tmp_path):
  """Eval and new_users never pass through the training path's Transform: they are
  scored from raw examples through the serving model."""
  (transform,) = [
    component
    for component in pipeline_lib.create_components(
      config_lib.PipelineConfig(data_dir=str(tmp_path / "data"), output_dir=str(tmp_path))
    )
    if component.id == pipeline_lib.TRANSFORM
  ]
  splits = json_format.Parse(
    transform.exec_properties[standard_component_specs.SPLITS_CONFIG_KEY],
    transform_pb2.SplitsConfig(),
  )
  assert list(splits.analyze) == list(splits.transform) == [contracts.TRAIN, contracts.VALIDATION]
