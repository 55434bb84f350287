"""BatchRecommender: the top K of every known user, for each blessed model.

Many products read recommendations from a table, not from a server: an email,
a home page prepared overnight. For each model RetrievalEvaluator blesses, this
step writes what the served model would answer to every user of its vocabulary
(modules/serving/batch.py: batched calls of the `recommend` signature, streamed
to Parquet and CSV). A model that is not blessed gets no file: nothing is
written that the served model would not say.
"""

from tfx import v1 as tfx
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from modules.serving import batch


@tfx.dsl.components.component
def BatchRecommender(
  serving_model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
  blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing],
  recommendations: tfx.dsl.components.OutputArtifact[standard_artifacts.InferenceResult],
  code_version: tfx.dsl.components.Parameter[str],
) -> None:
  """Writes recommendations.parquet and recommendations.csv into the output artifact."""
  del code_version  # Only there for the cache key (pipeline/fingerprint.py).
  blessed = blessing.get_int_custom_property("blessed") == 1
  recommendations.set_int_custom_property("blessed", int(blessed))
  if not blessed:
    return
  report = batch.write_recommendations(
    path_utils.serving_model_path(serving_model.uri), recommendations.uri
  )
  for name, value in report.items():
    recommendations.set_float_custom_property(name, float(value))
