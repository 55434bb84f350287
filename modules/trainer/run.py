"""Trainer module: `run_fn` trains the TFRS model on Transform's output.

It writes to `fn_args.serving_model_dir` a "core" SavedModel: the towers and
the rating head as TF functions on vocabulary indices, the Transform
vocabularies as lookup tables, and a `serving_default` signature on
serialized tf.Examples (raw ratings rows -> predicted rating). The serving
model builder (components/serving_model_builder) wraps it with the retrieval
index and the catalog. Metrics on the eval split go to
`fn_args.model_run_dir/metrics.json`, TensorBoard logs beside them.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TFRS needs Keras 2.

import absl.logging
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from modules.trainer import model as model_lib
from modules.transform import preprocessing as features

METRICS_FILE = "metrics.json"
RETRIEVAL_KS = (10, 100)


def input_fn(file_pattern, data_accessor, tf_transform_output, batch_size: int,
             shuffle: bool, num_epochs: int | None = 1, seed: int = 0) -> tf.data.Dataset:
  """Batches of transformed features (dict of [batch] tensors)."""
  return data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(
          batch_size=batch_size, shuffle=shuffle, shuffle_seed=seed, num_epochs=num_epochs,
          drop_final_batch=False),
      tf_transform_output.transformed_metadata.schema).prefetch(tf.data.AUTOTUNE)


def vocabulary_size(tf_transform_output: tft.TFTransformOutput, name: str) -> int:
  return tf_transform_output.vocabulary_size_by_name(name)


def training_statistics(dataset: tf.data.Dataset, num_movies: int) -> tuple[tf.Tensor, float]:
  """(ratings per movie index, mean rating) of the training split, in one pass."""
  counts = tf.zeros([num_movies + 1], tf.int64)
  rating_sum, examples = 0.0, 0
  for batch in dataset:
    counts += tf.math.bincount(batch[features.MOVIE_INDEX], minlength=num_movies + 1,
                               maxlength=num_movies + 1, dtype=tf.int64)
    rating_sum += float(tf.reduce_sum(batch[features.RATING]))
    examples += int(tf.shape(batch[features.RATING])[0])
  if not examples:
    raise ValueError("The train split is empty: nothing to train on.")
  return counts[:num_movies], rating_sum / examples


def evaluate(model: model_lib.RecommenderModel, dataset: tf.data.Dataset, num_movies: int,
             ks=RETRIEVAL_KS) -> dict:
  """Rating RMSE/MAE and top-K accuracy over the whole candidate set (DESIGN.md)."""
  squared_error = absolute_error = 0.0
  hits = {k: 0 for k in ks}
  count = 0
  candidates = model_lib.candidate_vectors(model, num_movies)  # once, not per batch
  for batch in dataset:
    user_index, movie_index = batch[features.USER_INDEX], batch[features.MOVIE_INDEX]
    error = model.predict_ratings(user_index, movie_index) - batch[features.RATING]
    squared_error += float(tf.reduce_sum(error * error))
    absolute_error += float(tf.reduce_sum(tf.abs(error)))
    ranks = model_lib.retrieval_ranks(model, user_index, movie_index, candidates)
    # A movie the model never saw in training cannot be retrieved: a miss.
    ranks = tf.where(movie_index < num_movies, ranks, num_movies)
    for k in ks:
      hits[k] += int(tf.reduce_sum(tf.cast(ranks < k, tf.int32)))
    count += int(tf.shape(user_index)[0])
  if not count:
    raise ValueError("The eval split is empty: nothing to evaluate the model on.")
  metrics = {"rmse": float(np.sqrt(squared_error / count)), "mae": absolute_error / count,
             "eval_examples": count}
  metrics.update({f"top_{k}_accuracy": hits[k] / count for k in ks})
  return metrics


class CoreModel(tf.Module):
  """What the Trainer exports: towers, rating head and vocabularies, all plain TF."""

  def __init__(self, model: model_lib.RecommenderModel,
               tf_transform_output: tft.TFTransformOutput):
    super().__init__()
    self.model = model
    self.num_users = tf.constant(vocabulary_size(tf_transform_output, features.USER_VOCABULARY),
                                 tf.int64)
    self.num_movies = tf.constant(vocabulary_size(tf_transform_output, features.MOVIE_VOCABULARY),
                                  tf.int64)
    self.user_table = _vocabulary_table(
        tf_transform_output.vocabulary_file_by_name(features.USER_VOCABULARY))
    self.movie_table = _vocabulary_table(
        tf_transform_output.vocabulary_file_by_name(features.MOVIE_VOCABULARY))
    raw_spec = tf_transform_output.raw_feature_spec()
    self._id_spec = {name: raw_spec[name]
                     for name in (features.RAW_USER_ID, features.RAW_MOVIE_ID)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def user_index(self, user_id):
    return self.user_table.lookup(user_id)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def movie_index(self, movie_id):
    return self.movie_table.lookup(movie_id)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])
  def user_vectors(self, user_index):
    return self.model.user_vectors(user_index)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])
  def movie_vectors(self, movie_index):
    return self.model.movie_vectors(movie_index)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64)])
  def rate_indices(self, user_index, movie_index):
    """Unclipped rating head output."""
    return self.model.predict_ratings(user_index, movie_index)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def ids_from_examples(self, serialized):
    """Raw ratings rows as tf.Examples -> (user ids, movie ids) as strings."""
    parsed = tf.io.parse_example(serialized, self._id_spec)
    return (features.id_to_string(tf.reshape(parsed[features.RAW_USER_ID], [-1])),
            features.id_to_string(tf.reshape(parsed[features.RAW_MOVIE_ID], [-1])))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
  def rate_examples(self, serialized):
    """Raw ratings rows as tf.Examples (User_ID, Movie_ID) -> {"rating": [batch]}."""
    user_ids, movie_ids = self.ids_from_examples(serialized)
    return {"rating": self.rate_indices(self.user_index(user_ids), self.movie_index(movie_ids))}


def _vocabulary_table(vocabulary_file: str) -> tf.lookup.StaticVocabularyTable:
  """Same mapping as tft.compute_and_apply_vocabulary(num_oov_buckets=1): OOV -> size."""
  initializer = tf.lookup.TextFileInitializer(
      vocabulary_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
      tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
  return tf.lookup.StaticVocabularyTable(initializer, num_oov_buckets=1)


def export_core_model(model, tf_transform_output, export_dir: str) -> None:
  core = CoreModel(model, tf_transform_output)
  tf.saved_model.save(core, export_dir, signatures={"serving_default": core.rate_examples})


def distribution_strategy(name: str) -> tf.distribute.Strategy:
  """"default" (one device), "mirrored" (all local GPUs/CPUs), "multi_worker_mirrored"
  (synchronous data parallelism across the workers named in TF_CONFIG, e.g. on a cluster)."""
  strategies = {"default": tf.distribute.get_strategy,
                "mirrored": tf.distribute.MirroredStrategy,
                "multi_worker_mirrored": tf.distribute.MultiWorkerMirroredStrategy}
  if name not in strategies:
    raise ValueError(f"Unknown distribution strategy {name!r}; choose one of {sorted(strategies)}.")
  return strategies[name]()


def train(fn_args, hparams: dict, strategy_name: str = "default") -> dict:
  """Trains, evaluates and exports; returns the eval metrics."""
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  num_users = vocabulary_size(tf_transform_output, features.USER_VOCABULARY)
  num_movies = vocabulary_size(tf_transform_output, features.MOVIE_VOCABULARY)
  batch_size = hparams["batch_size"]
  train_data = input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                        batch_size, shuffle=True, seed=hparams.get("seed", 0))
  eval_data = input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
                       batch_size, shuffle=False)

  counts, mean_rating = training_statistics(train_data, num_movies)
  with distribution_strategy(strategy_name).scope():
    model = model_lib.build_model(num_users, num_movies, hparams, movie_counts=counts,
                                  global_mean=mean_rating)
  callbacks = [tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")]
  if hparams.get("early_stopping_patience"):
    callbacks.append(tf.keras.callbacks.EarlyStopping(
        monitor=hparams.get("early_stopping_monitor", "val_loss"),
        patience=hparams["early_stopping_patience"],
        restore_best_weights=True))
  history = model.fit(train_data, validation_data=eval_data, epochs=hparams["epochs"],
                      callbacks=callbacks, verbose=0)

  metrics = evaluate(model, eval_data, num_movies)
  metrics.update(num_users=num_users, num_movies=num_movies,
                 epochs_run=len(history.history.get("loss", [])),
                 history={name: [float(v) for v in values]
                          for name, values in history.history.items()})
  absl.logging.info("Eval metrics: %s", metrics)
  export_core_model(model, tf_transform_output, fn_args.serving_model_dir)
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, METRICS_FILE), "w") as f:
    json.dump(metrics, f, indent=2)
  return metrics


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """TFX Trainer entry point; hyperparameters come in `custom_config["hparams"]`."""
  train(fn_args, fn_args.custom_config["hparams"],
        fn_args.custom_config.get("distribution_strategy", "default"))
