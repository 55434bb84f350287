"""Serving latency and throughput of the serving model, as TF Serving would run it.

  nfrec bench serving [--catalogs 17770 1000000] [--indexes brute_force scann]
  nfrec bench serving --model outputs/serving_model/netflix_recommender   # a pushed model

Builds serving models over synthetic catalogs with the project's own code
(benchmarks/synthetic_model.py: real towers, untrained weights, 200 rated
movies per user), then measures each in a child process that imports only
TensorFlow (plus ScaNN's ops for a ScaNN index), with TF_USE_LEGACY_KERAS
unset: median and p99 latency of `recommend` and `predict_rating` for batches
of 1, 32, 256 and 1024 users, and throughput (batch / median latency).

The floor beside each figure is the unavoidable work of an exact answer, timed
in the same process: one matrix product of the queries with every candidate
vector and one pass over the scores (a max), on the model's own candidate
matrix (and its size in MACs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import benchmarks
from benchmarks import markdown
from nfrec import contracts

BATCH_SIZES = (1, 32, 256, 1024)
TARGET_SECONDS = 2.0  # measuring time per (signature, batch size)


def _percentiles(fn) -> tuple[float, float]:
  import numpy as np

  fn()  # warm-up: first call traces nothing (signatures are concrete) but fills caches
  start = time.perf_counter()
  fn()
  one = time.perf_counter() - start
  calls = int(min(2000, max(20, TARGET_SECONDS / max(one, 1e-5))))
  times = np.empty(calls)
  for i in range(calls):
    start = time.perf_counter()
    fn()
    times[i] = time.perf_counter() - start
  p50, p99 = np.percentile(times * 1000, [50, 99])
  return float(p50), float(p99)


def measure(model_dir: str, scann: bool) -> dict:
  """Runs in the TF-only child process."""
  import numpy as np
  import tensorflow as tf

  if scann:
    import scann  # noqa: F401  (registers the ScaNN ops, as a ScaNN-enabled server must)
  start = time.perf_counter()
  model = tf.saved_model.load(model_dir)
  load_s = time.perf_counter() - start
  recommend = model.signatures[contracts.SIGNATURE_RECOMMEND]
  rate = model.signatures[contracts.SIGNATURE_PREDICT_RATING]
  with open(contracts.asset_path(model_dir, contracts.USER_VOCABULARY), "rb") as f:
    users = np.array([line.strip() for line in f if line.strip()], dtype=object)
  movies = model.movie_ids.numpy()
  candidates = tf.constant(model.candidate_vectors.numpy())
  rng = np.random.default_rng(0)

  @tf.function
  def floor(queries):
    # Any exact top-K must compute every score and read it once: the product and a max.
    return tf.reduce_max(tf.matmul(queries, candidates, transpose_b=True), axis=1)

  rows = []
  for batch in BATCH_SIZES:
    user_ids = tf.constant(rng.choice(users, batch))
    movie_ids = tf.constant(rng.choice(movies, batch))
    queries = tf.random.normal([batch, candidates.shape[1]])
    row = {"batch": batch}
    # Each measured call is timed right away, in this iteration (defaults bind its inputs).
    row["recommend"] = _percentiles(lambda u=user_ids: recommend(**{contracts.INPUT_USER_ID: u}))
    row["predict_rating"] = _percentiles(
      lambda u=user_ids, m=movie_ids: rate(
        **{contracts.INPUT_USER_ID: u, contracts.INPUT_MOVIE_ID: m}
      )
    )
    row["floor"] = _percentiles(lambda q=queries: floor(q))
    rows.append(row)
  size_mb = (
    sum(
      os.path.getsize(os.path.join(d, name)) for d, _, files in os.walk(model_dir) for name in files
    )
    / 1e6
  )
  return {
    "movies": len(movies),
    "users": len(users),
    "dim": int(candidates.shape[1]),
    "load_s": load_s,
    "size_mb": size_mb,
    "rows": rows,
    "tfrs_imported": "tensorflow_recommenders" in sys.modules,
  }


def measure_in_child(model_dir: str, scann: bool) -> dict:
  env = contracts.tf_only_environment()
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  command = [sys.executable, "-m", "benchmarks.serving_bench", "--measure", model_dir]
  if scann:
    command.append("--scann")
  output = subprocess.run(
    command, env=env, cwd=benchmarks.REPO_ROOT, check=True, capture_output=True, text=True
  ).stdout
  return json.loads(output.strip().splitlines()[-1])


def build(work_dir: str, movies: int, users: int, index_type: str) -> str:
  export_dir = os.path.join(work_dir, f"serving-{movies}-{index_type}", "1")
  if not os.path.exists(os.path.join(export_dir, "saved_model.pb")):
    from benchmarks import synthetic_model  # TF with Keras 2: only in the parent

    start = time.time()
    synthetic_model.build_serving_model(
      export_dir, num_users=users, num_movies=movies, index_type=index_type
    )
    print(f"built {export_dir} in {time.time() - start:.0f} s", flush=True)
  return export_dir


def render(results: list[dict]) -> str:
  header = [
    "catalog",
    "index",
    "batch",
    "recommend p50 ms",
    "p99 ms",
    "users/s",
    "floor p50 ms (MACs)",
    "predict_rating p50 ms",
    "p99 ms",
    "pairs/s",
  ]
  rows = []
  for r in results:
    for row in r["rows"]:
      b = row["batch"]
      rows.append(
        [
          f"{r['movies']:,}",
          r["index"],
          b,
          f"{row['recommend'][0]:.2f}",
          f"{row['recommend'][1]:.2f}",
          f"{b * 1000 / row['recommend'][0]:,.0f}",
          f"{row['floor'][0]:.2f} ({b * r['movies'] * r['dim'] / 1e6:,.1f}M)",
          f"{row['predict_rating'][0]:.2f}",
          f"{row['predict_rating'][1]:.2f}",
          f"{b * 1000 / row['predict_rating'][0]:,.0f}",
        ]
      )
  models = "; ".join(
    f"{r['movies']:,} movies / {r['index']}: {r['size_mb']:.0f} MB, load {r['load_s']:.1f} s"
    for r in results
  )
  return (
    f"Measured on {markdown.machine()} by `nfrec bench serving`, in a process that "
    "imports only TensorFlow (and ScaNN's ops for the ScaNN rows), "
    f"{results[0]['users']:,} known users with 200 rated movies each, top 10, "
    f"candidate vectors of dimension {results[0]['dim']} (the default preset's, with the folded "
    "retrieval bias). Floor of an exact answer: one matrix "
    "product of the queries with every candidate vector and one pass over the scores, "
    "timed on the same candidates. "
    f"Models: {models}.\n\n" + markdown.table(header, rows)
  )


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="nfrec bench serving",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--catalogs", nargs="+", type=int, default=[17_770, 1_000_000])
  parser.add_argument(
    "--indexes", nargs="+", default=["brute_force", "scann"], choices=["brute_force", "scann"]
  )
  parser.add_argument("--users", type=int, default=50_000)
  parser.add_argument("--model", help="measure this pushed model (a model base path) instead")
  parser.add_argument("--work-dir", default="/tmp/nfrec-bench")
  parser.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
  parser.add_argument("--measure", help=argparse.SUPPRESS)
  parser.add_argument("--scann", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.measure:
    print(json.dumps(measure(args.measure, args.scann)))
    return 0

  if args.model:
    version = contracts.latest_version(args.model)
    if version is None:
      print(f"{args.model}: no model version here", file=sys.stderr)
      return 2
    model_dir = os.path.join(args.model, version)
    result = dict(measure_in_child(model_dir, scann=False), index="pushed model")
    print(render([result]))
    return 0
  results = []
  for movies in args.catalogs:
    for index_type in args.indexes:
      model_dir = build(args.work_dir, movies, args.users, index_type)
      result = dict(measure_in_child(model_dir, index_type == "scann"), index=index_type)
      if result["tfrs_imported"]:
        raise RuntimeError("the serving process imported TFRS: it would not load in TF Serving")
      results.append(result)
      print(json.dumps(result), flush=True)
  text = render(results)
  print(text)
  if not args.no_doc:
    markdown.update_section("serving", text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
