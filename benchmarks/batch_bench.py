"""Batch recommendations at the full Netflix size: users per second and peak memory.

  nfrec bench batch [--users 480189] [--movies 17770]

Builds a serving model of that size with the real model code (untrained weights,
benchmarks/synthetic_model.py), then, in a fresh process that imports only
TensorFlow and pyarrow, writes every user's top 10 to Parquet and CSV with
modules/serving/batch.py, and reports users per second and that process's peak
resident memory (its high-water mark, from the kernel).
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


def export_in_child(model_dir: str, output_dir: str) -> dict:
  code = (
    "import json, resource, sys\n"
    "from modules.serving import batch\n"
    "report = batch.write_recommendations(sys.argv[1], sys.argv[2])\n"
    "report['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
    "print(json.dumps(report))\n"
  )
  env = contracts.tf_only_environment()
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  output = subprocess.run(
    [sys.executable, "-c", code, model_dir, output_dir],
    env=env,
    cwd=benchmarks.REPO_ROOT,
    check=True,
    capture_output=True,
    text=True,
  ).stdout
  return json.loads(output.strip().splitlines()[-1])


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="nfrec bench batch", description=__doc__)
  parser.add_argument("--users", type=int, default=480_189)
  parser.add_argument("--movies", type=int, default=17_770)
  parser.add_argument("--ratings-per-user", type=int, default=20)
  parser.add_argument("--work-dir", default="/tmp/nfrec-bench")
  parser.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
  args = parser.parse_args(argv)
  model_dir = os.path.join(args.work_dir, f"batch-{args.users}x{args.movies}", "1")
  if not os.path.exists(os.path.join(model_dir, "saved_model.pb")):
    from benchmarks import synthetic_model

    started = time.time()
    synthetic_model.build_serving_model(
      model_dir, args.users, args.movies, ratings_per_user=args.ratings_per_user
    )
    print(f"built {model_dir} in {time.time() - started:.0f} s", flush=True)
  output_dir = os.path.join(args.work_dir, "batch-recommendations")
  report = export_in_child(model_dir, output_dir)
  sizes = {
    name: os.path.getsize(os.path.join(output_dir, name)) / 1e6 for name in os.listdir(output_dir)
  }
  text = (
    f"Measured on {markdown.machine()} by `nfrec bench batch`: a serving model of "
    f"{args.users:,} users x {args.movies:,} movies (real model code, untrained weights), "
    "every user's top 10 written by `modules/serving/batch.py` in a TensorFlow-only process.\n\n"
    + markdown.table(
      ["users", "rows", "seconds", "users/s", "peak RSS MB", "Parquet MB", "CSV MB"],
      [
        [
          f"{report['users']:,}",
          f"{report['rows']:,}",
          report["seconds"],
          f"{report['users_per_second']:,.0f}",
          f"{report['peak_rss_mb']:,.0f}",
          f"{sizes.get('recommendations.parquet', 0):,.0f}",
          f"{sizes.get('recommendations.csv', 0):,.0f}",
        ]
      ],
    )
  )
  print(text)
  if not args.no_doc:
    markdown.update_section("batch", text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
