"""Trainer module: `run_fn` trains the TFRS model on Transform's output.

It writes to `fn_args.serving_model_dir` the core model (modules/serving/
core_model.py), which the serving model builder wraps with the retrieval index
and the catalog, and to `fn_args.model_run_dir` the TensorBoard logs and
metrics.json (the model's metrics on the split it was evaluated on).
"""

from __future__ import annotations

import absl.logging
import tensorflow_transform as tft
from tfx import v1 as tfx

from modules.trainer import data, export, train
from modules.trainer.hparams import HParams
from nfrec import contracts


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """TFX Trainer entry point; the hyperparameters come in `custom_config["hparams"]`."""
  hparams = HParams.from_dict(fn_args.custom_config["hparams"])
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  model, metrics = train.fit(
    train_columns=data.read_split(fn_args.train_files, tf_transform_output),
    eval_columns=data.read_split(fn_args.eval_files, tf_transform_output),
    num_users=tf_transform_output.vocabulary_size_by_name(contracts.USER_VOCABULARY),
    num_movies=tf_transform_output.vocabulary_size_by_name(contracts.MOVIE_VOCABULARY),
    hparams=hparams,
    strategy_name=fn_args.custom_config["distribution_strategy"],
    log_dir=fn_args.model_run_dir,
  )
  absl.logging.info("Eval metrics: %s", metrics)
  export.export_core_model(model, tf_transform_output, fn_args.serving_model_dir)
  export.write_metrics(metrics, fn_args.model_run_dir)
