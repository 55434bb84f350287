"""RecommenderTrainer: TFX's Trainer, with the movie catalog as an input.

The movie tower reads each movie's title and year, which live in the catalog,
not in the ratings; TFX's Trainer has one Examples input. This component is the
stock Trainer (its spec, its GenericExecutor, `run_fn`, `base_model`) with two
more inputs: the catalog Transform's transformed examples and graph. The
executor hands their locations to `run_fn` in `custom_config` (under
contracts.CATALOG_FILES and CATALOG_TRANSFORM_OUTPUT), so lineage records the
catalog a model was trained with.
"""

from __future__ import annotations

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import io_utils, json_utils

from nfrec import contracts

CATALOG_KEY = "catalog"
CATALOG_TRANSFORM_GRAPH_KEY = "catalog_transform_graph"


class RecommenderTrainerSpec(standard_component_specs.TrainerSpec):
  INPUTS = {
    **standard_component_specs.TrainerSpec.INPUTS,
    CATALOG_KEY: ChannelParameter(type=standard_artifacts.Examples),
    CATALOG_TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
  }


def catalog_locations(input_dict) -> dict:
  """The catalog's files and Transform output, as run_fn and tuner_fn find them in
  custom_config."""
  catalog = artifact_utils.get_single_instance(input_dict[CATALOG_KEY])
  return {
    contracts.CATALOG_FILES: [
      io_utils.all_files_pattern(artifact_utils.get_split_uri([catalog], split))
      for split in artifact_utils.decode_split_names(catalog.split_names)
    ],
    contracts.CATALOG_TRANSFORM_OUTPUT: artifact_utils.get_single_uri(
      input_dict[CATALOG_TRANSFORM_GRAPH_KEY]
    ),
  }


class Executor(trainer_executor.GenericExecutor):
  """The stock Trainer executor; run_fn also gets the catalog's locations."""

  def _GetFnArgs(self, input_dict, output_dict, exec_properties):
    fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
    fn_args.custom_config = {**(fn_args.custom_config or {}), **catalog_locations(input_dict)}
    return fn_args


class RecommenderTrainer(base_component.BaseComponent):
  SPEC_CLASS = RecommenderTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(
    self,
    examples: types.BaseChannel,
    transform_graph: types.BaseChannel,
    catalog: types.BaseChannel,
    catalog_transform_graph: types.BaseChannel,
    run_fn: str,
    train_args,
    eval_args,
    custom_config: dict,
    base_model: types.BaseChannel | None = None,
    hyperparameters: types.BaseChannel | None = None,
  ):
    super().__init__(
      spec=RecommenderTrainerSpec(
        examples=examples,
        transform_graph=transform_graph,
        base_model=base_model,
        hyperparameters=hyperparameters,
        train_args=train_args,
        eval_args=eval_args,
        run_fn=run_fn,
        custom_config=json_utils.dumps(custom_config),
        catalog=catalog,
        catalog_transform_graph=catalog_transform_graph,
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun),
      )
    )
