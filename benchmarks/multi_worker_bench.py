"""Multi-worker training: the project's Trainer on two local worker processes.

  nfrec bench multiworker [--data ../shared/data/ml-100k/u.data] [--epochs 3]

Runs modules/trainer/train.fit (the default preset, no early stopping, no
refit) with MultiWorkerMirroredStrategy in two worker processes that find each
other through TF_CONFIG on localhost (as two machines of a cluster would), then
the same fit with one worker, and prints both: validation metrics of the final
epoch and seconds. Same data (a seeded 90/10 split of MovieLens 100K by
default), same seed. Both workers share this machine's cores, so the figure
shows that the distributed path works and what it learns, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

import benchmarks
from benchmarks import markdown

DEFAULT_DATA = os.path.join(benchmarks.SHARED_DATA, "ml-100k", "u.data")
SHOWN = ("recall_at_10", "recall_at_100", "ndcg_at_10", "rmse", "mae")


def _ratings(path: str):
  """(train, validation, users, movies): a seeded 90/10 split as interactions.Ratings."""
  import numpy as np

  from modules import interactions

  table = np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2, 3))
  _, user = np.unique(table[:, 0], return_inverse=True)
  _, movie = np.unique(table[:, 1], return_inverse=True)
  order = np.random.default_rng(0).permutation(len(table))
  cut = int(0.9 * len(table))

  def part(rows):
    return interactions.Ratings(
      user=user[rows],
      movie=movie[rows],
      rating=table[rows, 2].astype(np.float32),
      time=table[rows, 3],
    )

  return part(order[:cut]), part(order[cut:]), int(user.max()) + 1, int(movie.max()) + 1


def train(path: str, epochs: int, strategy_name: str) -> dict:
  """One worker's fit (runs in a child process)."""
  from modules.trainer import train as train_lib

  # Before any other TensorFlow op: collective ops are configured at startup.
  strategy = train_lib.distribution_strategy(strategy_name)
  from pipeline import config as config_lib

  hparams = config_lib.PRESETS["default"].replace(
    epochs=epochs, early_stopping_patience=0, refit_on_validation=False
  )
  train_split, validation, users, movies = _ratings(path)
  start = time.perf_counter()
  trained = train_lib.fit(train_split, validation, users, movies, hparams, strategy=strategy)
  return {
    "seconds": time.perf_counter() - start,
    "replicas": strategy.num_replicas_in_sync,
    "metrics": {name: trained.metrics[name] for name in SHOWN},
  }


def _free_ports(count: int) -> list[int]:
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _child(args: list[str], env: dict) -> subprocess.Popen:
  return subprocess.Popen(
    [sys.executable, "-m", "benchmarks.multi_worker_bench", *args],
    cwd=benchmarks.REPO_ROOT,
    env=env,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )


def _output(process: subprocess.Popen, timeout: float) -> str:
  stdout, stderr = process.communicate(timeout=timeout)
  if process.returncode != 0:
    raise RuntimeError(f"worker failed (exit {process.returncode}):\n{stderr[-3000:]}")
  return stdout


def _report(stdout: str) -> dict:
  return json.loads(stdout.strip().splitlines()[-1])


def run(path: str, epochs: int, workers: int = 2, timeout: float = 3600) -> dict:
  cluster = {"worker": [f"localhost:{port}" for port in _free_ports(workers)]}
  processes = []
  for index in range(workers):
    task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
    env = dict(os.environ, TF_CONFIG=json.dumps(task))
    processes.append(_child(["--worker", path, str(epochs), "multi_worker_mirrored"], env))
  outputs = [_output(p, timeout) for p in processes]  # every worker must succeed
  env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
  single = _report(_output(_child(["--worker", path, str(epochs), "default"], env), timeout))
  return {
    "multi_worker": _report(outputs[0]),
    "workers": workers,
    "single": single,
    "epochs": epochs,
  }


def render(result: dict, path: str) -> str:
  header = ["training", "seconds", *SHOWN]
  rows = []
  for label, r in (
    (f"MultiWorkerMirroredStrategy, {result['workers']} worker processes", result["multi_worker"]),
    ("one worker (default strategy)", result["single"]),
  ):
    rows.append([label, f"{r['seconds']:.1f}", *(f"{r['metrics'][name]:.4f}" for name in SHOWN)])
  return (
    f"Measured on {markdown.machine()} by `nfrec bench multiworker`: modules/trainer/train.fit, "
    f"default preset, {result['epochs']} epochs (no early stopping, no refit), on a seeded 90/10 "
    f"split of `{os.path.relpath(path, benchmarks.REPO_ROOT)}`; the workers find each other "
    "through TF_CONFIG on localhost and share this machine's 2 cores. Validation metrics of "
    "the last epoch.\n\n" + markdown.table(header, rows)
  )


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="nfrec bench multiworker",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--data", default=DEFAULT_DATA, help="MovieLens u.data (tab-separated)")
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
  parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.worker:
    path, epochs, strategy = args.worker
    result = train(path, int(epochs), strategy)
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    if task.get("index", 0) == 0:  # the chief reports
      print(json.dumps(result))
    return 0
  if not os.path.exists(args.data):
    print(f"{args.data}: not found (MovieLens 100K u.data; see ../shared/data)", file=sys.stderr)
    return 2
  result = run(args.data, args.epochs)
  text = render(result, args.data)
  print(text)
  if not args.no_doc:
    markdown.update_section("multiworker", text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
