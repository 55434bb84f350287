"""RetrievalEvaluator: retrieval metrics and baselines, and the final push gate.

TFMA's Evaluator gates the rating head (RMSE bound and change threshold). What
users see is the top-K list, which TFMA's per-example metrics cannot measure
(a rank needs the whole catalog), so this step measures it on the same eval
split, through the serving model itself on raw ids (its queries, its index,
its exclusions), beside the baselines; it also measures the new_users split
through the request-time path, and light and heavy users apart
(evaluation.py). It blesses the model only if:
  * TFMA blessed it (the rating gate), and
  * its filtered Recall@K (config.retrieval_gate_metric) reaches the most-popular
    baseline's times `min_ratio_to_popular`, and
  * it is not worse than the last blessed model's by more than
    `change_tolerance` (the latest blessed model is measured again, on this split).
Its `blessing` is the one the Pusher and the latest-blessed-model resolver read.
"""

from tfx import v1 as tfx
from tfx.types import standard_artifacts
from tfx.utils import io_utils

from components.retrieval_evaluator import evaluation


@tfx.dsl.components.component
def RetrievalEvaluator(
  serving_model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
  examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
  schema: tfx.dsl.components.InputArtifact[standard_artifacts.Schema],
  rating_blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing],
  evaluation_output: tfx.dsl.components.OutputArtifact[standard_artifacts.ModelEvaluation],
  blessing: tfx.dsl.components.OutputArtifact[standard_artifacts.ModelBlessing],
  gate_metric: tfx.dsl.components.Parameter[str],
  min_ratio_to_popular: tfx.dsl.components.Parameter[float],
  change_tolerance: tfx.dsl.components.Parameter[float],
  code_version: tfx.dsl.components.Parameter[str],
  # Optional: absent until a model has been blessed once.
  baseline_model: tfx.dsl.components.InputArtifact[standard_artifacts.Model] = None,
) -> None:
  del code_version  # Only there for the cache key (pipeline/fingerprint.py).
  report = evaluation.evaluate_artifacts(
    serving_model_uri=serving_model.uri,
    examples_artifact=examples,
    schema=io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema.uri)),
    baseline_model_uri=baseline_model.uri if baseline_model else None,
    output_uri=evaluation_output.uri,
  )
  blessed, reasons = evaluation.gate(
    report,
    rating_blessed=rating_blessing.get_int_custom_property("blessed") == 1,
    metric=gate_metric,
    min_ratio_to_popular=min_ratio_to_popular,
    change_tolerance=change_tolerance,
  )
  evaluation.write_blessing(blessing.uri, blessed, reasons)
  # The properties the Pusher and LatestBlessedModelStrategy read (as TFMA's Evaluator sets them).
  blessing.set_int_custom_property("blessed", int(blessed))
  blessing.set_string_custom_property("current_model", serving_model.uri)
  blessing.set_int_custom_property("current_model_id", serving_model.id)
  if baseline_model:
    blessing.set_string_custom_property("baseline_model", baseline_model.uri)
    blessing.set_int_custom_property("baseline_model_id", baseline_model.id)
  evaluation_output.set_string_custom_property("gate", "; ".join(reasons) or "passed")
