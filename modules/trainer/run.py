"""Trainer module: `run_fn` trains the TFRS model on Transform's output.

It reads the train split (fitting) and the split named by the Trainer's
eval_args, validation (model selection); never eval or new_users. It writes to
`fn_args.serving_model_dir` the core model (modules/serving/core_model.py),
which the serving model builder wraps with the precomputed vectors and the
index, and to `fn_args.model_run_dir` the TensorBoard logs and metrics.json
(the validation metrics of the selected epoch). With `custom_config["warm_start"]`
and a base model (the last blessed serving model), training starts from its
weights (modules/trainer/warm_start.py). When a Tuner ran (modules/tuner/), its chosen
values replace the preset's.
"""

from __future__ import annotations

import dataclasses

import absl.logging
import tensorflow_transform as tft
from tfx import v1 as tfx

from modules import cold_movies, interactions
from modules.trainer import data, export, train, warm_start
from modules.trainer.hparams import HParams
from modules.trainer.model import MovieFeatures
from modules.transform import examples
from nfrec import contracts


@dataclasses.dataclass
class TrainingData:
  """What the Trainer and the Tuner read: train, validation, the vocabularies, the catalog."""

  train: interactions.Ratings
  validation: interactions.Ratings
  user_vocabulary: list[str]
  movie_vocabulary: list[str]
  features: MovieFeatures
  cold: cold_movies.ColdMovies  # catalog movies without a rating: validation ranks them too
  tf_transform_output: tft.TFTransformOutput

  def fit_inputs(self) -> dict:
    """train.fit's data arguments."""
    return dict(
      train=self.train,
      validation=self.validation,
      num_users=len(self.user_vocabulary),
      num_movies=len(self.movie_vocabulary),
      features=self.features,
      cold=self.cold,
    )


def read_training_data(fn_args) -> TrainingData:
  """The splits fn_args names (train_files: train; eval_files: validation), the Transform's
  vocabularies and the catalog whose locations the executor put in custom_config."""
  config = fn_args.custom_config
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
  movie_vocabulary = [
    token.decode("utf-8")
    for token in tf_transform_output.vocabulary_by_name(contracts.MOVIE_VOCABULARY)
  ]
  user_vocabulary = [
    token.decode("utf-8")
    for token in tf_transform_output.vocabulary_by_name(contracts.USER_VOCABULARY)
  ]
  catalog = examples.read_catalog(
    config[contracts.CATALOG_FILES],
    tft.TFTransformOutput(config[contracts.CATALOG_TRANSFORM_OUTPUT]),
  )
  return TrainingData(
    train=data.read_split(fn_args.train_files, tf_transform_output),
    validation=data.read_split(fn_args.eval_files, tf_transform_output),
    user_vocabulary=user_vocabulary,
    movie_vocabulary=movie_vocabulary,
    features=MovieFeatures.for_vocabulary(catalog, movie_vocabulary),
    cold=cold_movies.ColdMovies.of_catalog(catalog, movie_vocabulary),
    tf_transform_output=tf_transform_output,
  )


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """TFX Trainer entry point; the hyperparameters come in `custom_config["hparams"]`, with
  the Tuner's choices (`fn_args.hyperparameters`, when a Tuner ran) over them."""
  config = fn_args.custom_config
  # First: a multi-worker strategy must exist before TensorFlow runs any op here.
  strategy = train.distribution_strategy(config["distribution_strategy"])
  hparams = HParams.from_dict(config["hparams"])
  if fn_args.hyperparameters:
    hparams = hparams.tuned(fn_args.hyperparameters["values"])
    absl.logging.info("The Tuner's choices: %s", fn_args.hyperparameters["values"])
  inputs = read_training_data(fn_args)
  warm_from = None
  if config.get("warm_start") and fn_args.base_model:
    warm_from = warm_start.WarmStart(
      warm_start.Previous.load(fn_args.base_model),
      inputs.user_vocabulary,
      inputs.movie_vocabulary,
    )
  trained = train.fit(
    **inputs.fit_inputs(),
    hparams=hparams,
    strategy=strategy,
    log_dir=fn_args.model_run_dir,
    warm_from=warm_from,
  )
  metrics = export.metrics_report(trained)
  absl.logging.info("Validation metrics of the selected epoch: %s", metrics)
  export.export_core_model(trained.model, inputs.tf_transform_output, fn_args.serving_model_dir)
  export.write_metrics(metrics, fn_args.model_run_dir)
