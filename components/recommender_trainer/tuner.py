"""RecommenderTuner: TFX's Tuner, with the movie catalog as an input, as the Trainer.

The stock Tuner (its spec, its executor running `tuner_fn`'s KerasTuner search,
its best_hyperparameters and tuner_results outputs) with the two catalog inputs of
RecommenderTrainer, whose locations reach `tuner_fn` in `custom_config` the same
way. Its best_hyperparameters feed the Trainer's `hyperparameters` input.
"""

from __future__ import annotations

from tfx import types
from tfx.components.tuner import executor as tuner_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

from components.recommender_trainer.component import (
  CATALOG_KEY,
  CATALOG_TRANSFORM_GRAPH_KEY,
  catalog_locations,
)


class RecommenderTunerSpec(standard_component_specs.TunerSpec):
  INPUTS = {
    **standard_component_specs.TunerSpec.INPUTS,
    CATALOG_KEY: ChannelParameter(type=standard_artifacts.Examples),
    CATALOG_TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
  }


class Executor(tuner_executor.Executor):
  """The stock Tuner executor; tuner_fn also gets the catalog's locations."""

  def Do(self, input_dict, output_dict, exec_properties):
    key = standard_component_specs.CUSTOM_CONFIG_KEY
    custom_config = json_utils.loads(exec_properties.get(key) or "null") or {}
    exec_properties = {
      **exec_properties,
      key: json_utils.dumps({**custom_config, **catalog_locations(input_dict)}),
    }
    super().Do(input_dict, output_dict, exec_properties)


class RecommenderTuner(base_component.BaseComponent):
  SPEC_CLASS = RecommenderTunerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(
    self,
    examples: types.BaseChannel,
    transform_graph: types.BaseChannel,
    catalog: types.BaseChannel,
    catalog_transform_graph: types.BaseChannel,
    tuner_fn: str,
    train_args,
    eval_args,
    custom_config: dict,
  ):
    super().__init__(
      spec=RecommenderTunerSpec(
        examples=examples,
        transform_graph=transform_graph,
        tuner_fn=tuner_fn,
        train_args=train_args,
        eval_args=eval_args,
        custom_config=json_utils.dumps(custom_config),
        catalog=catalog,
        catalog_transform_graph=catalog_transform_graph,
        best_hyperparameters=types.Channel(type=standard_artifacts.HyperParameters),
        tuner_results=types.Channel(type=standard_artifacts.TunerResults),
      )
    )
