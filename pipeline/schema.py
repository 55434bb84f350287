"""The curated schema of the ratings examples: drift is caught, not learnt.

SchemaGen inferred the first schema; this module states it explicitly (types,
required ids, the rating scale as a domain), and the pipeline imports it with
ImportSchemaGen. ExampleValidator then reports out-of-range ratings, missing
ids, new columns and wrong types as anomalies, and DataGate stops the run.

`pipeline/schema/ratings_schema.pbtxt` is the schema of the Netflix layout
(integer stars 1..5), kept in the repo and shipped in the package; `nfrec
prepare` writes the schema of what it prepared (half stars, a Timestamp column)
beside the data as `schema.pbtxt`.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import shutil

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from nfrec import contracts

DEFAULT_SCHEMA_FILE = str(importlib.resources.files("pipeline") / "schema" / "ratings_schema.pbtxt")
# The movie catalog has the same layout in every data folder (Movie_ID, Year, Name).
MOVIES_SCHEMA_FILE = str(importlib.resources.files("pipeline") / "schema" / "movies_schema.pbtxt")


def _required(schema: schema_pb2.Schema, name: str, kind) -> schema_pb2.Feature:
  feature = schema.feature.add(name=name, type=kind)
  feature.presence.min_fraction = 1.0
  feature.presence.min_count = 1
  feature.shape.dim.add(size=1)
  return feature


def ratings_schema(
  rating_min: float = 1.0,
  rating_max: float = 5.0,
  integer_ratings: bool = True,
  with_timestamp: bool = False,
) -> schema_pb2.Schema:
  schema = schema_pb2.Schema()
  for name in (contracts.USER_ID, contracts.MOVIE_ID):
    _required(schema, name, schema_pb2.INT).int_domain.min = 0
  rating = _required(
    schema, contracts.RATING, schema_pb2.INT if integer_ratings else schema_pb2.FLOAT
  )
  if integer_ratings:
    rating.int_domain.min, rating.int_domain.max = int(rating_min), int(rating_max)
  else:
    rating.float_domain.min, rating.float_domain.max = rating_min, rating_max
  if with_timestamp:  # seconds since 1970 (MovieLens, Netflix Prize)
    _required(schema, contracts.TIMESTAMP, schema_pb2.INT).int_domain.min = 0
  return schema


def movies_schema() -> schema_pb2.Schema:
  """The catalog: a required integer id and title; the year may be missing (unknown)."""
  schema = schema_pb2.Schema()
  _required(schema, contracts.MOVIE_ID, schema_pb2.INT).int_domain.min = 0
  _required(schema, contracts.TITLE, schema_pb2.BYTES)
  year = schema.feature.add(name=contracts.YEAR, type=schema_pb2.INT)
  year.int_domain.min = 0
  year.value_count.min, year.value_count.max = 0, 1
  return schema


def write(schema: schema_pb2.Schema, path: str) -> None:
  with open(path, "w") as f:
    f.write("# Curated schema of the ratings examples (written by pipeline/schema.py).\n")
    f.write(text_format.MessageToString(schema))


def schema_for(config) -> str:
  """The curated schema a pipeline imports: the config's `schema_file` if it names one
  (a runner's choice), else the data folder's own (written by `nfrec prepare`), else
  the package's default for the Netflix layout."""
  if config.schema_file:
    return config.schema_file
  own = os.path.join(config.data_dir, contracts.DATA_SCHEMA_FILE)
  return own if os.path.exists(own) else DEFAULT_SCHEMA_FILE


def movies_schema_for(config) -> str:
  """The curated catalog schema: the config's `movies_schema_file`, else the package's."""
  return config.movies_schema_file or MOVIES_SCHEMA_FILE


def content_addressed_copy(schema_file: str, directory: str) -> str:
  """Copies the schema to `directory/<hash>/schema.pbtxt`.

  ImportSchemaGen's cache key is the file path: a path that changes with the
  content makes an edited schema re-run validation instead of being cached.
  """
  with open(schema_file, "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()[:16]
  target = os.path.join(directory, digest, "schema.pbtxt")
  if not os.path.exists(target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(schema_file, target)
  return target
