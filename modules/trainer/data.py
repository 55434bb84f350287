"""The Trainer's input: Transform's splits as in-memory columns, batched for training.

About 30 bytes per rating: 100M ratings fit in 3 GB. Reading once and training
from memory keeps record parsing out of every epoch.

Two batchings:
  shuffled_batches   rows in a fresh random order each epoch (an ids-only model)
  sequence_batches   each user's rows together, oldest first (or shuffled when the
                     data has no time), so every row's history is the rows before
                     it (model.sequence_history_sums), cut into short chunks that
                     carry their `context` rows before them (history only)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from modules import interactions
from modules.interactions import Ratings
from modules.transform import examples
from nfrec import contracts

# Batches prepared ahead of the training step, with tf.data's autotuning off: with it on,
# deleting the iterator (the end of every model.fit) waits for the autotuner's thread to
# wake, 7-41 s on the embedded sample (py-spy: ~IteratorResource waiting in
# UnboundedThreadPool). A batch is a few gathers, far cheaper than the step it feeds.
PREFETCH_BATCHES = 2


def _prefetched(dataset: tf.data.Dataset) -> tf.data.Dataset:
  options = tf.data.Options()
  options.autotune.enabled = False
  return dataset.prefetch(PREFETCH_BATCHES).with_options(options)


def read_split(file_patterns, tf_transform_output: tft.TFTransformOutput) -> Ratings:
  """A split of Transform's output."""
  return Ratings.from_columns(
    examples.read_columns(file_patterns, tf_transform_output.transformed_feature_spec())
  )


def shuffled_batches(ratings: Ratings, batch_size: int, seed: int) -> tuple[tf.data.Dataset, int]:
  """(endless dataset of full batches, steps per epoch), rows in a new order each epoch.

  Each epoch is a fresh permutation of all examples (a stateless shuffle keyed by
  (seed, epoch): reproducible, and different every epoch); a batch is one gather
  per column, so no per-example work. Full batches only: one shape for XLA, and an
  example left out of one epoch is in the next.
  """
  columns = ratings.as_tensors()
  size = len(ratings)
  steps = max(size // batch_size, 1)
  batch_size = min(batch_size, size)

  def epoch_of_batches(epoch):
    order = tf.random.experimental.stateless_shuffle(
      tf.range(size, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch])
    )
    return tf.data.Dataset.from_tensor_slices(
      tf.reshape(order[: steps * batch_size], [steps, batch_size])
    )

  dataset = _prefetched(
    tf.data.Dataset.counter()
    .flat_map(epoch_of_batches)
    .map(
      lambda rows: {name: tf.gather(values, rows) for name, values in columns.items()},
      num_parallel_calls=tf.data.AUTOTUNE,
    )
  )
  return dataset, steps


def sequence_batches(
  ratings: Ratings,
  num_users: int,
  num_movies: int,
  batch_size: int,
  context: int,
  seed: int,
  by_time: bool,
  chunk: int,
) -> tuple[tf.data.Dataset, int]:
  """(endless dataset of batches, steps per epoch) for a history-reading model.

  Each epoch puts every user's rows together, oldest first when `by_time`, else
  in a fresh random order (a new history for each row every epoch, the way a
  user's unordered ratings may come). This sequence is cut into chunks of `chunk`
  target rows, each with the `context` rows before it (history only); a batch is
  `batch_size // chunk` chunks in a fresh random order, so it mixes many users.
  Features are [chunks, context + chunk]: the last `chunk` columns are the targets.
  """
  size = len(ratings)
  chunk = max(min(chunk, size), 1)
  chunks_per_batch = max(batch_size // chunk, 1)
  num_chunks = max(size // chunk, 1)
  steps = max(num_chunks // chunks_per_batch, 1)
  chunks_per_batch = min(chunks_per_batch, num_chunks)
  width = context + chunk
  user = tf.constant(ratings.user)
  columns = ratings.as_tensors()
  # Rank of each row within its user, in time order (fixed) or random (per epoch).
  rank = np.empty(size, np.int64)
  rank[interactions.by_user_oldest_first(ratings, num_users)[1]] = np.arange(size)
  time_rank = tf.constant(rank)
  padding = {
    contracts.USER_INDEX: tf.fill([context], tf.constant(num_users, tf.int64)),
    contracts.MOVIE_INDEX: tf.fill([context], tf.constant(num_movies, tf.int64)),
    contracts.RATING_LABEL: tf.zeros([context], tf.float32),
  }

  def epoch_of_batches(epoch):
    key = tf.stack([tf.constant(seed, tf.int64), epoch])
    user_rank = tf.random.experimental.stateless_shuffle(
      tf.range(num_users + 1, dtype=tf.int64), key
    )
    within = (
      time_rank
      if by_time
      else tf.random.stateless_uniform([size], key, maxval=2**31 - 1, dtype=tf.int64)
    )
    order = tf.argsort(tf.gather(user_rank, user) * 2**32 + within, stable=True)
    flat = {
      name: tf.concat([padding[name], tf.gather(values, order)], 0)
      for name, values in columns.items()
    }
    chunk_order = tf.random.experimental.stateless_shuffle(
      tf.range(num_chunks, dtype=tf.int64), key + [0, 1]
    )[: steps * chunks_per_batch]

    # Chunk c covers target rows [c * chunk, (c + 1) * chunk) of the sequence; in the
    # padded arrays its window of context + targets starts at c * chunk. Windows are
    # gathered a batch at a time: an epoch's windows at once are (context + chunk) / chunk
    # times the split (17 x: most of the Trainer's 9 GiB at 12M training ratings, measured).
    def batch(chunks):
      windows = chunks[:, tf.newaxis] * chunk + tf.range(width, dtype=tf.int64)
      return {name: tf.gather(values, windows) for name, values in flat.items()}

    return tf.data.Dataset.from_tensor_slices(
      tf.reshape(chunk_order, [steps, chunks_per_batch])
    ).map(batch)

  dataset = _prefetched(tf.data.Dataset.counter().flat_map(epoch_of_batches))
  return dataset, steps


def training_statistics(ratings: Ratings, num_users: int, num_movies: int) -> dict:
  """Counts of the training split: ratings per movie and per user, which ids were trained,
  the mean."""
  if not len(ratings):
    raise ValueError("The train split is empty: nothing to train on.")
  user_counts = np.bincount(ratings.user[ratings.user < num_users], minlength=num_users)
  movie_counts = np.bincount(ratings.movie[ratings.movie < num_movies], minlength=num_movies)
  return dict(
    movie_counts=movie_counts,
    user_counts=user_counts,
    trained_users=user_counts > 0,
    trained_movies=movie_counts > 0,
    global_mean=float(ratings.rating.mean()),
  )
