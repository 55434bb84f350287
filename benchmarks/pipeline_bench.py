"""Pipeline cost on Netflix-shaped data: wall time and peak memory per component.

  nfrec bench pipeline [--sizes 100k 1M 5M 17M] [--modes in_memory multi_processing]

For each size, generates Netflix-shaped ratings (17,770 movies, about 200
ratings per user; nfrec/data/sample.py) once, then runs `nfrec run` in a
child process three times on a fresh output folder: cold, rerun (everything
cached but the Evaluator, which now has a baseline to compare with), and fully
cached. Memory is the resident set of the whole process tree (Beam workers
included), sampled every 0.2 s; a component's peak is the highest sample while
it ran. Other Beam modes are run cold only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import psutil

import benchmarks
from benchmarks import floors, markdown
from nfrec import contracts
from nfrec.data import sample as sample_data
from pipeline.config import PipelineConfig

SIZES = {
  "100k": 100_000,
  "1M": 1_000_000,
  "5M": 5_000_000,
  "17M": 17_000_000,
}  # 17M: the Kaggle file
RUNS = ("cold", "rerun", "cached")


def make_data(work_dir: str, size: str) -> str:
  data_dir = os.path.join(work_dir, f"data-{size}")
  if not os.path.exists(os.path.join(data_dir, contracts.RATINGS_FOLDER, sample_data.RATINGS_FILE)):
    start = time.time()
    sample_data.write(data_dir, sample_data.netflix_shaped(SIZES[size]))
    print(f"generated {data_dir} in {time.time() - start:.0f} s", flush=True)
  return data_dir


class TreeMemory:
  """Samples the resident memory of a process and all its children."""

  def __init__(self, pid: int, interval_s: float = 0.2):
    self.samples: list[tuple[float, int]] = []
    self._process = psutil.Process(pid)
    self._interval = interval_s
    self._done = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()

  def _run(self):
    while not self._done.is_set():
      try:
        processes = [self._process] + self._process.children(recursive=True)
        rss = 0
        for process in processes:
          try:
            rss += process.memory_info().rss
          except psutil.Error:
            pass
        self.samples.append((time.time(), rss))
      except psutil.Error:
        break
      self._done.wait(self._interval)

  def stop(self):
    self._done.set()
    self._thread.join()

  def peak_mb(self, start: float = 0.0, end: float = float("inf")) -> float:
    window = [rss for t, rss in self.samples if start <= t <= end]
    return max(window, default=0) / 2**20


def run_pipeline(data_dir: str, output_dir: str, beam_runner: str) -> dict:
  command = [
    sys.executable,
    "-m",
    "nfrec",
    "run",
    "--data",
    data_dir,
    "--output",
    output_dir,
    "--beam-runner",
    beam_runner,
  ]
  start = time.time()
  with open(output_dir + ".log", "a") as log:
    child = subprocess.Popen(
      command, stdout=log, stderr=subprocess.STDOUT, cwd=benchmarks.REPO_ROOT
    )
    memory = TreeMemory(child.pid)
    returncode = child.wait()
    memory.stop()
  wall_s = time.time() - start
  summary_path = os.path.join(output_dir, "run_summary.json")
  if returncode not in (0, 1) or not os.path.exists(summary_path):
    raise RuntimeError(f"nfrec run failed (exit {returncode}); see {output_dir}.log")
  with open(summary_path) as f:
    summary = json.load(f)
  components = {
    name: {
      "state": info["state"],
      "seconds": info["seconds"],
      "peak_mb": round(memory.peak_mb(info["started_at"] - 0.2, info["finished_at"] + 0.2)),
    }
    for name, info in summary["components"].items()
  }
  return {
    "wall_s": round(wall_s, 1),
    "peak_mb": round(memory.peak_mb()),
    "components": components,
    "blessed": summary["blessed"],
    "ratings": sum(summary.get("data", {}).get("ratings", {}).values()),
    "rmse": summary.get("trainer_metrics", {}).get(contracts.RMSE),
    "epochs": summary.get("trainer_metrics", {}).get("epochs_run"),
  }


MAIN_STEPS = (
  "RatingsExampleGen",
  "StatisticsGen",
  "Transform",
  "Trainer",
  "ServingModelBuilder",
  "Evaluator",
  "RetrievalEvaluator",
)


def render(results: list[dict]) -> str:
  header = (
    ["ratings", "Beam", "run", "wall s", "peak MB"]
    + [f"{step} s / MB" for step in MAIN_STEPS]
    + ["epochs", "RMSE"]
  )
  rows = []
  order = {size: i for i, size in enumerate(SIZES)}
  for r in sorted(results, key=lambda r: (order[r["size"]], r["mode"] != "in_memory")):
    cells = []
    for step in MAIN_STEPS:
      info = r["components"].get(step)
      cells.append(
        "cached"
        if info and info["state"] == "CACHED"
        else f"{info['seconds']:.0f} / {info['peak_mb']:,}"
        if info
        else ""
      )
    rows.append(
      [f"{r['ratings']:,}", r["mode"], r["run"], r["wall_s"], f"{r['peak_mb']:,}"]
      + cells
      + [r["epochs"] or "", f"{r['rmse']:.3f}" if r["rmse"] else ""]
    )
  return (
    f"Measured on {markdown.machine()} by `nfrec bench pipeline`. Netflix-shaped "
    "generated data (17,770 movies, about 200 ratings per user), default preset. "
    "Wall time includes Python start-up and the run summary; memory is the resident set "
    "of the whole process tree, per component the highest sample while it ran.\n\n"
    + markdown.table(header, rows)
    + "\n\n"
    + render_floors(results)
  )


def render_floors(results: list[dict]) -> str:
  """RatingsExampleGen (cold, in_memory) beside the same work without Beam (floors.py)."""
  rows = []
  for r in results:
    step, floor = r["components"].get("RatingsExampleGen"), r.get("examplegen_floor")
    if not floor or not step or step["state"] == "CACHED" or r["mode"] != "in_memory":
      continue
    rows.append(
      [
        f"{r['ratings']:,}",
        f"{step['seconds']:.0f}",
        f"{step['seconds'] / r['ratings'] * 1e6:.1f}",
        f"{floor['total_s']:.1f}",
        f"{floor['total_s'] / floor['rows'] * 1e6:.1f}",
        f"{step['seconds'] / floor['total_s']:.0f}x",
      ]
    )
  header = ["ratings", "RatingsExampleGen s", "µs/rating", "floor s", "floor µs/rating", "ratio"]
  return (
    "RatingsExampleGen beside its floor: the same work (read the CSV, split each user's "
    "ratings by time, encode tf.Examples, write gzipped TFRecords) in one process with "
    "pyarrow and tfx_bsl's batch encoder, no Beam (benchmarks/floors.py).\n\n"
    + markdown.table(header, rows)
  )


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="nfrec bench pipeline",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  # 17M only when asked for: many hours here (docs/performance.md, the cost curve).
  parser.add_argument("--sizes", nargs="+", default=["100k", "1M", "5M"], choices=list(SIZES))
  parser.add_argument(
    "--modes",
    nargs="+",
    default=["in_memory", "multi_processing"],
    choices=["in_memory", "multi_processing"],
  )
  parser.add_argument(
    "--multi-processing-sizes",
    nargs="+",
    default=["100k", "1M"],
    help="sizes to also run with the other Beam modes (cold only)",
  )
  parser.add_argument(
    "--runs",
    nargs="+",
    default=list(RUNS),
    choices=RUNS,
    help="which of cold, rerun, cached to run (in that order)",
  )
  parser.add_argument(
    "--results",
    default="pipeline_results.json",
    help="file in the work dir that collects the results",
  )
  parser.add_argument("--work-dir", default="/tmp/nfrec-bench")
  parser.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
  args = parser.parse_args(argv)
  os.makedirs(args.work_dir, exist_ok=True)
  results = []
  for size in args.sizes:
    data_dir = make_data(args.work_dir, size)
    floor = floors.ratings_example_gen_floor(
      os.path.join(data_dir, contracts.RATINGS_FOLDER, sample_data.RATINGS_FILE),
      os.path.join(args.work_dir, f"floor-{size}"),
      PipelineConfig.for_data_dir(data_dir).split,
    )
    print(f"RatingsExampleGen floor at {size}: {json.dumps(floor)}", flush=True)
    for mode in args.modes:
      if mode != "in_memory" and size not in args.multi_processing_sizes:
        continue
      output_dir = os.path.join(args.work_dir, f"out-{size}-{mode}")
      shutil.rmtree(output_dir, ignore_errors=True)
      os.makedirs(output_dir)
      for run in args.runs if mode == "in_memory" else args.runs[:1]:
        result = dict(
          run_pipeline(data_dir, output_dir, mode),
          size=size,
          mode=mode,
          run=run,
          examplegen_floor=floor,
        )
        results.append(result)
        print(json.dumps(result), flush=True)
      with open(os.path.join(args.work_dir, args.results), "w") as f:
        json.dump(results, f, indent=1)
  text = render(results)
  print(text)
  if not args.no_doc:
    markdown.update_section("pipeline", text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
