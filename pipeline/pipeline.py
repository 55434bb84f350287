"""`create_pipeline`: the one pipeline definition every runner uses."""

from __future__ import annotations

import tensorflow_model_analysis as tfma
from tensorflow_metadata.proto.v0 import path_pb2, schema_pb2
from tfx import v1 as tfx
from tfx.proto import distribution_validator_pb2

from components.atomic_pusher.component import AtomicPusher
from components.batch_recommender.component import BatchRecommender
from components.data_gate.component import DataGate
from components.drift_validator.component import DriftValidator, LatestIfAnyStrategy
from components.ratings_example_gen.component import RatingsExampleGen
from components.recommender_trainer.component import RecommenderTrainer
from components.recommender_trainer.tuner import RecommenderTuner
from components.retrieval_evaluator.component import RetrievalEvaluator
from components.serving_model_builder.component import ServingModelBuilder
from nfrec import contracts
from pipeline import config as config_lib
from pipeline import schema as schema_lib
from pipeline.fingerprint import code_fingerprint

# Component ids: the run summary finds their outputs in ML-Metadata by these.
RATINGS_GEN = "RatingsExampleGen"
MOVIES_GEN = "MoviesExampleGen"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "ImportSchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
MOVIES_STATISTICS_GEN = "MoviesStatisticsGen"
MOVIES_SCHEMA_GEN = "MoviesSchemaGen"
MOVIES_EXAMPLE_VALIDATOR = "MoviesExampleValidator"
DATA_GATE = "DataGate"
TRANSFORM = "Transform"
CATALOG_TRANSFORM = "CatalogTransform"
TUNER = "Tuner"
TRAINER = "Trainer"
SERVING_MODEL_BUILDER = "ServingModelBuilder"
BASELINE_RESOLVER = "latest_blessed_model_resolver"
EVALUATOR = "Evaluator"
RETRIEVAL_EVALUATOR = "RetrievalEvaluator"
PUSHER = "Pusher"
BATCH_RECOMMENDER = "BatchRecommender"
DRIFT_BASELINE_RESOLVER = "approved_statistics_resolver"
DRIFT_VALIDATOR = "DistributionValidator"

CATALOG_SPLIT = "catalog"  # the movies ExampleGen's one split


def eval_config(config: config_lib.PipelineConfig) -> tfma.EvalConfig:
  """RMSE and MAE of the rating signature; RMSE gates the push."""
  rmse_threshold = tfma.MetricThreshold(
    value_threshold=tfma.GenericValueThreshold(upper_bound={"value": config.rmse_upper_bound}),
    change_threshold=tfma.GenericChangeThreshold(
      direction=tfma.MetricDirection.LOWER_IS_BETTER,
      absolute={"value": config.rmse_change_tolerance},
    ),
  )
  return tfma.EvalConfig(
    model_specs=[
      tfma.ModelSpec(
        signature_name=contracts.SIGNATURE_EXAMPLES,
        label_key=contracts.RATING,
        prediction_key=contracts.OUTPUT_RATING,
      )
    ],
    slicing_specs=[tfma.SlicingSpec()],
    metrics_specs=[
      tfma.MetricsSpec(
        metrics=[
          tfma.MetricConfig(class_name="RootMeanSquaredError", threshold=rmse_threshold),
          tfma.MetricConfig(class_name="MeanAbsoluteError"),
          tfma.MetricConfig(class_name="ExampleCount"),
        ]
      )
    ],
  )


def drift_config(config: config_lib.PipelineConfig):
  """DistributionValidator's config: a JS-divergence bound per feature (the config's)."""
  return distribution_validator_pb2.DistributionValidatorConfig(
    default_slice_config=distribution_validator_pb2.DistributionValidatorConfig.DatasetConfig(
      feature=[
        distribution_validator_pb2.FeatureComparator(
          path=path_pb2.Path(step=[name]),
          distribution_comparator=schema_pb2.FeatureComparator(
            jensen_shannon_divergence=schema_pb2.JensenShannonDivergence(threshold=threshold)
          ),
        )
        for name, threshold in config.drift_thresholds
      ]
    )
  )


def create_components(config: config_lib.PipelineConfig) -> list:
  # The ratings, split into train, validation, eval and new_users (docs/metrics.md).
  ratings_gen = RatingsExampleGen(
    input_base=config.ratings_dir,
    split=config.split,
    spans=config.has_spans,
    span_window=config.span_window,
  ).with_id(RATINGS_GEN)
  movies_gen = tfx.components.CsvExampleGen(
    input_base=config.movies_dir,
    output_config=tfx.proto.Output(
      split_config=tfx.proto.SplitConfig(
        splits=[tfx.proto.SplitConfig.Split(name=CATALOG_SPLIT, hash_buckets=1)]
      )
    ),
  ).with_id(MOVIES_GEN)

  # TFDV: statistics of both, checked against the curated schemas (pipeline/schema.py),
  # not against schemas inferred from each new batch of data.
  statistics_gen = tfx.components.StatisticsGen(examples=ratings_gen.outputs["examples"]).with_id(
    STATISTICS_GEN
  )
  schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_lib.schema_for(config)).with_id(
    SCHEMA_GEN
  )
  example_validator = tfx.components.ExampleValidator(
    statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
  ).with_id(EXAMPLE_VALIDATOR)
  movies_statistics_gen = tfx.components.StatisticsGen(
    examples=movies_gen.outputs["examples"]
  ).with_id(MOVIES_STATISTICS_GEN)
  movies_schema_gen = tfx.components.ImportSchemaGen(
    schema_file=schema_lib.movies_schema_for(config)
  ).with_id(MOVIES_SCHEMA_GEN)
  movies_validator = tfx.components.ExampleValidator(
    statistics=movies_statistics_gen.outputs["statistics"],
    schema=movies_schema_gen.outputs["schema"],
  ).with_id(MOVIES_EXAMPLE_VALIDATOR)
  # Drift: this data against the last data that passed the gate (a bad span never
  # becomes the baseline). With no baseline yet, DistributionValidator passes.
  approved_baseline = tfx.dsl.Resolver(
    strategy_class=(
      tfx.dsl.experimental.LatestArtifactStrategy
      if config.portable_resolvers
      else LatestIfAnyStrategy
    ),
    statistics=tfx.dsl.Channel(
      type=tfx.types.standard_artifacts.ExampleStatistics,
      producer_component_id=DATA_GATE,
      output_key="approved_statistics",
    ),
  ).with_id(DRIFT_BASELINE_RESOLVER)
  drift_validator = DriftValidator(
    statistics=statistics_gen.outputs["statistics"],
    baseline_statistics=approved_baseline.outputs["statistics"],
    config=drift_config(config),
    # With spans, the newest span against the last approved one; else the train splits.
    include_split_pairs=[
      (contracts.NEWEST_SPAN, contracts.NEWEST_SPAN)
      if config.has_spans
      else (contracts.TRAIN, contracts.TRAIN)
    ],
  ).with_id(DRIFT_VALIDATOR)
  data_gate = DataGate(
    anomalies=example_validator.outputs["anomalies"],
    movies_anomalies=movies_validator.outputs["anomalies"],
    statistics=statistics_gen.outputs["statistics"],
    drift_anomalies=drift_validator.outputs["anomalies"],
    code_version=code_fingerprint("components.data_gate.component"),
  ).with_id(DATA_GATE)

  # TFT: the id vocabularies from everything known before eval (train, validation).
  transform = tfx.components.Transform(
    examples=ratings_gen.outputs["examples"],
    schema=schema_gen.outputs["schema"],
    preprocessing_fn=config_lib.PREPROCESSING_FN,
    # Only what training and the index read is transformed: eval and new_users are scored
    # through the serving model from the raw examples, so no transformed eval row exists.
    splits_config=tfx.proto.SplitsConfig(
      analyze=[contracts.TRAIN, contracts.VALIDATION],
      transform=[contracts.TRAIN, contracts.VALIDATION],
    ),
    disable_statistics=True,  # StatisticsGen already describes the raw data.
    custom_config={"code_version": code_fingerprint(config_lib.PREPROCESSING_FN)},
  ).with_id(TRANSFORM)
  # TFT: the title-word vocabulary and year buckets of the movie tower.
  catalog_transform = tfx.components.Transform(
    examples=movies_gen.outputs["examples"],
    schema=movies_schema_gen.outputs["schema"],
    preprocessing_fn=config_lib.CATALOG_PREPROCESSING_FN,
    splits_config=tfx.proto.SplitsConfig(analyze=[CATALOG_SPLIT], transform=[CATALOG_SPLIT]),
    disable_statistics=True,
    custom_config={"code_version": code_fingerprint(config_lib.CATALOG_PREPROCESSING_FN)},
  ).with_id(CATALOG_TRANSFORM)
  for step in (transform, catalog_transform):
    step.add_upstream_node(data_gate)  # no Transform, hence no model, on anomalous data

  # The baseline for the change thresholds: the last model that passed the whole
  # gate (blessed by RetrievalEvaluator, not only by TFMA's rating gate).
  baseline_model = tfx.dsl.Resolver(
    strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
    model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
    model_blessing=tfx.dsl.Channel(
      type=tfx.types.standard_artifacts.ModelBlessing,
      producer_component_id=RETRIEVAL_EVALUATOR,
      output_key="blessing",
    ),
  ).with_id(BASELINE_RESOLVER)

  # Fit on train, select on validation: neither the Tuner nor the Trainer reads eval or
  # new_users. (Steps are set by epochs in the hyperparameters.)
  training_inputs = {
    "examples": transform.outputs["transformed_examples"],
    "transform_graph": transform.outputs["transform_graph"],
    "catalog": catalog_transform.outputs["transformed_examples"],
    "catalog_transform_graph": catalog_transform.outputs["transform_graph"],
    "train_args": tfx.proto.TrainArgs(splits=[contracts.TRAIN]),
    "eval_args": tfx.proto.EvalArgs(splits=[contracts.VALIDATION]),
  }
  # KerasTuner: with a tuning space, a grid over it, each trial scored on validation.
  tuner = None
  if config.tuning_space:
    tuner = RecommenderTuner(
      tuner_fn=config_lib.TUNER_FN,
      **training_inputs,
      custom_config={
        "hparams": config.hparams.to_dict(),
        "tuning_space": [[name, list(values)] for name, values in config.tuning_space],
        "code_version": code_fingerprint(config_lib.TUNER_FN),
      },
    ).with_id(TUNER)

  trainer = RecommenderTrainer(
    run_fn=config_lib.RUN_FN,
    **training_inputs,
    # Warm start: from the last blessed serving model (its weights, carried by id).
    base_model=baseline_model.outputs["model"] if config.warm_start else None,
    hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
    custom_config={
      "hparams": config.hparams.to_dict(),
      "preset": config.preset,
      "distribution_strategy": config.distribution_strategy,
      "warm_start": config.warm_start,
      "code_version": code_fingerprint(config_lib.RUN_FN),
    },
  ).with_id(TRAINER)

  builder = ServingModelBuilder(
    model=trainer.outputs["model"],
    transform_graph=transform.outputs["transform_graph"],
    transformed_examples=transform.outputs["transformed_examples"],
    catalog=catalog_transform.outputs["transformed_examples"],
    catalog_transform_graph=catalog_transform.outputs["transform_graph"],
    top_k=config.top_k,
    rating_min=config.rating_min,
    rating_max=config.rating_max,
    index_type=config.index_type,
    scann_candidates=config.scann_candidates,
    model_name=config.model_name,
    code_version=code_fingerprint("components.serving_model_builder.component"),
  ).with_id(SERVING_MODEL_BUILDER)

  evaluator = tfx.components.Evaluator(
    examples=ratings_gen.outputs["examples"],
    model=builder.outputs["serving_model"],
    baseline_model=baseline_model.outputs["model"],
    example_splits=["eval"],
    eval_config=eval_config(config),
  ).with_id(EVALUATOR)

  retrieval_evaluator = RetrievalEvaluator(
    serving_model=builder.outputs["serving_model"],
    examples=ratings_gen.outputs["examples"],
    schema=schema_gen.outputs["schema"],
    rating_blessing=evaluator.outputs["blessing"],
    baseline_model=baseline_model.outputs["model"],
    gate_metric=config.retrieval_gate_metric,
    min_ratio_to_popular=config.retrieval_min_ratio_to_popular,
    change_tolerance=config.retrieval_change_tolerance,
    code_version=code_fingerprint("components.retrieval_evaluator.component"),
  ).with_id(RETRIEVAL_EVALUATOR)

  pusher = AtomicPusher(
    model=builder.outputs["serving_model"],
    model_blessing=retrieval_evaluator.outputs["blessing"],
    push_destination=tfx.proto.PushDestination(
      filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_model_dir)
    ),
  ).with_id(PUSHER)

  # Every known user's top K, as a table, for each blessed model.
  batch_recommender = BatchRecommender(
    serving_model=builder.outputs["serving_model"],
    blessing=retrieval_evaluator.outputs["blessing"],
    code_version=code_fingerprint("components.batch_recommender.component"),
  ).with_id(BATCH_RECOMMENDER)

  return [
    ratings_gen,
    movies_gen,
    statistics_gen,
    schema_gen,
    example_validator,
    movies_statistics_gen,
    movies_schema_gen,
    movies_validator,
    approved_baseline,
    drift_validator,
    data_gate,
    transform,
    catalog_transform,
    *([tuner] if tuner else []),
    trainer,
    builder,
    baseline_model,
    evaluator,
    retrieval_evaluator,
    pusher,
    batch_recommender,
  ]


def create_pipeline(
  config: config_lib.PipelineConfig, metadata_connection_config=None
) -> tfx.dsl.Pipeline:
  return tfx.dsl.Pipeline(
    pipeline_name=config.pipeline_name,
    pipeline_root=config.pipeline_root,
    components=create_components(config),
    enable_cache=config.enable_cache,
    metadata_connection_config=metadata_connection_config,
    beam_pipeline_args=config.beam_args,
  )
