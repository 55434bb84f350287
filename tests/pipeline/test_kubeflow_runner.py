"""The Kubeflow (KFP v2) spec: compiled from the same create_pipeline, with no cloud access."""

import os
import subprocess
import sys

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from nfrec.data import sample
from pipeline import config as config_lib
from pipeline import kubeflow_runner
from pipeline import pipeline as pipeline_lib
from tests.conftest import PIPELINE_COMPONENTS

NFREC = os.path.join(os.path.dirname(sys.executable), "nfrec")
IMAGE = "registry.example/nfrec-pipeline:test"
BEAM_ARGS = ["--project=p", "--region=europe-west4", "--temp_location=gs://bucket/tmp"]
# The resolver is a step of the KFP DAG of its own name (checked below), not an executor.
COMPONENTS = set(PIPELINE_COMPONENTS) - {
  "latest_blessed_model_resolver",
  "approved_statistics_resolver",
}


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
  """Compiles through the CLI in a process with no credentials and no cloud settings."""
  output = str(tmp_path_factory.mktemp("kfp") / "pipeline.json")
  env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path_factory.mktemp("home"))}
  result = subprocess.run(
    [
      NFREC,
      "compile-kubeflow",
      "--output",
      output,
      "--data",
      "gs://bucket/netflix",
      "--pipeline-output",
      "gs://bucket/nfrec",
      "--image",
      IMAGE,
      "--beam-runner",
      "dataflow",
      *[f"--beam-arg={arg}" for arg in BEAM_ARGS],
      "--distribution-strategy",
      "multi_worker_mirrored",
    ],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  with open(output) as f:
    job = json_format.Parse(f.read(), pipeline_spec_pb2.PipelineJob(), ignore_unknown_fields=True)
  pipeline_spec = json_format.ParseDict(
    json_format.MessageToDict(job.pipeline_spec), pipeline_spec_pb2.PipelineSpec()
  )
  return job, pipeline_spec


def test_every_component_is_a_task_with_the_pipeline_edges(spec):
  _, pipeline_spec = spec
  tasks = pipeline_spec.root.dag.tasks
  assert COMPONENTS <= set(tasks)
  edges = {name: set(task.dependent_tasks) for name, task in tasks.items()}
  assert edges["StatisticsGen"] == {"RatingsExampleGen"}
  assert edges["ExampleValidator"] == {"StatisticsGen", "ImportSchemaGen"}
  assert edges["MoviesExampleValidator"] == {"MoviesStatisticsGen", "MoviesSchemaGen"}
  assert edges["DistributionValidator"] >= {"StatisticsGen"}
  assert edges["DataGate"] == {
    "ExampleValidator",
    "MoviesExampleValidator",
    "DistributionValidator",
    "StatisticsGen",
  }
  # Both Transforms wait for the data gate: no training on anomalous data.
  assert edges["Transform"] == {"RatingsExampleGen", "ImportSchemaGen", "DataGate"}
  assert edges["CatalogTransform"] == {"MoviesExampleGen", "MoviesSchemaGen", "DataGate"}
  assert edges["Trainer"] == {"Transform", "CatalogTransform"}
  assert edges["ServingModelBuilder"] == {"Trainer", "Transform", "CatalogTransform"}
  assert {"ServingModelBuilder", "RatingsExampleGen"} <= edges["Evaluator"]
  assert any("resolver" in name for name in edges["Evaluator"])  # the baseline model
  # The final gate: TFMA's rating blessing plus the retrieval metrics on the eval split.
  assert {"Evaluator", "ServingModelBuilder", "RatingsExampleGen", "ImportSchemaGen"} <= edges[
    "RetrievalEvaluator"
  ]
  assert edges["Pusher"] == {"RetrievalEvaluator", "ServingModelBuilder"}
  assert all(tasks[name].caching_options.enable_cache for name in COMPONENTS)


def test_executors_use_the_image_and_the_beam_args(spec):
  _, pipeline_spec = spec
  executors = pipeline_spec.deployment_spec.fields["executors"].struct_value.fields
  for name in COMPONENTS:
    container = executors[f"{name}_executor"].struct_value.fields["container"].struct_value
    assert container.fields["image"].string_value == IMAGE
  for name in ("RatingsExampleGen", "StatisticsGen", "Transform", "Evaluator"):
    container = executors[f"{name}_executor"].struct_value.fields["container"].struct_value
    args = [value.string_value for value in container.fields["args"].list_value.values]
    assert "--runner=DataflowRunner" in args and all(arg in args for arg in BEAM_ARGS)


def test_module_code_is_referenced_by_import_path_and_paths_come_from_the_config(spec):
  job, pipeline_spec = spec
  text = json_format.MessageToJson(pipeline_spec)
  assert config_lib.PREPROCESSING_FN in text and config_lib.RUN_FN in text
  # No module file: nothing built into a wheel or uploaded to the pipeline root.
  assert "module_file" not in text and ".whl" not in text
  assert "gs://bucket/netflix/ratings" in text and "gs://bucket/netflix/movies" in text
  assert "gs://bucket/nfrec/serving_model/netflix_recommender" in text
  assert "multi_worker_mirrored" in text
  assert kubeflow_runner.IMAGE_SCHEMA_FILE in text  # the schema in the image
  assert job.runtime_config.gcs_output_directory == "gs://bucket/nfrec/pipeline"


def test_local_and_kubeflow_runners_build_the_same_components():
  local = config_lib.PipelineConfig(data_dir=sample.embedded_sample_dir())
  cluster = config_lib.PipelineConfig(
    data_dir="gs://b/data",
    output_dir="gs://b/out",
    beam_runner="dataflow",
    beam_extra_args=tuple(BEAM_ARGS),
  )

  def shape(config):
    return [(c.id, type(c).__name__) for c in pipeline_lib.create_components(config)]

  assert shape(local) == shape(cluster)
  assert {component_id for component_id, _ in shape(local)} >= COMPONENTS


def test_a_tuning_space_compiles_to_a_tuner_task_the_trainer_waits_for(tmp_path):
  config = config_lib.PipelineConfig(
    data_dir="gs://b/data",
    output_dir="gs://b/out",
    beam_runner="dataflow",
    beam_extra_args=tuple(BEAM_ARGS),
    tuning_space=(("embedding_dim", (128, 256)),),
  )
  output = str(tmp_path / "pipeline.json")
  kubeflow_runner.compile_pipeline(config, IMAGE, output)
  with open(output) as f:
    job = json_format.Parse(f.read(), pipeline_spec_pb2.PipelineJob(), ignore_unknown_fields=True)
  tasks = job.pipeline_spec["root"]["dag"]["tasks"]
  assert set(tasks["Tuner"]["dependentTasks"]) == {"Transform", "CatalogTransform"}
  assert set(tasks["Trainer"]["dependentTasks"]) == {"Transform", "CatalogTransform", "Tuner"}
  assert config_lib.TUNER_FN in json_format.MessageToJson(job)
