"""Reading CSV files in record batches gives exactly CsvExampleGen's tf.Examples."""

import collections

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.testing import util as beam_testing
from tfx.components.example_gen.csv_example_gen import executor as csv_executor

from components.ratings_example_gen import csv_batches

# Ints in the first rows and a float later (the column is FLOAT in every row), forms
# only Python parses (" 8", "+7"), an int beyond int64 (the column becomes STRING),
# empty cells, quoted commas and line breaks, a blank line, a column empty everywhere.
FIRST = """int,float,text,big,empty
1,2,x,5,
-5,,"a, b",6,

,3,,7,
"""
SECOND = """int,float,text,big,empty
+7,1e3,"two
lines",99999999999999999999,
 8,0.1,3,,
9,-2.5,é,8,
"""


def _as_dict(serialized: bytes) -> tuple:
  """An example as sorted (feature, kind, values); a feature without a kind is absent."""
  example = tf.train.Example.FromString(serialized)
  features = []
  for name, feature in example.features.feature.items():
    kind = feature.WhichOneof("kind")
    if kind:
      features.append((name, kind, tuple(getattr(feature, kind).value)))
  return tuple(sorted(features))


def _same_examples(grouped):
  [(_, by_source)] = grouped
  assert collections.Counter(by_source["batches"]) == collections.Counter(by_source["tfx"])
  assert len(by_source["tfx"]) == 6  # the blank line is no example


def test_batches_encode_to_csv_example_gens_examples(tmp_path, monkeypatch):
  (tmp_path / "first.csv").write_text(FIRST)
  (tmp_path / "second.csv").write_text(SECOND)
  monkeypatch.setattr(csv_batches, "BLOCK_BYTES", 40)  # a few rows a batch
  with beam.Pipeline() as pipeline:
    tfx_examples = pipeline | "TFX" >> csv_executor._CsvToExample(
      {"input_base": str(tmp_path)}, "*.csv"
    )
    [batches] = csv_batches.read(pipeline, [str(tmp_path / "*.csv")])
    grouped = {
      "tfx": tfx_examples | "KeyTFX" >> beam.Map(lambda e: (0, _as_dict(e.SerializeToString()))),
      "batches": batches
      | beam.ParDo(csv_batches.EncodeExamples())
      | "Key" >> beam.FlatMap(lambda examples: [(0, _as_dict(e)) for e in examples]),
    } | beam.CoGroupByKey()
    beam_testing.assert_that(grouped, _same_examples)


def test_the_types_are_inferred_over_all_batches():
  text = csv_batches.pa.array
  first = csv_batches.infer_types(
    csv_batches.pa.RecordBatch.from_arrays([text(["1", "2"]), text(["", ""])], ["a", "b"])
  )
  second = csv_batches.infer_types(
    csv_batches.pa.RecordBatch.from_arrays([text(["1.5", ""]), text(["", "x"])], ["a", "b"])
  )
  ColumnType = csv_batches.ColumnType  # noqa: N806
  assert first == {"a": ColumnType.INT, "b": ColumnType.UNKNOWN}
  assert csv_batches.merge_types([first, second]) == {"a": ColumnType.FLOAT, "b": ColumnType.STRING}


def test_a_row_with_the_wrong_number_of_cells_names_the_file_and_row(tmp_path):
  path = tmp_path / "ratings.csv"
  path.write_text("User_ID,Rating,Movie_ID\n1,5,10\n2,4,11\n3,12\n")
  with pytest.raises(ValueError, match=r"ratings\.csv: .*Row #4: Expected 3 columns, got 2: 3,12"):
    list(csv_batches.read_text_batches(str(path), ["User_ID", "Rating", "Movie_ID"]))
