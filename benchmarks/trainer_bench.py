"""Training throughput: the project's Trainer vs. the original notebook's loop.

  nfrec bench trainer [--data ../shared/data/ml-100k/u.data] [--epochs 3]

Same data (MovieLens 100K by default, 80/20 split), same model (the seed
preset: dimension 32, MLP 256-128, Adagrad 0.1, batch 8192, loss weights
1.0/1.0), same process, one after the other:

  original  the notebook's loop: string features through StringLookup layers
            inside the model, `shuffle(100_000).batch(8192).cache()`, and TFRS's
            FactorizedTopK metric over the full catalog on every training batch;
  project   modules/trainer: vocabulary indices (Transform's output), in-memory
            columns with a per-epoch shuffle (`shuffled_batches`), no retrieval
            metric during training (it is computed once, after training), XLA.

Prints examples/second over the whole `fit` (tracing and compilation included)
and over the epochs after the first (steady state), and the model's memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

import benchmarks
from benchmarks import markdown
from modules import interactions
from modules.trainer import data
from modules.trainer import model as model_lib
from pipeline import config as config_lib

DEFAULT_DATA = os.path.join(benchmarks.SHARED_DATA, "ml-100k", "u.data")


def load_movielens(path: str, seed: int = 0):
  """(train, eval) dicts of numpy columns: user and movie ids as strings, rating float."""
  table = np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2))
  order = np.random.default_rng(seed).permutation(len(table))
  table = table[order]
  split = int(0.8 * len(table))

  def columns(rows):
    return {
      "user_id": rows[:, 0].astype(str),
      "movie_id": rows[:, 1].astype(str),
      "rating": rows[:, 2].astype(np.float32),
    }

  return columns(table[:split]), columns(table[split:])


class OriginalModel(tfrs.models.Model):
  """The notebook's model, as written (TFRS multitask tutorial shape)."""

  def __init__(self, users, movies, hparams):
    super().__init__()
    dim = hparams.embedding_dim
    self.movie_model = tf.keras.Sequential(
      [
        tf.keras.layers.StringLookup(vocabulary=movies, mask_token=None),
        tf.keras.layers.Embedding(len(movies) + 1, dim),
      ]
    )
    self.user_model = tf.keras.Sequential(
      [
        tf.keras.layers.StringLookup(vocabulary=users, mask_token=None),
        tf.keras.layers.Embedding(len(users) + 1, dim),
      ]
    )
    self.rating_model = tf.keras.Sequential(
      [tf.keras.layers.Dense(units, activation="relu") for units in hparams.rating_hidden_units]
      + [tf.keras.layers.Dense(1)]
    )
    self.rating_task = tfrs.tasks.Ranking(
      loss=tf.keras.losses.MeanSquaredError(), metrics=[tf.keras.metrics.RootMeanSquaredError()]
    )
    candidates = tf.data.Dataset.from_tensor_slices(movies).batch(128).map(self.movie_model)
    self.retrieval_task = tfrs.tasks.Retrieval(
      metrics=tfrs.metrics.FactorizedTopK(candidates=candidates)
    )
    self.rating_weight = hparams.rating_weight
    self.retrieval_weight = hparams.retrieval_weight

  def call(self, inputs):
    user_embeddings = self.user_model(inputs["user_id"])
    movie_embeddings = self.movie_model(inputs["movie_id"])
    return (
      user_embeddings,
      movie_embeddings,
      self.rating_model(tf.concat([user_embeddings, movie_embeddings], axis=1)),
    )

  def compute_loss(self, inputs, training=False):
    user_embeddings, movie_embeddings, ratings = self(inputs)
    rating_loss = self.rating_task(labels=inputs["rating"], predictions=ratings)
    retrieval_loss = self.retrieval_task(user_embeddings, movie_embeddings)
    return self.rating_weight * rating_loss + self.retrieval_weight * retrieval_loss


def _timed_fit(model, dataset, epochs: int, steps=None) -> list[float]:
  """Seconds of each epoch."""

  class EpochTimer(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
      self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
      times.append(time.perf_counter() - self.start)

  times = []
  model.fit(dataset, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[EpochTimer()])
  return times


def _variables_mb(variables) -> float:
  return sum(int(np.prod(v.shape)) * v.dtype.size for v in variables) / 2**20


def run_original(train, hparams, epochs):
  users, movies = np.unique(train["user_id"]), np.unique(train["movie_id"])
  tf.keras.utils.set_random_seed(hparams.seed)
  model = OriginalModel(users, movies, hparams)
  model.compile(optimizer=tf.keras.optimizers.Adagrad(hparams.learning_rate))
  dataset = (
    tf.data.Dataset.from_tensor_slices(train)
    .shuffle(100_000, seed=hparams.seed)
    .batch(hparams.batch_size)
    .cache()
  )
  start = time.perf_counter()
  times = _timed_fit(model, dataset, epochs)
  return model, time.perf_counter() - start, times


def run_project(train, hparams, epochs):
  users, user_index = np.unique(train["user_id"], return_inverse=True)
  movies, movie_index = np.unique(train["movie_id"], return_inverse=True)
  ratings = interactions.Ratings(
    user=user_index,
    movie=movie_index,
    rating=train["rating"],
    time=np.zeros(len(user_index), np.int64),
  )
  statistics = data.training_statistics(ratings, len(users), len(movies))
  model = model_lib.build_model(len(users), len(movies), hparams, **statistics)
  dataset, steps = data.shuffled_batches(ratings, hparams.batch_size, hparams.seed)
  start = time.perf_counter()
  times = _timed_fit(model, dataset, epochs, steps)
  # The project trains on full batches: count the examples it actually saw.
  return model, time.perf_counter() - start, times, steps * hparams.batch_size


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="nfrec bench trainer",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--data", default=DEFAULT_DATA, help="MovieLens u.data (tab-separated)")
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--preset", default="seed", choices=sorted(config_lib.PRESETS))
  parser.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
  args = parser.parse_args(argv)
  if not os.path.exists(args.data):
    print(f"{args.data}: not found (MovieLens 100K u.data; see ../shared/data)", file=sys.stderr)
    return 2
  hparams = config_lib.PRESETS[args.preset]
  train, _ = load_movielens(args.data)
  n = len(train["rating"])

  original, original_s, original_epochs = run_original(train, hparams, args.epochs)
  project, project_s, project_epochs, per_epoch = run_project(train, hparams, args.epochs)

  def rates(total_s, epoch_times, examples):
    steady = epoch_times[1:] or epoch_times
    return examples * len(epoch_times) / total_s, examples * len(steady) / sum(steady)

  original_rate, original_steady = rates(original_s, original_epochs, n)
  project_rate, project_steady = rates(project_s, project_epochs, per_epoch)
  memory = {
    name: (_variables_mb(model.trainable_variables), _variables_mb(model.optimizer.variables))
    for name, model in (("original", original), ("project", project))
  }
  rows = [
    [
      "original notebook loop",
      f"{original_s:.1f}",
      f"{original_rate:,.0f}",
      f"{original_steady:,.0f}",
      f"{memory['original'][0]:.2f} + {memory['original'][1]:.2f}",
      "1.0x",
    ],
    [
      "project Trainer",
      f"{project_s:.1f}",
      f"{project_rate:,.0f}",
      f"{project_steady:,.0f}",
      f"{memory['project'][0]:.2f} + {memory['project'][1]:.2f}",
      f"{project_rate / original_rate:.1f}x ({project_steady / original_steady:.1f}x steady)",
    ],
  ]
  text = (
    f"Measured on {markdown.machine()} by `nfrec bench trainer`: {os.path.basename(args.data)}"
    f" ({n:,} training ratings), `{args.preset}` preset for both (batch "
    f"{hparams.batch_size}, {args.epochs} epochs), one process, one after the other. "
    "Whole fit includes tracing and XLA compilation; steady state is the epochs after the "
    "first. Model memory: weights + optimizer slots.\n\n"
    + markdown.table(
      ["loop", "fit s", "examples/s (whole fit)", "examples/s (steady)", "model MB", "speed-up"],
      rows,
    )
  )
  print(text)
  if not args.no_doc:
    markdown.update_section("trainer", text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
