"""The run summary, read back from a real (in-memory) ML-Metadata store."""

import json
import os
import time

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from components.data_gate import gate
from nfrec import contracts
from nfrec.reporting import run_summary
from pipeline import config as config_lib
from pipeline import pipeline as pipeline_lib

PIPELINE = config_lib.PIPELINE_NAME


class Lineage:
  """Writes executions of pipeline nodes and their output artifacts, as TFX would."""

  def __init__(self):
    connection = metadata_store_pb2.ConnectionConfig()
    connection.fake_database.SetInParent()
    self.store = metadata_store.MetadataStore(connection)
    self.node_type = self.store.put_context_type(metadata_store_pb2.ContextType(name="node"))
    self.execution_type = self.store.put_execution_type(metadata_store_pb2.ExecutionType(name="x"))
    self.artifact_type = self.store.put_artifact_type(
      metadata_store_pb2.ArtifactType(
        name="a", properties={"split_names": metadata_store_pb2.STRING}
      )
    )
    self.contexts = {}

  def execution(self, node, outputs, state="COMPLETE") -> int:
    """Records one execution (ML-Metadata stamps its times); returns its creation time in ms.

    `outputs`: {output key: (uri, {custom property: value}, split names or None)}.
    """
    if node not in self.contexts:
      [self.contexts[node]] = self.store.put_contexts(
        [metadata_store_pb2.Context(type_id=self.node_type, name=f"{PIPELINE}.{node}")]
      )
    execution = metadata_store_pb2.Execution(
      type_id=self.execution_type, last_known_state=metadata_store_pb2.Execution.State.Value(state)
    )
    artifacts_and_events = []
    for key, (uri, properties, splits) in outputs.items():
      artifact = metadata_store_pb2.Artifact(type_id=self.artifact_type, uri=uri)
      for name, value in properties.items():
        field = "int_value" if isinstance(value, int) else "string_value"
        setattr(artifact.custom_properties[name], field, value)
      if splits:
        artifact.properties["split_names"].string_value = json.dumps(splits)
      event = metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT)
      event.path.steps.add().key = key
      artifacts_and_events.append((artifact, event))
    [context] = self.store.get_contexts_by_id([self.contexts[node]])
    execution_id = self.store.put_execution(execution, artifacts_and_events, [context])[0]
    time.sleep(0.01)  # distinct creation times
    return self.store.get_executions_by_id([execution_id])[0].create_time_since_epoch


def _statistics(uri, counts):
  for split, count in counts.items():
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.datasets.add().num_examples = count
    os.makedirs(os.path.join(uri, f"Split-{split}"))
    with open(os.path.join(uri, f"Split-{split}", "FeatureStats.pb"), "wb") as f:
      f.write(stats.SerializeToString())


def _anomalies(uri, by_split):
  for split, names in by_split.items():
    report = anomalies_pb2.Anomalies()
    for name in names:
      report.anomaly_info[name].description = "New column"
    os.makedirs(os.path.join(uri, f"Split-{split}"))
    with open(os.path.join(uri, f"Split-{split}", gate.ANOMALIES_FILE), "wb") as f:
      f.write(report.SerializeToString())


def _json(uri, name, value):
  os.makedirs(uri, exist_ok=True)
  with open(os.path.join(uri, name), "w") as f:
    json.dump(value, f)


def test_only_the_newest_execution_of_each_node_since_the_run_started_counts(tmp_path):
  lineage = Lineage()
  lineage.execution(pipeline_lib.TRAINER, {"model": ("m", {}, None)})
  run_started = lineage.execution(pipeline_lib.STATISTICS_GEN, {"statistics": ("old", {}, None)})
  lineage.execution(pipeline_lib.STATISTICS_GEN, {"statistics": ("new", {}, None)})
  everything = run_summary.latest_executions(lineage.store, PIPELINE)
  assert everything[pipeline_lib.STATISTICS_GEN][1]["statistics"][0].uri == "new"
  assert set(everything) == {pipeline_lib.STATISTICS_GEN, pipeline_lib.TRAINER}
  since = run_summary.latest_executions(lineage.store, PIPELINE, since_ms=run_started)
  assert set(since) == {pipeline_lib.STATISTICS_GEN}  # the Trainer ran before this run


def test_summary_reads_counts_anomalies_metrics_the_gate_and_the_push(tmp_path):
  lineage = Lineage()
  statistics, anomalies = str(tmp_path / "stats"), str(tmp_path / "anomalies")
  model_run, evaluation, blessing = (str(tmp_path / n) for n in ("run", "eval", "blessing"))
  _statistics(statistics, {"train": 80, "eval": 20})
  _anomalies(anomalies, {"train": [], "eval": ["Genre"]})
  _json(model_run, contracts.TRAINER_METRICS_FILE, {"rmse": 0.9, "history": {"loss": [2.0, 1.0]}})
  _json(evaluation, contracts.RETRIEVAL_EVALUATION_FILE, {"model": {"recall_at_10": 0.3}})
  _json(blessing, contracts.GATE_FILE, {"blessed": False, "reasons": ["below popular"]})
  lineage.execution(
    pipeline_lib.STATISTICS_GEN, {"statistics": (statistics, {}, ["train", "eval"])}
  )
  lineage.execution(
    pipeline_lib.EXAMPLE_VALIDATOR, {"anomalies": (anomalies, {}, ["train", "eval"])}
  )
  lineage.execution(pipeline_lib.TRAINER, {"model_run": (model_run, {}, None)})
  lineage.execution(
    pipeline_lib.SERVING_MODEL_BUILDER,
    {"serving_model": ("sm", {"known_users": 7, "indexed_movies": 5, "catalog_movies": 6}, None)},
  )
  lineage.execution(
    pipeline_lib.RETRIEVAL_EVALUATOR,
    {"evaluation_output": (evaluation, {}, None), "blessing": (blessing, {"blessed": 0}, None)},
  )
  lineage.execution(pipeline_lib.PUSHER, {"pushed_model": ("p", {"pushed": 0}, None)}, "CACHED")
  config = config_lib.PipelineConfig(data_dir="/data", output_dir=str(tmp_path))

  summary = run_summary.summarize(config, lineage.store)

  trainer = summary["components"][pipeline_lib.TRAINER]
  assert trainer["state"] == "COMPLETE" and trainer["seconds"] >= 0
  assert trainer["started_at"] <= trainer["finished_at"]
  assert list(summary["components"]) == [  # in the order they ran
    pipeline_lib.STATISTICS_GEN,
    pipeline_lib.EXAMPLE_VALIDATOR,
    pipeline_lib.TRAINER,
    pipeline_lib.SERVING_MODEL_BUILDER,
    pipeline_lib.RETRIEVAL_EVALUATOR,
    pipeline_lib.PUSHER,
  ]
  assert summary["components"][pipeline_lib.PUSHER]["state"] == "CACHED"
  assert summary["data"]["ratings"] == {"train": 80, "eval": 20}
  assert summary["data"]["known_users"] == 7 and summary["data"]["catalog_movies"] == 6
  assert summary["anomalies"] == {"train": [], "eval": ["Genre: New column"]}
  assert summary["trainer_metrics"] == {"rmse": 0.9}
  assert summary["training_history"] == {"loss": [2.0, 1.0]}
  assert summary["retrieval_evaluation"] == {"model": {"recall_at_10": 0.3}}
  assert not summary["blessed"] and summary["gate_reasons"] == ["below popular"]
  assert not summary["rating_gate_passed"]  # no Evaluator ran
  assert not summary["pushed"] and summary["pushed_to"] is None
