"""DriftValidator: TFDV's DistributionValidator against the last approved data.

TFX 1.16's DistributionValidator compares a statistics artifact with a baseline
and rubber-stamps when there is none, but its spec makes the baseline a
required input, and `LatestArtifactStrategy` fails when nothing is there yet:
on the first run the resolver fails, and the local runner then skips the
validator and everything that reads it (the data gate included) while the rest
of the DAG runs on. So: the same component and executor with the baseline
optional, and a resolver strategy that resolves to nothing instead of failing.
"""

from tfx import types
from tfx.components.distribution_validator.component import DistributionValidator
from tfx.dsl.components.base import base_component
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils


class DriftValidatorSpec(standard_component_specs.DistributionValidatorSpec):
  INPUTS = {
    **standard_component_specs.DistributionValidatorSpec.INPUTS,
    standard_component_specs.BASELINE_STATISTICS_KEY: ChannelParameter(
      type=standard_component_specs.DistributionValidatorSpec.INPUTS[
        standard_component_specs.BASELINE_STATISTICS_KEY
      ].type,
      optional=True,
    ),
  }


class DriftValidator(base_component.BaseComponent):
  """DistributionValidator (its executor) with an optional baseline."""

  SPEC_CLASS = DriftValidatorSpec
  EXECUTOR_SPEC = DistributionValidator.EXECUTOR_SPEC

  def __init__(self, statistics, baseline_statistics, config, include_split_pairs):
    specs = standard_component_specs
    super().__init__(
      spec=DriftValidatorSpec(
        **{
          specs.STATISTICS_KEY: statistics,
          specs.BASELINE_STATISTICS_KEY: baseline_statistics,
          specs.DISTRIBUTION_VALIDATOR_CONFIG_KEY: config,
          specs.INCLUDE_SPLIT_PAIRS_KEY: json_utils.dumps(include_split_pairs),
          specs.ANOMALIES_KEY: types.Channel(type=standard_artifacts.ExampleAnomalies),
        }
      )
    )


class LatestIfAnyStrategy(LatestArtifactStrategy):
  """The latest artifact of each channel, or none (never a failed resolution)."""

  def resolve_artifacts(self, store, input_dict):
    return self._resolve(input_dict)
