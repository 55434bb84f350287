"""Latency of the pushed model's signatures in a process that imports only TensorFlow.

  python benchmarks/serving_latency.py MODEL_BASE_PATH [--calls 1000]

Prints model size, load time, and median / p99 latency of `recommend` for one
user and for a batch of 256 users, and of `predict_rating` for one pair.
Runs as TF Serving would: no project code, no TFRS, TF_USE_LEGACY_KERAS unset.
"""

import argparse
import os
import sys
import time

if os.environ.get("TF_USE_LEGACY_KERAS"):
  sys.exit("run this without TF_USE_LEGACY_KERAS: it stands in for tensorflow_model_server")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf


def _latest(base: str) -> str:
  versions = [v for v in os.listdir(base) if v.isdigit()]
  if not versions:
    sys.exit(f"{base}: no model version")
  return os.path.join(base, max(versions, key=int))


def _size_mb(path: str) -> float:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
             for f in files) / 1e6


def _timed(fn, calls: int) -> np.ndarray:
  fn()  # warm-up
  times = np.empty(calls)
  for i in range(calls):
    start = time.perf_counter()
    fn()
    times[i] = time.perf_counter() - start
  return times * 1000


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("model_base_path")
  parser.add_argument("--calls", type=int, default=1000)
  args = parser.parse_args()
  version = _latest(args.model_base_path)
  start = time.perf_counter()
  model = tf.saved_model.load(version)
  load_s = time.perf_counter() - start
  recommend, rate = model.signatures["recommend"], model.signatures["predict_rating"]
  movie_ids = model.movie_ids.numpy()
  # Known users, most active first: Transform's user vocabulary, an asset of the model.
  with open(os.path.join(version, "assets", "user_id"), "rb") as f:
    user_ids = [line.strip() for line in f if line.strip()]
  one = tf.constant(user_ids[:1])
  batch = tf.constant((user_ids * 256)[:256])
  pair_user, pair_movie = tf.constant(user_ids[:1]), tf.constant(movie_ids[:1])
  print(f"model: {version}  size {_size_mb(version):.1f} MB  load {load_s:.2f} s  "
        f"catalog {len(movie_ids):,} movies  users {len(user_ids):,}")
  for name, fn, calls, rows in (
      ("recommend, 1 user", lambda: recommend(user_id=one), args.calls, 1),
      ("recommend, 256 users", lambda: recommend(user_id=batch), max(args.calls // 10, 20), 256),
      ("predict_rating, 1 pair", lambda: rate(user_id=pair_user, movie_id=pair_movie),
       args.calls, 1)):
    times = _timed(fn, calls)
    p50, p99 = np.percentile(times, [50, 99])
    print(f"{name:<24} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  "
          f"throughput {rows * 1000 / p50:,.0f} rows/s")


if __name__ == "__main__":
  main()
