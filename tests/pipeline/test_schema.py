"""The curated schema catches drift (real TFDV)."""

import os

import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from nfrec import contracts
from pipeline import schema
from pipeline.config import PipelineConfig


def test_the_schema_in_the_repo_is_what_the_code_states():
  with open(schema.DEFAULT_SCHEMA_FILE) as f:
    in_repo = text_format.Parse(f.read(), schema_pb2.Schema())
  assert in_repo == schema.ratings_schema()


def _anomalies(tmp_path, csv_text, curated=None):
  path = tmp_path / "ratings.csv"
  path.write_text(csv_text)
  stats = tfdv.generate_statistics_from_csv(str(path))
  found = tfdv.validate_statistics(stats, curated or schema.ratings_schema())
  return {name: info.description for name, info in found.anomaly_info.items()}


GOOD = "User_ID,Rating,Movie_ID\n10,5,1\n11,3,2\n12,1,2\n"


def test_good_data_has_no_anomaly(tmp_path):
  assert _anomalies(tmp_path, GOOD) == {}


@pytest.mark.parametrize(
  "csv_text,feature,words",
  [
    ("User_ID,Rating,Movie_ID\n10,5,1\n11,7,2\n", "Rating", "unexpectedly large value: 7"),
    (
      "User_ID,Rating,Movie_ID\n10,5,1\n,3,2\n",
      "User_ID",
      "present in fewer examples than expected",
    ),
    ("User_ID,Rating,Movie_ID,Genre\n10,5,1,x\n11,3,2,y\n", "Genre", "new column"),
    ("User_ID,Rating,Movie_ID\n10,5,1\n11,4.5,2\n", "Rating", "float"),
    ("User_ID,Rating,Movie_ID\nabc,5,1\n11,3,2\n", "User_ID", "string"),
  ],
)
def test_drift_is_an_anomaly_of_the_feature(tmp_path, csv_text, feature, words):
  found = _anomalies(tmp_path, csv_text)
  assert feature in found, found
  assert words in found[feature].lower(), found[feature]


def test_half_star_schema_accepts_half_stars(tmp_path):
  curated = schema.ratings_schema(0.5, 5.0, integer_ratings=False)
  assert _anomalies(tmp_path, "User_ID,Rating,Movie_ID\n10,4.5,1\n11,0.5,2\n", curated) == {}


def test_schema_for_prefers_the_configs_then_the_data_folders_own(tmp_path):
  config = PipelineConfig(data_dir=str(tmp_path))
  assert schema.schema_for(config) == schema.DEFAULT_SCHEMA_FILE
  assert os.path.isfile(schema.DEFAULT_SCHEMA_FILE)  # package data, found in any install
  schema.write(schema.ratings_schema(), str(tmp_path / contracts.DATA_SCHEMA_FILE))
  assert schema.schema_for(config) == str(tmp_path / contracts.DATA_SCHEMA_FILE)
  chosen = str(tmp_path / "chosen.pbtxt")
  assert schema.schema_for(PipelineConfig(data_dir=str(tmp_path), schema_file=chosen)) == chosen


def test_content_addressed_copy_changes_path_with_content(tmp_path):
  first = tmp_path / "a.pbtxt"
  first.write_text("feature { name: 'x' }")
  path_a = schema.content_addressed_copy(str(first), str(tmp_path / "out"))
  assert schema.content_addressed_copy(str(first), str(tmp_path / "out")) == path_a
  first.write_text("feature { name: 'y' }")
  path_b = schema.content_addressed_copy(str(first), str(tmp_path / "out"))
  assert path_b != path_a and os.path.exists(path_a) and os.path.exists(path_b)
