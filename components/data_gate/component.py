"""DataGate: stops the run when ExampleValidator found anomalies, before Transform.

ExampleValidator only reports; nothing in TFX stops a run on its report. This
step reads the anomalies of every split, of the ratings and of the movie
catalog, and fails with a message naming them, so no model is trained on
drifted data and the served model stays as it is.
"""

import os

from tfx import v1 as tfx
from tfx.types import artifact_utils, standard_artifacts

from components.data_gate import gate


def _by_split(anomalies, what: str) -> dict:
  return {
    f"{what} {split}": gate.read_anomalies(
      os.path.join(artifact_utils.get_split_uri([anomalies], split), gate.ANOMALIES_FILE)
    )
    for split in artifact_utils.decode_split_names(anomalies.split_names)
  }


@tfx.dsl.components.component
def DataGate(
  anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
  movies_anomalies: tfx.dsl.components.InputArtifact[standard_artifacts.ExampleAnomalies],
  code_version: tfx.dsl.components.Parameter[str],
) -> None:
  del code_version  # Only there for the cache key (pipeline/fingerprint.py).
  gate.check({**_by_split(anomalies, "ratings"), **_by_split(movies_anomalies, "movies")})
