"""Configuration: presets and overrides merge, bad settings fail before anything runs."""

import json

import pytest

from nfrec import contracts
from pipeline import config as config_lib


def test_overrides_apply_over_the_preset_and_leave_the_preset_alone():
  config = config_lib.PipelineConfig(
    data_dir="d", preset="seed", hparam_overrides=(("epochs", 7), ("learning_rate", 0.5))
  )
  assert config.hparams.epochs == 7 and config.hparams.learning_rate == 0.5
  assert config.hparams.batch_size == config_lib.PRESETS["seed"].batch_size
  assert config_lib.PRESETS["seed"].epochs == 3


@pytest.mark.parametrize(
  "settings, message",
  [
    (dict(preset="best"), "Unknown preset 'best'"),
    (dict(hparam_overrides=(("embeding_dim", 8),)), "Unknown hyperparameter 'embeding_dim'"),
    (dict(hparam_overrides=(("epochs", "many"),)), "epochs must be int"),
    (dict(beam_runner="dataflw"), "Unknown Beam runner 'dataflw'"),
    (dict(index_type="annoy"), "Unknown index_type 'annoy'"),
    (dict(distribution_strategy="tpu"), "Unknown distribution_strategy 'tpu'"),
    (dict(retrieval_gate_metric="recall_at_7"), "Unknown retrieval_gate_metric"),
    (dict(tuning_space=(("embeding_dim", (64, 128)),)), "Unknown hyperparameter 'embeding_dim'"),
    (dict(tuning_space=(("history_pooling_power", (0.5, 2.0)),)), "history_pooling_power"),
    (dict(tuning_space=(("embedding_dim", ()),)), "Tuning 'embedding_dim' needs a list"),
  ],
)
def test_validate_names_the_bad_setting(settings, message):
  with pytest.raises(ValueError, match=message):
    config_lib.PipelineConfig(data_dir="d", **settings).validate()


def test_the_default_config_is_valid():
  config_lib.PipelineConfig(data_dir="d").validate()


def test_a_prepared_folder_brings_its_rating_scale(tmp_path):
  (tmp_path / contracts.DATASET_FILE).write_text(json.dumps({"rating_min": 0.5, "rating_max": 5.0}))
  config = config_lib.PipelineConfig.for_data_dir(str(tmp_path), preset="seed")
  assert (config.rating_min, config.rating_max, config.preset) == (0.5, 5.0, "seed")
  # An explicit setting wins; a folder without dataset.json keeps the config's scale.
  assert config_lib.PipelineConfig.for_data_dir(str(tmp_path), rating_min=1.0).rating_min == 1.0
  plain = config_lib.PipelineConfig.for_data_dir(str(tmp_path / "plain"))
  assert (plain.rating_min, plain.rating_max) == (1.0, 5.0)


def test_paths_derive_from_the_folders():
  config = config_lib.PipelineConfig(data_dir="/data", output_dir="/out")
  assert config.ratings_dir == "/data/ratings" and config.movies_dir == "/data/movies"
  assert config.serving_model_dir == "/out/serving_model/netflix_recommender"
  assert config.metadata_sqlite == "/out/metadata.sqlite"
  assert config_lib.beam_pipeline_args("multi_processing")[:2] == [
    "--runner=DirectRunner",
    "--direct_running_mode=multi_processing",
  ]
  assert config_lib.beam_pipeline_args("dataflow", ["--project=p"]) == [
    "--runner=DataflowRunner",
    "--project=p",
  ]


def test_a_local_in_memory_run_gives_beam_its_defaults_and_tfx_packages_nothing(monkeypatch):
  """TFX's Beam executors copy TFX into an sdist for remote workers whenever they get
  any Beam flag; the in_memory runner passes none, so Beam runs its defaults."""
  import apache_beam as beam
  from tfx.components.statistics_gen import executor as statistics_gen_executor
  from tfx.dsl.components.base import base_beam_executor
  from tfx.utils import dependency_utils

  built = []
  monkeypatch.setattr(dependency_utils, "build_ephemeral_package", lambda: built.append(1) or "x")

  def executor(runner):  # StatisticsGen's, as the pipeline makes it
    args = config_lib.PipelineConfig(data_dir="d", beam_runner=runner).beam_args
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=args)
    return statistics_gen_executor.Executor(context)

  options = executor("in_memory")._make_beam_pipeline()._options.get_all_options()
  assert (options["runner"], options["direct_running_mode"], options["direct_num_workers"]) == (
    None,  # Beam's default runner: the DirectRunner
    "in_memory",
    1,
  )
  assert beam.pipeline.StandardOptions.DEFAULT_RUNNER == "DirectRunner"
  assert not built
  executor("multi_processing")  # with flags, TFX packages itself
  assert built
