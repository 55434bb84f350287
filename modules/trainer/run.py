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


import absl.logging
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from modules.trainer import model as model_lib
from modules.transform import preprocessing as features

METRICS_FILE = "metrics.json"
READ_BATCH_SIZE = 65_536
RETRIEVAL_KS = (10, 100)


def read_columns(file_pattern, data_accessor, tf_transform_output) -> dict[str, tf.Tensor]:
  """A split of Transform's output as in-memory columns ({feature: [examples]}).

  Three numbers per rating (about 20 bytes): 100M ratings fit in 2 GB. Reading
  once and training from memory keeps record parsing out of every epoch.
  """
  dataset = data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(batch_size=READ_BATCH_SIZE, shuffle=False, num_epochs=1),
      tf_transform_output.transformed_metadata.schema)
  columns = {}
  for batch in dataset:
    for name, values in batch.items():
      columns.setdefault(name, []).append(values)
  if not columns:
    return {}
  return {name: tf.concat(values, axis=0) for name, values in columns.items()}


def num_examples(columns: dict) -> int:
  return int(tf.shape(columns[features.RATING])[0]) if columns else 0


def shuffled_batches(columns: dict, batch_size: int, seed: int) -> tuple[tf.data.Dataset, int]:
  """(endless dataset of full batches, steps per epoch).

  Each epoch is a fresh permutation of all examples (a stateless shuffle keyed
  by (seed, epoch): reproducible, and different every epoch); a batch is one
  gather per column, so no per-example work. Full batches only: one shape for
  XLA, and an example left out of one epoch is in the next.
  """
  size = num_examples(columns)
  steps = max(size // batch_size, 1)
  batch_size = min(batch_size, size)

  def epoch_of_batches(epoch):
    order = tf.random.experimental.stateless_shuffle(
        tf.range(size, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
    return tf.data.Dataset.from_tensor_slices(
        tf.reshape(order[:steps * batch_size], [steps, batch_size]))

  dataset = (tf.data.Dataset.counter().flat_map(epoch_of_batches)
             .map(lambda rows: {name: tf.gather(values, rows) for name, values in columns.items()},
                  num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(tf.data.AUTOTUNE))
  return dataset, steps


def in_order_batches(columns: dict, batch_size: int) -> tf.data.Dataset:
  return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def vocabulary_size(tf_transform_output: tft.TFTransformOutput, name: str) -> int:
  return tf_transform_output.vocabulary_size_by_name(name)


def training_statistics(columns: dict, num_movies: int) -> tuple[tf.Tensor, float]:
  """(ratings per movie index, mean rating) of the training split."""
  if not num_examples(columns):
    raise ValueError("The train split is empty: nothing to train on.")
  counts = tf.math.bincount(columns[features.MOVIE_INDEX], minlength=num_movies + 1,
                            maxlength=num_movies + 1, dtype=tf.int64)
  return counts[:num_movies], float(tf.reduce_mean(columns[features.RATING]))


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
  train_columns = read_columns(fn_args.train_files, fn_args.data_accessor, tf_transform_output)
  eval_columns = read_columns(fn_args.eval_files, fn_args.data_accessor, tf_transform_output)
  counts, mean_rating = training_statistics(train_columns, num_movies)
  if not num_examples(eval_columns):
    raise ValueError("The eval split is empty: nothing to evaluate the model on.")
  train_data, steps_per_epoch = shuffled_batches(train_columns, batch_size, hparams.get("seed", 0))
  eval_data = in_order_batches(eval_columns, batch_size)

  with distribution_strategy(strategy_name).scope():
    model = model_lib.build_model(num_users, num_movies, hparams, movie_counts=counts,
                                  global_mean=mean_rating, steps_per_epoch=steps_per_epoch)
  callbacks = [tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")]
  if hparams.get("early_stopping_patience"):
    callbacks.append(tf.keras.callbacks.EarlyStopping(
        monitor=hparams.get("early_stopping_monitor", "val_loss"),
        patience=hparams["early_stopping_patience"],
        min_delta=hparams.get("early_stopping_min_delta", 0.0),
        restore_best_weights=True))
  history = model.fit(train_data, steps_per_epoch=steps_per_epoch, validation_data=eval_data,
                      epochs=hparams["epochs"], callbacks=callbacks, verbose=0)

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
