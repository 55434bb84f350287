"""All configuration in one place: paths, Beam, the evaluation gate, model presets.

Every runner (local, Kubeflow) and the CLI build the pipeline from a
`PipelineConfig`; its field defaults and the presets are the only defaults of
the project (components take every setting as a required parameter, and the
CLI's defaults are read from here).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os

from components.ratings_example_gen import splits
from modules.trainer.hparams import HParams
from nfrec import contracts

DEFAULT_OUTPUT_DIR = "outputs"
PIPELINE_NAME = "netflix-recommender"
MODEL_NAME = contracts.MODEL_NAME

# Kubeflow: the pipeline image (Dockerfile) and the Beam runner of a cluster.
KUBEFLOW_IMAGE = "nfrec-pipeline:latest"
KUBEFLOW_BEAM_RUNNER = "dataflow"

# Import paths of the module functions (the code is installed, locally and in the
# Kubeflow image, so no module-file wheel is built or uploaded).
PREPROCESSING_FN = "modules.transform.preprocessing.preprocessing_fn"
CATALOG_PREPROCESSING_FN = "modules.transform.catalog.catalog_preprocessing_fn"
RUN_FN = "modules.trainer.run.run_fn"
TUNER_FN = "modules.tuner.tuner.tuner_fn"

# How the Trainer executes (not what it learns): several steps per call; XLA for the
# ids-only seed model (1.7x the examples/s), not for the history-reading default: its
# steps run 1.4x faster compiled, but each of the Trainer's four traces then compiles for
# about 2 minutes (a net loss on the sample), and with sampled negatives (catalogs over
# 4,096 movies) the compiled step asks for 75 GB (docs/results.md, "XLA for the default").
STEPS_PER_EXECUTION = 16

# Model presets. `seed` is the original notebook's configuration, kept reproducible;
# `default` is the best measured one (docs/results.md).
PRESETS = {
  # The original notebook: ids only, in-batch softmax summed, weights 1/1, Adagrad.
  "seed": HParams(
    embedding_dim=32,
    history_window=0,
    recent_window=0,
    history_chunk=16,  # unused: no history
    query_history_window=0,
    user_hidden_units=(),
    history_pooling_power=1.0,
    content_features=False,
    rating_hidden_units=(256, 128),
    rating_dropout=0.0,
    use_bias=False,
    rating_dot_product=False,
    rating_factors=0,
    rating_factor_l2=0.0,
    retrieval_bias=False,
    l2=0.0,
    l2_per_epoch=0.0,
    bias_l2=0.0,
    sparse_user_l2=False,
    user_id_dropout=0.0,
    movie_id_dropout=0.0,
    rating_weight=1.0,
    retrieval_weight=1.0,
    retrieval_loss_reduction="sum",
    retrieval_candidates="in_batch",
    retrieval_negatives=1,
    negative_sampling_power=0.0,
    retrieval_temperature=1.0,
    sampling_correction=False,
    remove_accidental_hits=False,
    optimizer="adagrad",
    learning_rate=0.1,
    learning_rate_decay=1.0,
    learning_rate_decay_examples=0,
    learning_rate_floor=0.0,
    batch_size=8192,
    epochs=3,
    early_stopping_patience=0,
    early_stopping_monitor="val_loss",
    early_stopping_min_delta=0.0,
    refit_on_validation=False,
    rating_stage_epochs=0,
    rating_stage_learning_rate=0.001,
    rating_towers=False,
    seed=42,
    jit_compile=True,
    steps_per_execution=STEPS_PER_EXECUTION,
  ),
  # Measured best (docs/results.md): the user described by their last 256 ratings (and,
  # apart, the last 10), movies by title and year too, a softmax over the whole catalog
  # (estimated from 4,096 sampled movies when the catalog is larger, so a step's cost stops
  # growing with it) with the user's own rated movies taken out of the negatives,
  # selection on validation Recall@10, a rating stage selected on validation RMSE, then a
  # refit of both on train + validation.
  "default": HParams(
    embedding_dim=128,
    history_window=256,
    recent_window=10,
    history_chunk=16,
    # Queries pool up to a user's last 4,096 ratings, not only the 256 of training: the mean
    # over a whole history is steadier (ML-1M eval Recall@10 +0.008, NDCG@10 +0.025;
    # docs/results.md, 2026-12-04 evening).
    query_history_window=4096,
    user_hidden_units=(),
    history_pooling_power=1.0,
    content_features=True,
    rating_hidden_units=(128,),
    rating_dropout=0.3,
    use_bias=True,
    rating_dot_product=False,
    rating_factors=0,
    rating_factor_l2=0.0,
    retrieval_bias=True,
    l2=0.0,
    # L2 on every embedding table, 0.012 per epoch whatever the data's size: later, higher
    # validation peaks on ML-1M and the Netflix subset (docs/results.md, 2026-12-04).
    l2_per_epoch=0.012,
    bias_l2=0.1,
    sparse_user_l2=False,
    user_id_dropout=0.2,
    movie_id_dropout=0.0,
    rating_weight=1.0,
    retrieval_weight=1.0,
    retrieval_loss_reduction="mean",
    retrieval_candidates="sampled",
    retrieval_negatives=4096,
    negative_sampling_power=0.5,
    retrieval_temperature=1.0,
    sampling_correction=False,
    remove_accidental_hits=False,
    optimizer="adam",
    learning_rate=0.003,
    # The rate falls by 0.7 every 716,800 training examples (one ML-1M epoch), the same
    # schedule whatever the data's size, down to a tenth of itself; with a minimum gain
    # of 0.001 validation Recall@10 per epoch: higher validation peaks on every data set
    # measured, in as many or fewer epochs (docs/results.md, 2026-12-05).
    learning_rate_decay=0.7,
    learning_rate_decay_examples=716_800,
    learning_rate_floor=0.0003,
    batch_size=512,
    epochs=40,
    # Patience 2 selected the same epoch as 4 on 11 of 12 recorded runs, two epochs
    # sooner each (`nfrec bench stopping`, docs/performance.md).
    early_stopping_patience=2,
    early_stopping_monitor="val_recall_at_10",
    early_stopping_min_delta=0.001,
    refit_on_validation=True,
    # The rating task still improves after retrieval has peaked: up to 3 epochs of the
    # rating head alone, selected on validation RMSE (docs/results.md, "The rating stage").
    # No measured run on real data kept more than 2 (Netflix subset 1, ML-100K 0-2, ML-1M 0
    # of 10, validation RMSE never below the selected model's), and a stage epoch costs as
    # much as a selection epoch, twice with the refit ("A cap of 3 stage epochs").
    rating_stage_epochs=3,
    rating_stage_learning_rate=0.001,
    # The stage trains a copy of the selected towers for the rating head: Netflix-subset
    # RMSE 0.9637 against 0.9763 (mean of 3 seeds), retrieval unchanged; ML-100K within
    # the seeds' spread, ML-1M's stage kept no epoch (docs/results.md, "Rating towers").
    rating_towers=True,
    seed=42,
    jit_compile=False,
    steps_per_execution=STEPS_PER_EXECUTION,
  ),
}

# The flags each Beam runner needs (beyond these, pass its own in beam_extra_args):
#   dataflow: --project, --region, --temp_location=gs://..., optionally
#             --max_num_workers, --machine_type, --experiments=use_runner_v2
#   flink:    --flink_master=HOST:PORT, --environment_type=EXTERNAL|DOCKER,
#             --environment_config=<worker pool address or image>
#   spark:    --spark_master_url=spark://HOST:7077 (portable job server),
#             --environment_type, --environment_config as for Flink
BEAM_RUNNERS = {
  # No flags: Beam's defaults are the DirectRunner, in_memory, one worker. Any flag at all
  # makes each TFX Beam executor copy TFX into an sdist for remote workers first (TFX's
  # dependency_utils), which a local run never uses: about 2.5 s a component, 18 s of the
  # sample's make run.
  "in_memory": [],
  "multi_processing": [
    "--runner=DirectRunner",
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=0",  # 0: one worker per core
  ],
  "dataflow": ["--runner=DataflowRunner"],
  "flink": ["--runner=FlinkRunner"],
  "spark": ["--runner=SparkRunner"],
}
LOCAL_BEAM_RUNNERS = ("in_memory", "multi_processing")


def beam_pipeline_args(runner: str, extra_args=()) -> list[str]:
  if runner not in BEAM_RUNNERS:
    raise ValueError(f"Unknown Beam runner {runner!r}; choose one of {sorted(BEAM_RUNNERS)}.")
  return BEAM_RUNNERS[runner] + list(extra_args)


def serving_model_dir(output_dir: str, model_name: str = MODEL_NAME) -> str:
  """TF Serving's --model_base_path under an output folder: versions appear below it."""
  return os.path.join(output_dir, "serving_model", model_name)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Everything a run needs; every runner builds the pipeline from one of these."""

  data_dir: str  # holds ratings/ and movies/ (one CSV folder each)
  output_dir: str = DEFAULT_OUTPUT_DIR
  pipeline_name: str = PIPELINE_NAME
  model_name: str = MODEL_NAME
  preset: str = "default"
  hparam_overrides: tuple = ()  # (name, value) pairs applied over the preset
  # (name, (value, ...)) pairs: a Tuner tries every combination on the validation split and
  # the Trainer trains with the best (modules/tuner/tuner.py). Empty: no Tuner, the preset.
  tuning_space: tuple = ()
  schema_file: str = ""  # curated ratings schema; "" = pipeline/schema.py's choice
  movies_schema_file: str = ""  # curated catalog schema; "" = the package's
  # The splits (docs/metrics.md): "user_time" (each user's latest ratings are eval, the
  # ones before them validation), "global_time" (a time cutoff), "random", or "auto"
  # (user_time when the ratings have a Timestamp column, else random).
  split_protocol: str = "auto"
  eval_share: float = 0.1  # of each user's ratings (user_time), else of all ratings
  validation_share: float = 0.1
  new_user_share: float = 0.1  # users held out of training entirely (the new-user slice)
  split_seed: int = 42
  top_k: int = 10  # recommendations per user in the serving model
  # "brute_force": exact, stock TF ops (TF Serving as is). "scann": approximate, for
  # large catalogs; the server then needs the ScaNN ops (not in stock TF Serving).
  index_type: str = "brute_force"
  scann_candidates: int = 200  # ScaNN neighbours fetched before rated movies are dropped
  # The rating scale: predictions are clipped to it (`nfrec prepare` records it in
  # the data folder's dataset.json; see for_data_dir).
  rating_min: float = 1.0
  rating_max: float = 5.0
  # The gate: RMSE must be below this bound and not worse than the last blessed model.
  rmse_upper_bound: float = 1.1
  rmse_change_tolerance: float = 1e-10
  # The retrieval gate (RetrievalEvaluator): this filtered metric must reach the
  # most-popular baseline's (times the ratio), and not fall more than the
  # tolerance below the last blessed model's (training noise is about 0.005).
  # Recall@10: the list users see, and what the Trainer selects epochs on. (Recall@100
  # is saturated on a catalog of fewer than 100 rated movies, e.g. the Netflix subset.)
  retrieval_gate_metric: str = contracts.recall_at(10)
  retrieval_min_ratio_to_popular: float = 1.0
  retrieval_change_tolerance: float = 0.01
  # Beam: "in_memory" or "multi_processing" (local DirectRunner), "dataflow", "flink",
  # "spark"; the runner's own flags go in beam_extra_args (see beam_pipeline_args).
  beam_runner: str = "in_memory"
  beam_extra_args: tuple = ()
  # tf.distribute strategy of the Trainer: "default", "mirrored", "multi_worker_mirrored".
  distribution_strategy: str = "default"
  # Start the Trainer from the last blessed model (modules/trainer/warm_start.py). Off by
  # default: the base model is a Trainer input, so an unchanged rerun would not be cached.
  warm_start: bool = False
  # With ratings/span-N/ folders (nfrec prepare --span-by, nfrec add-span): train on the
  # newest span and the span_window - 1 before it.
  span_window: int = 1
  spans: bool = False  # force the span layout (local folders are detected)
  # Kubeflow V2's compiler accepts only LatestArtifactStrategy and LatestBlessedModelStrategy
  # resolvers; the local drift baseline resolver is neither (it tolerates "no baseline
  # yet"). The Kubeflow runner sets this (see the README on what that changes).
  portable_resolvers: bool = False
  # Drift (TFDV's DistributionValidator): the train split's distribution of each of
  # these features against the last data that passed the gate, as the Jensen-Shannon
  # divergence of their histograms; above the threshold the run stops before Transform.
  drift_thresholds: tuple = (("Rating", 0.1), ("User_ID", 0.5), ("Movie_ID", 0.3))
  enable_cache: bool = True
  metadata_path: str = ""  # "": <output_dir>/metadata.sqlite

  @classmethod
  def for_data_dir(cls, data_dir: str, **settings) -> PipelineConfig:
    """A config for a data folder, with the rating scale `nfrec prepare` recorded there."""
    dataset_file = os.path.join(data_dir, contracts.DATASET_FILE)
    if os.path.exists(dataset_file):
      with open(dataset_file) as f:
        scale = json.load(f)
      settings = {"rating_min": scale["rating_min"], "rating_max": scale["rating_max"], **settings}
    return cls(data_dir=data_dir, **settings)

  def validate(self) -> None:
    """Fails now, with the setting's name, on what would otherwise fail inside a component."""
    self.hparams  # noqa: B018  (builds and validates the preset with its overrides)
    self.beam_args  # noqa: B018
    self.split  # noqa: B018
    for name, values in self.tuning_space:
      if not isinstance(values, (list, tuple)) or not values:
        raise ValueError(f"Tuning {name!r} needs a list of values to try, got {values!r}.")
      for value in values:
        self.hparams.replace(**{name: value})  # fails on an unknown knob or a bad value
    for name, value, choices in (
      ("index_type", self.index_type, contracts.INDEX_TYPES),
      ("distribution_strategy", self.distribution_strategy, contracts.DISTRIBUTION_STRATEGIES),
      ("retrieval_gate_metric", self.retrieval_gate_metric, contracts.RETRIEVAL_METRICS),
    ):
      if value not in choices:
        raise ValueError(f"Unknown {name} {value!r}; choose one of {sorted(choices)}.")

  @property
  def split(self) -> splits.SplitConfig:
    return splits.SplitConfig(
      protocol=self.split_protocol,
      eval_share=self.eval_share,
      validation_share=self.validation_share,
      new_user_share=self.new_user_share,
      seed=self.split_seed,
    )

  @property
  def beam_args(self) -> list[str]:
    return beam_pipeline_args(self.beam_runner, self.beam_extra_args)

  @property
  def ratings_dir(self) -> str:
    return os.path.join(self.data_dir, contracts.RATINGS_FOLDER)

  @property
  def has_spans(self) -> bool:
    """Whether the ratings folder holds span-N/ folders (read newest first)."""
    if self.spans or "://" in self.ratings_dir:  # a bucket is not listed at compile time
      return self.spans
    return bool(glob.glob(os.path.join(self.ratings_dir, "span-*")))

  @property
  def movies_dir(self) -> str:
    return os.path.join(self.data_dir, contracts.MOVIES_FOLDER)

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.output_dir, "pipeline")

  @property
  def metadata_sqlite(self) -> str:
    return self.metadata_path or os.path.join(self.output_dir, "metadata.sqlite")

  @property
  def serving_model_dir(self) -> str:
    return serving_model_dir(self.output_dir, self.model_name)

  @property
  def hparams(self) -> HParams:
    """The preset with the overrides applied; fails on an unknown preset or knob."""
    if self.preset not in PRESETS:
      raise ValueError(f"Unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[self.preset].replace(**dict(self.hparam_overrides))
