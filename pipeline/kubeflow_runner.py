"""Compiles `create_pipeline` for Kubeflow Pipelines (KFP v2 spec, also Vertex AI Pipelines).

The module code is referenced by import path and installed in the pipeline
image (see Dockerfile), so compiling needs no cloud access: nothing is built
or uploaded to the pipeline root. Every path comes from the config.

  nfrec compile-kubeflow --output pipeline.json \
      --data gs://BUCKET/netflix --pipeline-output gs://BUCKET/nfrec \
      --image REGISTRY/nfrec-pipeline:TAG --beam-runner dataflow \
      --beam-arg=--project=PROJECT --beam-arg=--region=REGION \
      --beam-arg=--temp_location=gs://BUCKET/tmp
"""

from __future__ import annotations

import dataclasses
import os

from tfx import v1 as tfx

from pipeline import config as config_lib
from pipeline import pipeline as pipeline_lib

# The curated schemas as the image holds them: the Dockerfile copies pipeline/ to
# /pipeline/pipeline (WORKDIR /pipeline); tests/test_packaging.py checks it.
IMAGE_SCHEMA_FILE = "/pipeline/pipeline/schema/ratings_schema.pbtxt"
IMAGE_MOVIES_SCHEMA_FILE = "/pipeline/pipeline/schema/movies_schema.pbtxt"


def compile_pipeline(config: config_lib.PipelineConfig, image: str, output_file: str) -> dict:
  """Writes the KFP v2 pipeline spec (JSON) and returns it as a dict.

  Without a `schema_file` in the config, the components read the image's own copy
  of the default schema (a path on the laptop means nothing in the cluster).
  """
  config = dataclasses.replace(
    config,
    schema_file=config.schema_file or IMAGE_SCHEMA_FILE,
    movies_schema_file=config.movies_schema_file or IMAGE_MOVIES_SCHEMA_FILE,
    portable_resolvers=True,
  )
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
    config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
    output_filename=os.path.basename(output_file),
    output_dir=os.path.dirname(os.path.abspath(output_file)),
  )
  # No metadata connection: on Kubeflow the cluster's ML-Metadata is used.
  return runner.run(pipeline_lib.create_pipeline(config), write_out=True)
