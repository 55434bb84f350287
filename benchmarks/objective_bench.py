"""What a training step costs at Netflix's catalog size, by retrieval objective and optimizer.

  nfrec bench objective [--movies 17770] [--users 5000 100000] [--steps 64] [--no-doc]

Builds the default preset's model (history-reading user tower, title words and
year in the movie tower, dimension 128) over a generated stream of ratings with
Netflix's shape (M movies with Zipf-like popularity, U users, the Trainer's own
sequence batches, data.sequence_batches), and times training steps after a
warm-up, for the default preset and the variants that differ from it in one or
two knobs:

  the previous default: the softmax over the whole catalog
  1,024 sampled negatives
  the default's sampled negatives, with Keras's Adam (the default) and with
    LazyAdam (whose sparse updates touch only the batch's rows, where Keras's
    Adam moves every row of every table on every step)
  in-batch negatives only (no catalog negatives at all: the floor)
  the default without its L2 on the embedding tables (a table-wide regularizer
    makes every step's gradient dense over every table), with Adam and with
    LazyAdam (which only then updates just the batch's rows); and LazyAdam with
    the user tables' L2 on the rows each batch uses (sparse_user_l2)
  the default with 64 targets per history chunk instead of 16 (a chunk carries
    its targets' history window, so longer chunks embed fewer history rows per
    target)

Quality is not measured here: `nfrec bench quality` and docs/results.md.
"""

from __future__ import annotations

import argparse
import time

from benchmarks import markdown

HEADER = [
  "retrieval negatives",
  "optimizer",
  "embedding L2",
  "targets per chunk",
  "users",
  "ms per step",
  "examples/s",
]


def variants(default) -> list[tuple[str, dict]]:
  """(label, overrides of the default preset) for each objective compared."""
  power = default.negative_sampling_power
  sampled = f"{default.retrieval_negatives:,} sampled (power {power})"
  return [
    ("whole catalog (the previous default)", dict(retrieval_candidates="all", optimizer="adam")),
    (
      f"1,024 sampled (power {power})",
      dict(retrieval_candidates="sampled", retrieval_negatives=1024),
    ),
    (sampled + " (**default**)", {}),
    (sampled, dict(optimizer="lazy_adam")),
    ("in-batch only (no catalog negatives)", dict(retrieval_candidates="in_batch")),
    (sampled, dict(l2=0.0, l2_per_epoch=0.0)),
    # LazyAdam's sparse update pays only when no table-wide L2 makes the gradient dense.
    (sampled, dict(optimizer="lazy_adam", l2=0.0, l2_per_epoch=0.0)),
    # ...or the user tables' L2 put on the rows each batch uses.
    (sampled, dict(optimizer="lazy_adam", sparse_user_l2=True)),
    (sampled, dict(history_chunk=64)),
  ]


def _stream(num_users: int, num_movies: int, size: int, seed: int = 0):
  """Ratings with a long-tailed movie popularity, users in order (each user's rows together)."""
  import numpy as np

  from modules import interactions

  rng = np.random.default_rng(seed)
  return interactions.Ratings(
    user=np.sort(rng.integers(0, num_users, size)),
    movie=(rng.zipf(1.3, size) % num_movies).astype(np.int64),
    rating=rng.integers(1, 6, size).astype(np.float32),
    time=np.arange(size, dtype=np.int64),
  )


def time_steps(hparams, num_users: int, num_movies: int, steps: int, repeats: int = 5) -> float:
  """Seconds per training step, the fastest of `repeats` calls after a warm-up (tracing).
  The fastest, not the median: on this project's 2-core VM a call sometimes runs at
  half speed (about 2x the time: one core), whatever the model."""
  import numpy as np
  import tensorflow as tf

  from modules.trainer import data
  from modules.trainer import model as model_lib

  tf.keras.backend.clear_session()
  ratings = _stream(num_users, num_movies, max(200_000, steps * hparams.batch_size))
  rng = np.random.default_rng(1)
  features = model_lib.MovieFeatures(
    rng.integers(0, 5_000, (num_movies + 1, 8)), rng.integers(0, 30, num_movies + 1), 5_001, 31
  )
  dataset, steps_per_epoch = data.sequence_batches(
    ratings,
    num_users,
    num_movies,
    hparams.batch_size,
    hparams.history_window,
    0,
    True,
    chunk=hparams.history_chunk,
  )
  model = model_lib.build_model(
    num_users,
    num_movies,
    hparams,
    steps_per_epoch=steps_per_epoch,
    features=features,
    **data.training_statistics(ratings, num_users, num_movies),
  )
  model.fit(dataset, steps_per_epoch=hparams.steps_per_execution, epochs=1, verbose=0)
  seconds = []
  for _ in range(repeats):
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds.append((time.perf_counter() - start) / steps)
  return min(seconds)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="nfrec bench objective",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--movies", type=int, default=17_770)
  parser.add_argument("--users", type=int, nargs="+", default=[5_000, 100_000])
  parser.add_argument("--steps", type=int, default=64, help="timed steps per call (5 calls)")
  parser.add_argument("--no-doc", action="store_true", help="do not write docs/performance.md")
  args = parser.parse_args(argv)

  from pipeline import config as config_lib

  default = config_lib.PRESETS["default"]
  rows = []
  for num_users in args.users:
    for label, overrides in variants(default):
      hparams = default.replace(**overrides)
      seconds = time_steps(hparams, num_users, args.movies, args.steps)
      rows.append(
        [
          label,
          "LazyAdam" if hparams.optimizer == "lazy_adam" else "Adam",
          (f"{hparams.l2_per_epoch} per epoch" if hparams.l2_per_epoch else f"{hparams.l2}")
          + (", users' rows per batch" if hparams.sparse_user_l2 else ""),
          f"{hparams.history_chunk}",
          f"{num_users:,}",
          f"{seconds * 1000:.1f}",
          f"{hparams.batch_size / seconds:,.0f}",
        ]
      )
      print(" | ".join(rows[-1]), flush=True)
  table = markdown.table(HEADER, rows)
  print(table)
  if not args.no_doc:
    markdown.update_section(
      "objective",
      f"Measured on {markdown.machine()} by `nfrec bench objective`: the default preset's model "
      f"(batch {default.batch_size}, history window {default.history_window}, dimension "
      f"{default.embedding_dim}) on generated Netflix-shaped batches, {args.movies:,} movies; "
      f"the fastest of 5 calls of {args.steps} steps after a warm-up (on this VM a call "
      "sometimes runs at half speed, whatever the model).\n\n" + table,
    )
  return 0
