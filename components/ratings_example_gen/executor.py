"""RatingsExampleGen's executor: CSV files read, split and written in record batches.

TFX's ExampleGen splits by a hash of each example; the product is judged on the
future, so this executor assigns each rating to train, validation, eval or
new_users by the split protocol (splits.py), in Beam:

  new users    a seeded hash of the user id, for any protocol
  random       a seeded hash of (user, movie)
  global_time  two time quantiles over all ratings (ApproximateQuantiles)
  user_time    the ratings grouped by buckets of users (GroupByKey), each user's
               ratings ordered by time

Every step handles a record batch of ratings (csv_batches.py), never one rating:
CsvExampleGen's row-by-row reading and TFX's per-example write cost about 85 µs a
rating in the DirectRunner (docs/performance.md). The examples are CsvExampleGen's
(same columns, types and values; a test compares them).

With spans (`ratings/span-N/`), TFX's driver resolves the span (the latest, or
`range_config`'s) and this executor reads it with the `span_window` - 1 spans
before it: a rolling window of the most recent data, in one Examples artifact.
"""

from __future__ import annotations

import json
import os
import zlib
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io import filebasedsink, tfrecordio
from apache_beam.transforms import stats
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen import write_split
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components.ratings_example_gen import csv_batches, splits
from nfrec import contracts

SPLIT_CONFIG_KEY = "split"  # the split protocol, in ExampleGen's custom_config
SPAN_WINDOW_KEY = "span_window"  # spans read: the resolved one and those before it
SPANS_KEY = "spans"  # whether the input is spans (then the newest is also its own split)
USER_BUCKETS = 128  # user_time groups the ratings by these buckets of users


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


def _values(batch: pa.RecordBatch, name: str) -> np.ndarray:
  """A column's values; None where a cell was empty (ExampleValidator reports those)."""
  column = batch.column(name)
  if column.null_count == 0:
    return column.to_numpy(zero_copy_only=False)
  return np.array(column.to_pylist(), dtype=object)


def _times(batch: pa.RecordBatch) -> np.ndarray:
  """The ratings' times; a rating without one sorts first (0)."""
  if contracts.TIMESTAMP not in batch.schema.names:
    return np.zeros(batch.num_rows, np.int64)
  return batch.column(contracts.TIMESTAMP).fill_null(0).to_numpy(zero_copy_only=False)


def _by_code(batch: pa.RecordBatch, codes: np.ndarray):
  """(code, the batch's rows with that split code) for each code present."""
  for code in np.unique(codes).tolist():
    yield code, batch.filter(pa.array(codes == code))


def _user_bucket(batch: pa.RecordBatch):
  """(bucket, rows) for each bucket of users in the batch: a user's ratings share one."""
  buckets = splits.per_distinct(
    _values(batch, contracts.USER_ID), lambda user: zlib.crc32(str(user).encode()) % USER_BUCKETS
  ).astype(np.int64)
  return _by_code(batch, buckets)


def _user_time_group(bucket_and_batches, config: splits.SplitConfig):
  """All the ratings of a bucket of users -> (code, rows) by the user_time protocol."""
  _, batches = bucket_and_batches
  [batch] = pa.Table.from_batches(list(batches)).combine_chunks().to_batches()
  users = _values(batch, contracts.USER_ID)
  codes = splits.user_time_codes(
    splits.factorize(users), _values(batch, contracts.MOVIE_ID), _times(batch), config
  )
  return _by_code(batch, codes)


class _SeparateNewUsers(beam.DoFn):
  """A batch -> (NEW_USERS code, its new users' rows), and its known users' rows as KNOWN."""

  KNOWN = "known"

  def __init__(self, config: splits.SplitConfig):
    self._config = config

  def process(self, batch: pa.RecordBatch):
    new = splits.new_user_mask(_values(batch, contracts.USER_ID), self._config)
    if new.any():
      yield splits.NEW_USERS_CODE, batch.filter(pa.array(new))
    if not new.all():
      yield beam.pvalue.TaggedOutput(self.KNOWN, batch.filter(pa.array(~new)))


def assign_splits(batches, config: splits.SplitConfig):
  """PCollection of rating batches -> PCollection of (split code, batch of that split).

  Every step handles a batch of ratings, never one rating: the per-element cost of
  the runner is paid per batch (docs/performance.md).
  """
  separated = batches | "NewUsers" >> beam.ParDo(_SeparateNewUsers(config)).with_outputs(
    _SeparateNewUsers.KNOWN, main="new"
  )
  known = separated[_SeparateNewUsers.KNOWN]
  if config.protocol == "random":
    assigned = known | "Random" >> beam.FlatMap(
      lambda batch: _by_code(
        batch,
        splits.random_codes(
          _values(batch, contracts.USER_ID), _values(batch, contracts.MOVIE_ID), config
        ),
      )
    )
  elif config.protocol == "global_time":
    cutoffs = (
      known
      | "Times" >> beam.Map(lambda batch: _times(batch).tolist())
      | "Quantiles" >> stats.ApproximateQuantiles.Globally(1001, input_batched=True)
      | "Cutoffs"
      >> beam.Map(lambda q: splits.global_time_cutoffs(np.asarray(q, dtype=np.float64), config))
    )
    assigned = known | "GlobalTime" >> beam.FlatMap(
      lambda batch, cut: _by_code(batch, splits.global_time_codes(_times(batch), cut)),
      cut=beam.pvalue.AsSingleton(cutoffs),
    )
  else:  # user_time: each user's ratings together, by buckets of users
    assigned = (
      known
      | "ByUserBucket" >> beam.FlatMap(_user_bucket)
      | "GroupByUserBucket" >> beam.GroupByKey()
      | "UserTime" >> beam.FlatMap(_user_time_group, config=config)
    )
  return (separated.new, assigned) | "AllSplits" >> beam.Flatten()


def _has_time(input_base: str, pattern: str) -> bool:
  """Whether the ratings files have a Timestamp column (their first file's header)."""
  files = sorted(fileio.glob(os.path.join(input_base, pattern)))
  return bool(files) and contracts.TIMESTAMP in io_utils.load_csv_column_names(files[0])


class _TFRecordBatchSink(filebasedsink.FileBasedSink):
  """Beam's TFRecord sink (WriteToTFRecord's: temporary files, then renamed into place),
  written a list of serialized records per element rather than one record."""

  def __init__(self, file_path_prefix: str):
    super().__init__(
      file_path_prefix,
      coder=None,
      file_name_suffix=".gz",  # gzip, chosen by the suffix as WriteToTFRecord does
      mime_type="application/octet-stream",
    )

  def write_record(self, file_handle, records):
    for record in records:
      tfrecordio._TFRecordUtil.write_record(file_handle, record)


class Executor(base_beam_executor.BaseBeamExecutor):
  """ExampleGen's executor for RatingsExampleGen: read, split and write in batches.

  What BaseExampleGenExecutor.Do does (split names, a Beam pipeline, gzipped TFRecords
  of tf.Examples, the payload format), with each step handling a batch of ratings.
  TFX's WriteSplit also reshuffles every example, which costs more than the rest of
  the component together in the DirectRunner (docs/performance.md) and buys nothing
  here: the Trainer reads each split whole and orders it by its own seed.
  """

  def Do(self, input_dict, output_dict, exec_properties):
    self._log_startup(input_dict, output_dict, exec_properties)
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(
      exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config
    )
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(
      exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config
    )
    examples = output_dict[standard_component_specs.EXAMPLES_KEY]
    [artifact] = examples
    artifact.split_names = artifact_utils.encode_split_names(
      example_gen_utils.generate_output_split_names(input_config, output_config)
    )
    [input_split] = input_config.splits  # one input; the splits are ours to make
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    config = splits.resolve(
      split_config_from(exec_properties), _has_time(input_base, input_split.pattern)
    )
    with self._make_beam_pipeline() as pipeline:
      encoded_splits = self._encoded_splits(
        pipeline, exec_properties, input_base, input_split.pattern, config
      )
      for name, encoded in encoded_splits.items():
        prefix = os.path.join(
          artifact_utils.get_split_uri(examples, name), write_split.DEFAULT_FILE_NAME
        )
        _ = encoded | f"WriteSplit[{name}]" >> beam.io.Write(_TFRecordBatchSink(prefix))
    examples_utils.set_payload_format(artifact, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    # What was done, for the run summary: the protocol "auto" became.
    artifact.set_string_custom_property(contracts.SPLIT_PROTOCOL_PROPERTY, config.protocol)

  def _encoded_splits(
    self, pipeline, exec_properties, input_base: str, pattern: str, config: splits.SplitConfig
  ) -> dict:
    """Each split's examples, as lists of serialized tf.Examples (one list a batch);
    `pattern` is the input's file pattern under `input_base`."""
    window = int(_custom_config(exec_properties).get(SPAN_WINDOW_KEY, 1))
    span = int(exec_properties.get(example_gen_utils.SPAN_PROPERTY_NAME) or 0)
    by_span = csv_batches.read(
      pipeline,
      [os.path.join(input_base, each) for each in window_patterns(pattern, span, window)],
    )
    batches = by_span | "Window" >> beam.Flatten()
    parts = assign_splits(batches, config) | "Partition" >> beam.Partition(
      lambda item, _: item[0], len(contracts.SPLITS)
    )
    result = {
      name: part
      | f"Batches[{name}]" >> beam.Values()
      | f"Encode[{name}]" >> beam.ParDo(csv_batches.EncodeExamples())
      for name, part in zip(contracts.SPLITS, parts, strict=True)
    }
    if _custom_config(exec_properties).get(SPANS_KEY):
      result[contracts.NEWEST_SPAN] = by_span[-1] | "Encode[newest]" >> beam.ParDo(
        csv_batches.EncodeExamples()
      )
    return result
