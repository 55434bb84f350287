"""DataGate's plain functions: read ExampleValidator's anomalies, stop on any."""

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.data_gate import gate


def test_reads_every_feature_anomaly_and_the_dataset_anomaly(tmp_path):
  report = anomalies_pb2.Anomalies()
  report.anomaly_info["Rating"].description = "Out-of-range values"
  report.anomaly_info["Genre"].description = "New column"
  report.dataset_anomaly_info.description = "Low number of examples"
  path = tmp_path / gate.ANOMALIES_FILE
  path.write_bytes(report.SerializeToString())
  assert gate.read_anomalies(str(path)) == [
    "Genre: New column",
    "Rating: Out-of-range values",
    "(dataset): Low number of examples",
  ]


def test_a_clean_report_has_no_anomaly(tmp_path):
  path = tmp_path / gate.ANOMALIES_FILE
  path.write_bytes(anomalies_pb2.Anomalies().SerializeToString())
  assert gate.read_anomalies(str(path)) == []


def test_gate_names_every_anomaly_and_passes_clean_data():
  gate.check({"train": [], "eval": []})
  with pytest.raises(
    gate.DataValidationError,
    match=r"eval split: Rating: Out-of-range values; train split: Genre: New column",
  ):
    gate.check({"train": ["Genre: New column"], "eval": ["Rating: Out-of-range values"]})
