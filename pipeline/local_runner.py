"""Runs `create_pipeline` locally: LocalDagRunner, Beam DirectRunner, ML-Metadata in SQLite."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time

from tfx import v1 as tfx

from nfrec import contracts
from pipeline import config as config_lib
from pipeline import pipeline as pipeline_lib
from pipeline import schema as schema_lib


class DataError(ValueError):
  """The input folders cannot be used; the message names the path and the problem."""


def check_input(config: config_lib.PipelineConfig) -> None:
  """Fails fast, before TFX starts, on a data folder the pipeline cannot read."""
  for folder, what in (
    (config.ratings_dir, contracts.RATINGS_FOLDER),
    (config.movies_dir, contracts.MOVIES_FOLDER),
  ):
    if not os.path.isdir(folder):
      raise DataError(
        f"{folder}: missing {what} folder (a data folder holds ratings/ and "
        "movies/, each with CSV files; see `nfrec prepare`)."
      )
    files = [name for name in os.listdir(folder) if not name.startswith(".")]
    if not files:
      raise DataError(f"{folder}: no {what} CSV file in this folder.")
    for name in files:
      path = os.path.join(folder, name)
      if os.path.getsize(path) == 0:
        raise DataError(f"{path}: line 1: empty file (expected a CSV header).")


@dataclasses.dataclass(frozen=True)
class LocalRun:
  """What a finished local run leaves for its reader (the run summary)."""

  config: config_lib.PipelineConfig  # as run: with the schema file it imported
  metadata_config: object  # ML-Metadata connection (SQLite)
  started_at: float  # epoch seconds
  wall_time_s: float


def metadata_connection_config(config: config_lib.PipelineConfig):
  """ML-Metadata of the local runs: SQLite in the output folder."""
  return tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_sqlite)


@contextlib.contextmanager
def temporary_files_removed_at_the_end():
  """Points the process's temporary files into one new folder, removed when the block ends
  (however it ends). Given any Beam flag (multi_processing, a remote runner), TFX builds a
  source package of itself (about 50 MB) in a new temporary folder for every Beam
  component it runs and never removes it (in_memory passes none: config.BEAM_RUNNERS)."""
  previous = tempfile.tempdir
  folder = tempfile.mkdtemp(prefix="nfrec-run-")
  tempfile.tempdir = folder
  try:
    yield folder
  finally:
    tempfile.tempdir = previous
    shutil.rmtree(folder, ignore_errors=True)


def run(config: config_lib.PipelineConfig) -> LocalRun:
  """Runs the pipeline to its end (or raises the failing component's error)."""
  check_input(config)
  os.makedirs(config.output_dir, exist_ok=True)
  # ImportSchemaGen's cache key is the file path: copies whose path changes with the
  # content make an edited schema re-run validation instead of being served cached.
  schemas = os.path.join(config.output_dir, "schema")
  config = dataclasses.replace(
    config,
    schema_file=schema_lib.content_addressed_copy(schema_lib.schema_for(config), schemas),
    movies_schema_file=schema_lib.content_addressed_copy(
      schema_lib.movies_schema_for(config), schemas
    ),
  )
  metadata_config = metadata_connection_config(config)
  started = time.time()
  with temporary_files_removed_at_the_end():
    tfx.orchestration.LocalDagRunner().run(pipeline_lib.create_pipeline(config, metadata_config))
  return LocalRun(config, metadata_config, started, time.time() - started)
