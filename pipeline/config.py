"""All configuration in one place: paths, Beam, the evaluation gate, model presets."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Optional

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DATA_DIR = os.path.join(PROJECT_ROOT, "data", "sample")
DEFAULT_OUTPUT_DIR = "outputs"

PIPELINE_NAME = "netflix-recommender"
MODEL_NAME = "netflix_recommender"

# Import paths of the module functions (the code is installed, locally and in the
# Kubeflow image, so no module-file wheel is built or uploaded).
PREPROCESSING_FN = "modules.transform.preprocessing.preprocessing_fn"
RUN_FN = "modules.trainer.run.run_fn"

# The source folders whose content is part of each step's cache key.
TRANSFORM_CODE = ("modules/transform",)
TRAINER_CODE = ("modules/trainer", "modules/transform")
SERVING_CODE = ("modules/serving", "components/serving_model_builder", "modules/transform")
RETRIEVAL_EVAL_CODE = ("components/retrieval_evaluator", "components/serving_model_builder")

# How the Trainer executes (not what it learns): XLA-compiled steps, several per call.
EXECUTION = dict(jit_compile=True, steps_per_execution=16)

# Model presets. `seed` is the original notebook's configuration, kept reproducible;
# `default` is the best measured one (see docs/results.md when it exists).
PRESETS = {
    "seed": dict(
        embedding_dim=32, rating_hidden_units=[256, 128], use_bias=False, l2=0.0, l2_per_epoch=0.0,
        rating_dot_product=False, retrieval_bias=False, sampling_correction=False,
        rating_weight=1.0, retrieval_weight=1.0, retrieval_loss_reduction="sum",
        optimizer="adagrad", learning_rate=0.1, batch_size=8192, epochs=3,
        early_stopping_patience=0, early_stopping_monitor="val_loss", early_stopping_min_delta=0.0,
        seed=42,
        **EXECUTION),
    "default": dict(
        embedding_dim=32, rating_hidden_units=[256, 128], use_bias=True,
        # L2 per epoch, not per step: the same strength at 100K and 1M ratings.
        l2=0.0, l2_per_epoch=0.012,
        rating_dot_product=True, retrieval_bias=True, sampling_correction=True,
        # The retrieval loss is averaged (summed, it drowns the rating loss) and then
        # weighted up: retrieval keeps improving after the rating head is at its best,
        # and the extra weight makes it learn faster in the epochs the RMSE allows.
        rating_weight=1.0, retrieval_weight=5.0, retrieval_loss_reduction="mean",
        optimizer="adam", learning_rate=0.01, batch_size=2048, epochs=20,
        # min_delta: an improvement smaller than this does not count; on millions of
        # ratings, where each epoch costs minutes, e.g. --set early_stopping_min_delta=0.001.
        early_stopping_patience=3, early_stopping_monitor="val_rmse", early_stopping_min_delta=0.0,
        seed=42,
        **EXECUTION),
}


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Everything a run needs; every runner builds the pipeline from one of these."""
  data_dir: str = SAMPLE_DATA_DIR     # holds ratings/ and movies/ (one CSV folder each)
  output_dir: str = DEFAULT_OUTPUT_DIR
  pipeline_name: str = PIPELINE_NAME
  model_name: str = MODEL_NAME
  preset: str = "default"
  hparam_overrides: tuple = ()        # (name, value) pairs applied over the preset
  schema_file: str = ""               # curated schema; "" = pipeline/schema.py's choice
  eval_split_percent: int = 20        # deterministic hash split, as in the seed (80/20)
  top_k: int = 10                     # recommendations per user in the serving model
  # "brute_force": exact, stock TF ops (TF Serving as is). "scann": approximate, for
  # large catalogs; the server then needs the ScaNN ops (not in stock TF Serving).
  index_type: str = "brute_force"
  scann_candidates: int = 200         # ScaNN neighbours fetched before rated movies are dropped
  rating_min: float = 1.0
  rating_max: float = 5.0
  # The gate: RMSE must be below this bound and not worse than the last blessed model.
  rmse_upper_bound: float = 1.1
  rmse_change_tolerance: float = 1e-10
  # The retrieval gate (RetrievalEvaluator): this filtered metric must reach the
  # most-popular baseline's (times the ratio), and not fall more than the
  # tolerance below the last blessed model's (training noise is about 0.005).
  retrieval_gate_metric: str = "recall_at_100"
  retrieval_min_ratio_to_popular: float = 1.0
  retrieval_change_tolerance: float = 0.01
  # Beam: "in_memory" or "multi_processing" (local DirectRunner), "dataflow", "flink",
  # "spark"; the runner's own flags go in beam_extra_args (see beam_pipeline_args).
  beam_runner: str = "in_memory"
  beam_extra_args: tuple = ()
  # tf.distribute strategy of the Trainer: "default", "mirrored", "multi_worker_mirrored".
  distribution_strategy: str = "default"
  enable_cache: bool = True
  metadata_path: Optional[str] = None  # default: <output_dir>/metadata.sqlite

  @property
  def beam_args(self) -> list[str]:
    return beam_pipeline_args(self.beam_runner, self.beam_extra_args)

  @property
  def ratings_dir(self) -> str:
    return os.path.join(self.data_dir, "ratings")

  @property
  def movies_dir(self) -> str:
    return os.path.join(self.data_dir, "movies")

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.output_dir, "pipeline")

  @property
  def metadata_sqlite(self) -> str:
    return self.metadata_path or os.path.join(self.output_dir, "metadata.sqlite")

  @property
  def serving_model_dir(self) -> str:
    """TF Serving's --model_base_path: versions appear below it."""
    return os.path.join(self.output_dir, "serving_model", self.model_name)

  @property
  def hparams(self) -> dict:
    if self.preset not in PRESETS:
      raise ValueError(f"Unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}.")
    hparams = dict(PRESETS[self.preset], preset=self.preset)
    for name, value in self.hparam_overrides:
      if name not in hparams:
        raise ValueError(f"Unknown hyperparameter {name!r}; known: {sorted(hparams)}.")
      hparams[name] = value
    return hparams


# The flags each Beam runner needs (beyond these, pass its own in beam_extra_args):
#   dataflow: --project, --region, --temp_location=gs://..., optionally
#             --max_num_workers, --machine_type, --experiments=use_runner_v2
#   flink:    --flink_master=HOST:PORT, --environment_type=EXTERNAL|DOCKER,
#             --environment_config=<worker pool address or image>
#   spark:    --spark_master_url=spark://HOST:7077 (portable job server),
#             --environment_type, --environment_config as for Flink
BEAM_RUNNERS = {
    "in_memory": ["--runner=DirectRunner", "--direct_running_mode=in_memory",
                  "--direct_num_workers=1"],
    "multi_processing": ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                         "--direct_num_workers=0"],   # 0: one worker per core
    "dataflow": ["--runner=DataflowRunner"],
    "flink": ["--runner=FlinkRunner"],
    "spark": ["--runner=SparkRunner"],
}


def beam_pipeline_args(runner: str, extra_args=()) -> list[str]:
  if runner not in BEAM_RUNNERS:
    raise ValueError(f"Unknown Beam runner {runner!r}; choose one of {sorted(BEAM_RUNNERS)}.")
  return BEAM_RUNNERS[runner] + list(extra_args)


def code_fingerprint(folders) -> str:
  """Hash of the .py files below `folders` (relative to the project root).

  Passed to components as a parameter so that editing a module re-runs its
  step (and only its step) instead of being served stale from the cache.
  """
  digest = hashlib.sha256()
  for folder in folders:
    root = os.path.join(PROJECT_ROOT, folder)
    for dirpath, dirnames, filenames in os.walk(root):
      dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
      for name in sorted(filenames):
        if name.endswith(".py"):
          path = os.path.join(dirpath, name)
          digest.update(os.path.relpath(path, PROJECT_ROOT).encode())
          with open(path, "rb") as f:
            digest.update(f.read())
  return digest.hexdigest()[:16]
