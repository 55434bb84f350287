"""The Trainer's input: Transform's splits as in-memory columns, batched for training.

Three numbers per rating (about 20 bytes): 100M ratings fit in 2 GB. Reading
once and training from memory keeps record parsing out of every epoch.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from modules.transform import examples
from nfrec import contracts


def read_split(file_patterns, tf_transform_output: tft.TFTransformOutput) -> dict[str, tf.Tensor]:
  """A split of Transform's output as {feature: [examples]} tensors."""
  columns = examples.read_columns(file_patterns, tf_transform_output.transformed_feature_spec())
  return {name: tf.constant(values) for name, values in columns.items()}


def num_examples(columns: dict) -> int:
  return int(tf.shape(columns[contracts.RATING_LABEL])[0]) if columns else 0


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
      tf.range(size, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
    )
    return tf.data.Dataset.from_tensor_slices(
      tf.reshape(order[: steps * batch_size], [steps, batch_size])
    )

  dataset = (
    tf.data.Dataset.counter()
    .flat_map(epoch_of_batches)
    .map(
      lambda rows: {name: tf.gather(values, rows) for name, values in columns.items()},
      num_parallel_calls=tf.data.AUTOTUNE,
    )
    .prefetch(tf.data.AUTOTUNE)
  )
  return dataset, steps


def in_order_batches(columns: dict, batch_size: int) -> tf.data.Dataset:
  return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def training_statistics(columns: dict, num_movies: int) -> tuple[tf.Tensor, float]:
  """(ratings per movie index, mean rating) of the training split."""
  if not num_examples(columns):
    raise ValueError("The train split is empty: nothing to train on.")
  counts = tf.math.bincount(
    columns[contracts.MOVIE_INDEX],
    minlength=num_movies + 1,
    maxlength=num_movies + 1,
    dtype=tf.int64,
  )
  return counts[:num_movies], float(tf.reduce_mean(columns[contracts.RATING_LABEL]))
