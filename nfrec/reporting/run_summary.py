"""The run summary: what a run did, read back from ML-Metadata and the artifacts.

Everything here is read from the lineage TFX recorded (the newest execution of
each component since the run started, cached or not), so the summary of a
cached run reports the cached artifacts, exactly as a later reader would find them.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
import tensorflow_model_analysis as tfma
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.utils import io_utils

from components.data_gate import gate
from nfrec import contracts
from pipeline import config as config_lib
from pipeline import pipeline as pipeline_lib

SUMMARY_FILE = "run_summary.json"
_STATE_NAMES = {value: name for name, value in metadata_store_pb2.Execution.State.items()}


def latest_executions(store, pipeline_name: str, since_ms: int = 0) -> dict:
  """component id -> (execution, {output key: [artifacts]}) of its newest execution."""
  result = {}
  for context in store.get_contexts_by_type("node"):
    prefix = pipeline_name + "."
    if not context.name.startswith(prefix):
      continue
    executions = [
      e
      for e in store.get_executions_by_context(context.id)
      if e.create_time_since_epoch >= since_ms
    ]
    if not executions:
      continue
    execution = max(executions, key=lambda e: e.id)
    outputs = {}
    events = [
      e
      for e in store.get_events_by_execution_ids([execution.id])
      if e.type == metadata_store_pb2.Event.OUTPUT
    ]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
    for event in events:
      key = event.path.steps[0].key if event.path.steps else ""
      outputs.setdefault(key, []).append(artifacts[event.artifact_id])
    result[context.name[len(prefix) :]] = (execution, outputs)
  return result


def _property(artifact, name, default=None):
  if name in artifact.custom_properties:
    value = artifact.custom_properties[name]
    return value.int_value if value.HasField("int_value") else value.string_value
  return default


def _split_files(artifact, file_name: str) -> dict:
  """split name -> path of `file_name` in that split of a split artifact."""
  return {
    split: os.path.join(artifact.uri, f"Split-{split}", file_name)
    for split in json.loads(artifact.properties["split_names"].string_value)
  }


def example_counts(statistics_artifact) -> dict:
  counts = {}
  for split, path in _split_files(statistics_artifact, "FeatureStats.pb").items():
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    with tf.io.gfile.GFile(path, "rb") as f:
      stats.ParseFromString(f.read())
    counts[split] = int(stats.datasets[0].num_examples)
  return counts


def rows_counted_by(metadata_config, pipeline_name: str, component: str) -> str | None:
  """ "split N, ..." from the newest statistics a component wrote, or None (a component
  that writes no statistics). For progress lines while a run goes on."""
  if component not in (pipeline_lib.STATISTICS_GEN, pipeline_lib.MOVIES_STATISTICS_GEN):
    return None
  store = metadata_store.MetadataStore(metadata_config)
  execution = latest_executions(store, pipeline_name).get(component)
  statistics = execution[1].get("statistics") if execution else None
  if not statistics:
    return None
  counts = example_counts(statistics[0])
  return ", ".join(f"{split} {count:,}" for split, count in counts.items()) + " rows"


def anomalies(anomalies_artifact) -> dict:
  """split -> list of "feature: description" anomalies found by ExampleValidator."""
  return {
    split: gate.read_anomalies(path)
    for split, path in _split_files(anomalies_artifact, gate.ANOMALIES_FILE).items()
  }


def evaluator_metrics(evaluation_artifact) -> dict:
  result = tfma.load_metrics(evaluation_artifact.uri)
  metrics = {}
  for slice_metrics in result:
    if slice_metrics.slice_key.single_slice_keys:
      continue  # only the overall slice
    for key_and_value in slice_metrics.metric_keys_and_values:
      key = key_and_value.key
      if key.model_name and key.model_name != "candidate":
        continue
      if key.is_diff:
        continue
      metrics[key.name] = key_and_value.value.double_value.value
  return metrics


def _read_json(path: str):
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def summarize(config: config_lib.PipelineConfig, store, since_ms: int = 0) -> dict:
  """The summary of the run whose executions started at or after `since_ms` (epoch ms)."""
  runs = latest_executions(store, config.pipeline_name, since_ms)

  def output(component, key):
    if component not in runs or not runs[component][1].get(key):
      return None
    return runs[component][1][key][0]

  summary = {
    "pipeline": config.pipeline_name,
    "data_dir": config.data_dir,
    "output_dir": config.output_dir,
    "preset": config.preset,
  }
  summary["components"] = {
    name: {
      "state": _STATE_NAMES.get(execution.last_known_state, "UNKNOWN"),
      "seconds": round(
        (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000, 1
      ),
      # Epoch seconds, so a benchmark can align its memory samples with steps.
      "started_at": execution.create_time_since_epoch / 1000,
      "finished_at": execution.last_update_time_since_epoch / 1000,
    }
    for name, (execution, _) in sorted(runs.items(), key=lambda item: item[1][0].id)
  }

  statistics = output(pipeline_lib.STATISTICS_GEN, "statistics")
  data = {}
  if statistics:
    counts = example_counts(statistics)
    data["ratings"] = {split: counts[split] for split in contracts.SPLITS if split in counts}
    if contracts.NEWEST_SPAN in counts:  # spans: the newest one, inside the window
      data["newest_span_ratings"] = counts[contracts.NEWEST_SPAN]
  examples = output(pipeline_lib.RATINGS_GEN, "examples")
  if examples:
    data["split_protocol"] = _property(examples, contracts.SPLIT_PROTOCOL_PROPERTY)
  # Where the splits and the model of this run are (benchmarks score peers on them).
  summary["artifacts"] = {
    name: artifact.uri
    for name, artifact in (
      ("examples", examples),
      ("serving_model", output(pipeline_lib.SERVING_MODEL_BUILDER, "serving_model")),
      ("recommendations", output(pipeline_lib.BATCH_RECOMMENDER, "recommendations")),
    )
    if artifact
  }
  builder_model = output(pipeline_lib.SERVING_MODEL_BUILDER, "serving_model")
  if builder_model:
    data.update(
      {
        name: _property(builder_model, name)
        for name in (
          "known_users",
          "indexed_movies",
          "movies_without_ratings",
          "catalog_movies",
          "indexed_movies_without_title",
        )
      }
    )
  summary["data"] = data
  validation = output(pipeline_lib.EXAMPLE_VALIDATOR, "anomalies")
  if validation:
    summary["anomalies"] = anomalies(validation)
  movies_validation = output(pipeline_lib.MOVIES_EXAMPLE_VALIDATOR, "anomalies")
  if movies_validation:
    summary["movies_anomalies"] = anomalies(movies_validation)

  best_hyperparameters = output(pipeline_lib.TUNER, "best_hyperparameters")
  if best_hyperparameters:
    tuner_results = output(pipeline_lib.TUNER, "tuner_results")
    summary["tuner"] = {
      "chosen": _read_json(io_utils.get_only_uri_in_dir(best_hyperparameters.uri))["values"],
      "trials": _read_json(io_utils.get_only_uri_in_dir(tuner_results.uri)),  # best first
    }
  model_run = output(pipeline_lib.TRAINER, "model_run")
  trainer_metrics_path = model_run and os.path.join(model_run.uri, contracts.TRAINER_METRICS_FILE)
  if trainer_metrics_path and tf.io.gfile.exists(trainer_metrics_path):
    trainer_metrics = _read_json(trainer_metrics_path)
    summary["trainer_metrics"] = {k: v for k, v in trainer_metrics.items() if k != "history"}
    summary["training_history"] = trainer_metrics.get("history", {})
  if model_run:
    summary["tensorboard_logdir"] = model_run.uri
  if statistics:
    summary["statistics_uri"] = statistics.uri
  evaluation = output(pipeline_lib.EVALUATOR, "evaluation")
  if evaluation:
    summary["evaluator_metrics"] = evaluator_metrics(evaluation)
  rating_blessing = output(pipeline_lib.EVALUATOR, "blessing")
  summary["rating_gate_passed"] = bool(rating_blessing and _property(rating_blessing, "blessed", 0))
  retrieval = output(pipeline_lib.RETRIEVAL_EVALUATOR, "evaluation_output")
  if retrieval:
    summary["retrieval_evaluation"] = _read_json(
      os.path.join(retrieval.uri, contracts.RETRIEVAL_EVALUATION_FILE)
    )
  blessing = output(pipeline_lib.RETRIEVAL_EVALUATOR, "blessing")
  summary["blessed"] = bool(blessing and _property(blessing, "blessed", 0))
  if blessing and tf.io.gfile.exists(os.path.join(blessing.uri, contracts.GATE_FILE)):
    summary["gate_reasons"] = _read_json(os.path.join(blessing.uri, contracts.GATE_FILE))["reasons"]
  pushed = output(pipeline_lib.PUSHER, "pushed_model")
  summary["pushed"] = bool(pushed and _property(pushed, "pushed", 0))
  summary["pushed_to"] = _property(pushed, "pushed_destination") if summary["pushed"] else None
  summary["serving_model_dir"] = config.serving_model_dir
  return summary


def write(config, metadata_config, started_at: float, wall_time_s: float) -> dict:
  store = metadata_store.MetadataStore(metadata_config)
  summary = summarize(config, store, since_ms=int(started_at * 1000) - 1000)
  summary["wall_time_s"] = round(wall_time_s, 1)
  with open(os.path.join(config.output_dir, SUMMARY_FILE), "w") as f:
    json.dump(summary, f, indent=2)
  return summary
