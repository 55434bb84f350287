"""RatingsExampleGen's executor: CsvExampleGen's reading, our split (splits.py).

TFX's ExampleGen splits by a hash of each example; the product is judged on the
future, so this executor overrides `GenerateExamplesByBeam` (the hook TFX
documents for custom splitting) and assigns each rating to train, validation,
eval or new_users by the split protocol, in Beam:

  new users    a seeded hash of the user id, for any protocol
  random       a seeded hash of (user, movie): a Map, no shuffle
  global_time  two time quantiles over all ratings (ApproximateQuantiles), then a Map
  user_time    the ratings grouped by user (GroupByKey), each group ordered by time

With spans (`ratings/span-N/`), TFX's driver resolves the span (the latest, or
`range_config`'s) and this executor reads it with the `span_window` - 1 spans
before it: a rolling window of the most recent data, in one Examples artifact.
"""

from __future__ import annotations

import json
import os
from typing import Any

import apache_beam as beam
import numpy as np
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import io_utils, proto_utils

from components.ratings_example_gen import splits
from nfrec import contracts

SPLIT_CONFIG_KEY = "split"  # the split protocol, in ExampleGen's custom_config
SPAN_WINDOW_KEY = "span_window"  # spans read: the resolved one and those before it
SPANS_KEY = "spans"  # whether the input is spans (then the newest is also its own split)


def _custom_config(exec_properties: dict[str, Any]) -> dict:
  custom = example_gen_pb2.CustomConfig()
  proto_utils.json_to_proto(exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY], custom)
  values = struct_pb2.Struct()
  custom.custom_config.Unpack(values)
  return json.loads(json_format.MessageToJson(values))


def split_config_from(exec_properties: dict[str, Any]) -> splits.SplitConfig:
  """The SplitConfig that RatingsExampleGen packed into its custom_config."""
  config = _custom_config(exec_properties)[SPLIT_CONFIG_KEY]
  return splits.SplitConfig(**{**config, "seed": int(config["seed"])})


def window_patterns(pattern: str, span: int, window: int) -> list[str]:
  """The resolved span's file pattern ("span-7/*") and those of the `window` - 1 spans
  before it, oldest first; a pattern without that span is returned as it is."""
  marker = f"span-{span}/"
  if window <= 1 or marker not in pattern:
    return [pattern]
  first = max(span - window + 1, 1)  # spans are numbered from 1
  return [pattern.replace(marker, f"span-{n}/") for n in range(first, span + 1)]


def _value(example, name: str):
  """The single value of a feature of a tf.Example (int64 or bytes), or None."""
  feature = example.features.feature.get(name)
  if feature is None:
    return None
  kind = feature.WhichOneof("kind")
  values = getattr(feature, kind).value if kind else []
  return values[0] if values else None


def _key(example) -> tuple:
  """(user, movie, time) of a rating; ids that are missing stay None (ExampleValidator
  reports them), and a rating without time sorts first."""
  time = _value(example, contracts.TIMESTAMP)
  return (
    _value(example, contracts.USER_ID),
    _value(example, contracts.MOVIE_ID),
    0 if time is None else time,
  )


class _AssignUserTime(beam.DoFn):
  """One user's ratings -> (split, example) by the user_time protocol."""

  def __init__(self, config: splits.SplitConfig):
    self._config = config

  def process(self, user_and_ratings):
    _, ratings = user_and_ratings
    ratings = list(ratings)
    times = np.array([time for _, time, _ in ratings], dtype=np.int64)
    movies = np.array([str(movie) for movie, _, _ in ratings])
    for split, (_, _, example) in zip(
      splits.user_time_splits(times, movies, self._config), ratings, strict=True
    ):
      yield split, example


def assign_splits(examples, config: splits.SplitConfig):
  """PCollection of tf.Examples -> PCollection of (split name, tf.Example)."""
  keyed = examples | "Key" >> beam.Map(lambda example: (_key(example), example))
  is_new = lambda item: splits.is_new_user(item[0][0], config)  # noqa: E731
  new_users = (
    keyed
    | "NewUsers" >> beam.Filter(is_new)
    | "ToNewUsers" >> beam.Map(lambda item: (contracts.NEW_USERS, item[1]))
  )
  known = keyed | "KnownUsers" >> beam.Filter(lambda item: not is_new(item))
  if config.protocol == "random":
    assigned = known | "Random" >> beam.Map(
      lambda item: (splits.random_split(item[0][0], item[0][1], config), item[1])
    )
  elif config.protocol == "global_time":
    cutoffs = (
      known
      | "Times" >> beam.Map(lambda item: item[0][2])
      | "Quantiles" >> beam.combiners.ApproximateQuantiles.Globally(1001)
      | "Cutoffs"
      >> beam.Map(lambda q: splits.global_time_cutoffs(np.asarray(q, dtype=np.float64), config))
    )
    assigned = known | "GlobalTime" >> beam.Map(
      lambda item, cut: (splits.global_time_split(item[0][2], cut), item[1]),
      cut=beam.pvalue.AsSingleton(cutoffs),
    )
  else:
    assigned = (
      known
      | "ByUser" >> beam.Map(lambda item: (item[0][0], (item[0][1], item[0][2], item[1])))
      | "GroupByUser" >> beam.GroupByKey()
      | "UserTime" >> beam.ParDo(_AssignUserTime(config))
    )
  return (new_users, assigned) | "AllSplits" >> beam.Flatten()


def _has_time(exec_properties) -> bool:
  """Whether the ratings files have a Timestamp column (their first file's header)."""
  input_config = example_gen_pb2.Input()
  proto_utils.json_to_proto(
    exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config
  )
  pattern = os.path.join(
    exec_properties[standard_component_specs.INPUT_BASE_KEY], input_config.splits[0].pattern
  )
  files = sorted(fileio.glob(pattern))
  return bool(files) and contracts.TIMESTAMP in io_utils.load_csv_column_names(files[0])


class Executor(csv_executor.Executor):
  """CsvExampleGen, with the ratings split by RatingsExampleGen's protocol."""

  def Do(self, input_dict, output_dict, exec_properties):
    super().Do(input_dict, output_dict, exec_properties)
    # What was done, for the run summary: the protocol "auto" became.
    protocol = splits.resolve(split_config_from(exec_properties), _has_time(exec_properties))
    for artifact in output_dict[standard_component_specs.EXAMPLES_KEY]:
      artifact.set_string_custom_property(contracts.SPLIT_PROTOCOL_PROPERTY, protocol.protocol)

  def GenerateExamplesByBeam(self, pipeline, exec_properties):
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(
      exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config
    )
    [input_split] = input_config.splits  # one input; the splits are ours to make
    window = int(_custom_config(exec_properties).get(SPAN_WINDOW_KEY, 1))
    span = int(exec_properties.get(example_gen_utils.SPAN_PROPERTY_NAME) or 0)
    read = self.GetInputSourceToExamplePTransform()
    by_span = [
      pipeline | f"InputToRecord[{pattern}]" >> read(exec_properties, pattern)
      for pattern in window_patterns(input_split.pattern, span, window)
    ]
    examples = by_span | "Window" >> beam.Flatten()
    config = splits.resolve(split_config_from(exec_properties), _has_time(exec_properties))
    assigned = assign_splits(examples, config)
    names = list(contracts.SPLITS)
    parts = assigned | "Partition" >> beam.Partition(
      lambda item, _: names.index(item[0]), len(names)
    )
    result = {
      name: part | f"Examples[{name}]" >> beam.Values()
      for name, part in zip(names, parts, strict=True)
    }
    if _custom_config(exec_properties).get(SPANS_KEY):
      result[contracts.NEWEST_SPAN] = by_span[-1]
    return result
