"""ServingModelBuilder: the Trainer's core model + what is known -> the model we serve.

The served model answers from precomputed vectors, so they are computed here,
in a step with its own lineage: every known user's query from their history
(the transformed train and validation ratings), every catalog movie's vector
(the catalog Transform's output: title tokens and year; movies without ratings
included), the exclusions, popularity and mean ratings. The output is a `Model`
artifact the Evaluators check and the Pusher pushes.
"""

from tfx import v1 as tfx
from tfx.types import standard_artifacts

from components.serving_model_builder import builder


@tfx.dsl.components.component
def ServingModelBuilder(
  model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
  transform_graph: tfx.dsl.components.InputArtifact[standard_artifacts.TransformGraph],
  transformed_examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
  catalog: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
  catalog_transform_graph: tfx.dsl.components.InputArtifact[standard_artifacts.TransformGraph],
  serving_model: tfx.dsl.components.OutputArtifact[standard_artifacts.Model],
  top_k: tfx.dsl.components.Parameter[int],
  rating_min: tfx.dsl.components.Parameter[float],
  rating_max: tfx.dsl.components.Parameter[float],
  index_type: tfx.dsl.components.Parameter[str],
  scann_candidates: tfx.dsl.components.Parameter[int],
  model_name: tfx.dsl.components.Parameter[str],
  code_version: tfx.dsl.components.Parameter[str],
) -> None:
  """Writes the serving SavedModel to `<serving_model.uri>/Format-Serving`, with TF
  Serving warmup requests for `model_name` (modules/serving/warmup.py).

  `code_version` is a fingerprint of this component's and the serving
  module's source: it is part of the cache key, so editing them re-runs this step.
  """
  del code_version  # Only there for the cache key (pipeline/fingerprint.py).
  report = builder.build_from_artifacts(
    model_uri=model.uri,
    transform_graph_uri=transform_graph.uri,
    transformed_examples=transformed_examples,
    catalog_examples=catalog,
    catalog_transform_graph_uri=catalog_transform_graph.uri,
    output_uri=serving_model.uri,
    top_k=top_k,
    rating_min=rating_min,
    rating_max=rating_max,
    index_type=index_type,
    scann_candidates=scann_candidates,
    model_name=model_name,
  )
  for name, value in report.items():
    serving_model.set_int_custom_property(name, int(value))
