"""DataGate: stops the run on anomalies or drift, before Transform.

ExampleValidator and DistributionValidator only report; nothing in TFX stops a
run on their reports. This step reads the anomalies of every split, of the
ratings and of the movie catalog, and the drift DistributionValidator found
against the last data that passed this gate, and fails with one message naming
them, so no model is trained on bad or drifted data and the served model stays
as it is. Data that passes is published as `approved_statistics`: the baseline
the next run's drift check compares with (a drifted span never becomes one).
"""

import os

import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import artifact_utils, standard_artifacts

from components.data_gate import gate


def _by_split(anomalies, what: str, folder: str = "Split") -> dict:
  return {
    f"{what} {split}": gate.read_anomalies(
      os.path.join(anomalies.uri, f"{folder}-{split}", gate.ANOMALIES_FILE)
    )
    for split in artifact_utils.decode_split_names(anomalies.split_names)
  }


@tfx.dsl.components.component
def DataGate(
  anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
  movies_anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
  statistics: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleStatistics],
  approved_statistics: tfx.dsl.components.OutputArtifact[standard_artifacts.ExampleStatistics],
  drift_anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
  code_version: tfx.dsl.components.Parameter[str],
) -> None:
  del code_version  # Only there for the cache key (pipeline/fingerprint.py).
  found = {**_by_split(anomalies, "ratings"), **_by_split(movies_anomalies, "movies")}
  if drift_anomalies.split_names:  # none: no baseline yet (DistributionValidator passes)
    # DistributionValidator's folders are per split pair ("train_train").
    found.update(_by_split(drift_anomalies, "drift against the last approved data:", "SplitPair"))
  gate.check(found)
  # Passed: this data's statistics become the next drift check's baseline.
  approved_statistics.split_names = statistics.split_names
  for split in artifact_utils.decode_split_names(statistics.split_names):
    source = artifact_utils.get_split_uri([statistics], split)
    target = artifact_utils.get_split_uri([approved_statistics], split)
    tf.io.gfile.makedirs(target)
    for name in tf.io.gfile.listdir(source):
      tf.io.gfile.copy(os.path.join(source, name), os.path.join(target, name), overwrite=True)
