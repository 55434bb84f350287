"""Plain functions behind DataGate."""

from __future__ import annotations

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2

ANOMALIES_FILE = "SchemaDiff.pb"


class DataValidationError(ValueError):
  """The data does not match the curated schema; the message lists the anomalies."""


def read_anomalies(path: str) -> list[str]:
  """ "feature: description" of each anomaly in a SchemaDiff.pb of ExampleValidator or
  DistributionValidator (whose descriptions are in the reasons)."""
  report = anomalies_pb2.Anomalies()
  with tf.io.gfile.GFile(path, "rb") as f:
    report.ParseFromString(f.read())
  found = [
    f"{name}: {info.description or '; '.join(r.description for r in info.reason)}"
    for name, info in sorted(report.anomaly_info.items())
  ]
  if report.HasField("dataset_anomaly_info") and report.dataset_anomaly_info.description:
    found.append(f"(dataset): {report.dataset_anomaly_info.description}")
  return found


def check(anomalies_by_split: dict[str, list[str]]) -> None:
  problems = [
    f"{split} split: {item}"
    for split, items in sorted(anomalies_by_split.items())
    for item in items
  ]
  if problems:
    raise DataValidationError(
      "data validation failed, nothing was trained or pushed: " + "; ".join(problems)
    )
