"""CSV files -> Arrow record batches, with CsvExampleGen's column types, in Beam.

TFX's CsvExampleGen parses and converts one line at a time in Python (about 85 µs a
rating through the DirectRunner, docs/performance.md). This reads each file with
pyarrow's CSV reader, a block of rows at a time, and gives the same columns and
values: a column's type is inferred over all files as tfx_bsl's ColumnTypeInferrer
does (INT if every non-empty value is an int64, else FLOAT if a float, else STRING),
an empty cell is a missing value, blank lines are skipped. pyarrow's vectorized
casts do the common case; a block they refuse (" 5", "+5", an int beyond int64) is
inferred and converted value by value with Python's int() and float(), as TFX does.

Each batch holds flat columns (int64, float32 or binary; null where a cell was empty);
EncodeExamples encodes a batch as serialized tf.Examples with tfx_bsl's encoder.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from tfx.dsl.io import fileio
from tfx.utils import io_utils
from tfx_bsl.coders import csv_decoder, example_coder

ColumnType = csv_decoder.ColumnType
BLOCK_BYTES = 1 << 20  # pyarrow's default block: about 40,000 ratings a batch
_ARROW_TYPES = {ColumnType.INT: pa.int64(), ColumnType.FLOAT: pa.float32()}


def _name_the_row(row) -> str:
  del row
  return "error"  # with a handler set, pyarrow's message names the row ("Row #7")


def read_text_batches(path: str, column_names: list[str]):
  """The file's rows as record batches of strings (an empty cell is ""). A row with the
  wrong number of cells fails, naming the file and the row (the header is row 1, blank
  lines are not counted)."""
  with beam.io.filesystems.FileSystems.open(path) as file:  # any Beam filesystem, as TFX
    try:
      reader = pacsv.open_csv(
        file,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(
          newlines_in_values=True, invalid_row_handler=_name_the_row
        ),
        convert_options=pacsv.ConvertOptions(
          column_types={name: pa.string() for name in column_names}, strings_can_be_null=False
        ),
      )
      if reader.schema.names != column_names:
        raise ValueError(f"{path}: header {reader.schema.names} is not {column_names}.")
      for batch in reader:
        if batch.num_rows:
          yield batch
    except pa.ArrowInvalid as error:
      raise ValueError(f"{path}: {error}") from error


def infer_type(column: pa.Array) -> ColumnType:
  """The type tfx_bsl's ColumnTypeInferrer gives these strings ("" counts for nothing)."""
  values = column.filter(pc.not_equal(column, ""))
  if len(values) == 0:
    return ColumnType.UNKNOWN
  try:
    pc.cast(values, pa.int64())
    return ColumnType.INT
  except pa.ArrowInvalid:  # not plain int64s: tfx_bsl's own rule, value by value
    return max(csv_decoder._InferValueType(value.encode()) for value in values.to_pylist())


def infer_types(batch: pa.RecordBatch) -> dict[str, ColumnType]:
  return {name: infer_type(batch.column(name)) for name in batch.schema.names}


def merge_types(types: list[dict[str, ColumnType]]) -> dict[str, ColumnType]:
  """Over batches, each column takes the widest type (INT < FLOAT < STRING)."""
  merged: dict[str, ColumnType] = {}
  for batch_types in types:
    for name, column_type in batch_types.items():
      merged[name] = max(merged.get(name, ColumnType.UNKNOWN), column_type)
  return merged


def convert(column: pa.Array, column_type: ColumnType) -> pa.Array:
  """Strings -> the column's type; "" -> null."""
  cells = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
  if column_type == ColumnType.STRING:
    return cells.cast(pa.binary())
  parsed_type = pa.int64() if column_type == ColumnType.INT else pa.float64()
  try:
    parsed = pc.cast(cells, parsed_type)
  except pa.ArrowInvalid:  # a form pyarrow does not parse (" 5", "+5"): Python's, as TFX
    parse = int if column_type == ColumnType.INT else float
    parsed = pa.array(
      [None if cell is None else parse(cell) for cell in cells.to_pylist()], parsed_type
    )
  # tf.Example holds float32: the parsed doubles are rounded as protobuf rounds them.
  return pc.cast(parsed, _ARROW_TYPES[column_type], safe=False)


def to_typed(batch: pa.RecordBatch, types: dict[str, ColumnType]) -> pa.RecordBatch:
  """A batch of strings with its columns converted; a column empty in every file is
  left out, as TFX leaves its feature without values."""
  names = [name for name in batch.schema.names if types[name] != ColumnType.UNKNOWN]
  return pa.RecordBatch.from_arrays(
    [convert(batch.column(name), types[name]) for name in names], names
  )


def _as_lists(column: pa.Array) -> pa.Array:
  """One value per row -> a list per row (tf.Example's form); null -> an empty list."""
  valid = np.asarray(column.is_valid())
  offsets = np.r_[0, np.cumsum(valid)].astype(np.int32)
  return pa.ListArray.from_arrays(pa.array(offsets), column.drop_null())


class EncodeExamples(beam.DoFn):
  """A typed batch -> the list of its rows as serialized tf.Examples (one element)."""

  def setup(self):
    self._encoder = example_coder.RecordBatchToExamplesEncoder()

  def process(self, batch: pa.RecordBatch):
    if batch.num_rows:
      lists = pa.RecordBatch.from_arrays(
        [_as_lists(column) for column in batch.columns], batch.schema.names
      )
      yield self._encoder.encode(lists)


def column_names_of(pattern: str) -> tuple[list[str], list[str]]:
  """The files of a pattern and their common header, checked as CsvExampleGen does."""
  files = sorted(fileio.glob(pattern))
  if not files:
    raise RuntimeError(f"Split pattern {pattern} does not match any files.")
  column_names = io_utils.load_csv_column_names(files[0])
  for path in files[1:]:
    if io_utils.load_csv_column_names(path) != column_names:
      raise RuntimeError(f"Files in same split {pattern} have different header.")
  return files, column_names


def read(pipeline, patterns: list[str]) -> list:
  """The CSV files of each pattern as a PCollection of typed record batches.

  The column types are inferred once over the files of every pattern, so all batches
  share one schema. The files are read twice, to infer and then to convert: reading
  is cheap next to holding every batch of text until the types are known.
  """
  files = [column_names_of(pattern) for pattern in patterns]
  column_names = files[0][1]
  for pattern, (_, names) in zip(patterns, files, strict=True):
    if names != column_names:
      raise RuntimeError(f"Files of {pattern} have a different header than {patterns[0]}.")
  types = beam.pvalue.AsSingleton(
    pipeline
    | "FilesToInfer" >> beam.Create([path for paths, _ in files for path in paths])
    | "InferTypes"
    >> beam.FlatMap(lambda path: map(infer_types, read_text_batches(path, column_names)))
    | "MergeTypes" >> beam.CombineGlobally(merge_types)
  )
  return [
    pipeline
    | f"Files[{pattern}]" >> beam.Create(paths)
    | f"Read[{pattern}]"
    >> beam.FlatMap(
      lambda path, types: (to_typed(b, types) for b in read_text_batches(path, column_names)),
      types=types,
    )
    for pattern, (paths, _) in zip(patterns, files, strict=True)
  ]
