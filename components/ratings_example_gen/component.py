"""RatingsExampleGen: CsvExampleGen that splits the ratings for evaluating the future.

The output has four splits, train, validation, eval and new_users (docs/metrics.md),
assigned by the split protocol of `splits.py` (user_time, global_time or random)
instead of by hash. Everything else is CsvExampleGen's: reading the CSV files, span
and version resolution (`range_config`), the output format and lineage.
"""

from __future__ import annotations

import dataclasses

from google.protobuf import struct_pb2
from tfx.components.example_gen import component as example_gen_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.ratings_example_gen import executor, splits
from nfrec import contracts

SPAN_PATTERN = "span-{SPAN}/*"  # nfrec/data/spans.py writes ratings/span-N/


def output_splits(spans: bool) -> tuple[str, ...]:
  return (*contracts.SPLITS, contracts.NEWEST_SPAN) if spans else contracts.SPLITS


class RatingsExampleGen(example_gen_component.FileBasedExampleGen):
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(
    self,
    input_base: str,
    split: splits.SplitConfig,
    spans: bool = False,
    span_window: int = 1,
    range_config=None,
  ):
    """With `spans`, `input_base` holds `span-N/` folders: TFX's span resolution picks
    the latest N (or `range_config`'s), and the executor also reads the `span_window`
    - 1 spans before it (docs/design.md, "Living in production")."""
    values = struct_pb2.Struct()
    values.update(
      {
        executor.SPLIT_CONFIG_KEY: dataclasses.asdict(split),
        executor.SPAN_WINDOW_KEY: span_window,
        executor.SPANS_KEY: spans,
      }
    )
    custom_config = example_gen_pb2.CustomConfig()
    custom_config.custom_config.Pack(values)
    # The split names; ExampleGen requires hash buckets, which this executor does not
    # use (it assigns each rating by the protocol above).
    output_config = example_gen_pb2.Output(
      split_config=example_gen_pb2.SplitConfig(
        splits=[
          example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=1)
          for name in output_splits(spans)
        ]
      )
    )
    input_config = None
    if spans:
      input_config = example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name="single_split", pattern=SPAN_PATTERN)]
      )
    super().__init__(
      input_base=input_base,
      input_config=input_config,
      output_config=output_config,
      custom_config=custom_config,
      range_config=range_config,
    )
