"""Model quality on real data: our presets and the classic peers, side by side.

  nfrec bench quality [--datasets ml-100k ml-1m netflix-subset] [--presets seed default]
                      [--tune NAME=[VALUE, ...] ...] [--seeds 42 7 13]
                      [--set NAME=VALUE ...]

Prepares each dataset from ../shared/data with `nfrec prepare`, runs the whole
pipeline on it once per preset (`nfrec run`, a child process, one output folder
per dataset and preset), and reads our model's metrics back from the run
summary (RetrievalEvaluator on the eval split, TFMA's RMSE). Then, on the same
run's split artifacts, in its served model's index space and with the same
scoring code (benchmarks/peers.py): most popular and the bias baseline (from
the run itself), EASE, implicit ALS and Surprise SVD, each tuned on validation
only, and the new-user protocol with EASE fold-in. One table per dataset,
written to docs/results.md. With --tune, each preset also runs with a Tuner over
those values (`nfrec run --tune`, validation only), as one more row. With --seeds,
each preset is also fitted with those training seeds (`nfrec run --set seed=N`, the
same splits: the split has its own seed), one row per seed and a row of their mean
with its range, so a target is judged on more than one fit. With --set, each preset
also runs with those hyperparameters overridden (`nfrec run --set`), with its seeds: a
candidate for a preset beside the preset itself. Needs the `bench` extra
(implicit, scikit-surprise).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

import benchmarks
from benchmarks import markdown
from nfrec import contracts
from pipeline import config as config_lib

SHARED = benchmarks.SHARED_DATA
RESULTS_DOC = os.path.join(benchmarks.DOCS_DIR, "results.md")


def dataset_args(shared: str) -> dict[str, list[str]]:
  """`nfrec prepare` arguments of each dataset under the shared data folder."""
  return {
    "ml-100k": ["--format", "movielens", "--input", os.path.join(shared, "ml-100k")],
    "ml-1m": ["--format", "movielens", "--input", os.path.join(shared, "ml-1m")],
    "netflix-subset": [
      "--format",
      "netflix-kaggle",
      "--ratings",
      os.path.join(shared, "netflix-kaggle", "Netflix_Dataset_Rating.subset_242480.csv"),
      "--movies",
      os.path.join(shared, "netflix-kaggle", "Netflix_Dataset_Movie.csv"),
    ],
  }


DATASETS = tuple(dataset_args(SHARED))

RECALL_10, RECALL_100 = contracts.recall_at(10), contracts.recall_at(100)
NDCG_10 = contracts.ndcg_at(10)
HEADER = [
  "data",
  "model",
  "Recall@10",
  "Recall@100",
  "NDCG@10",
  "RMSE",
  "new users Recall@10",
  "new users RMSE",
  "note",
]


def _nfrec(*args) -> subprocess.CompletedProcess:
  return subprocess.run(
    [sys.executable, "-m", "nfrec", *args], capture_output=True, text=True, cwd=benchmarks.REPO_ROOT
  )


def prepare(work_dir: str, dataset: str, shared: str) -> str:
  data_dir = os.path.join(work_dir, f"data-{dataset}")
  if not os.path.isdir(data_dir):
    result = _nfrec("prepare", *dataset_args(shared)[dataset], "--output", data_dir)
    if result.returncode:
      raise RuntimeError(f"nfrec prepare {dataset} failed: {result.stderr[-2000:]}")
  return data_dir


def run(
  work_dir: str,
  dataset: str,
  preset: str,
  force: bool,
  shared: str,
  tune=(),
  seed=None,
  overrides=(),
) -> dict:
  """The run summary of `nfrec run` with the preset (and a Tuner over `tune`, if any; the
  `overrides` NAME=VALUE of its hyperparameters; another training seed than the preset's,
  if given)."""
  output_dir = os.path.join(
    work_dir,
    f"run-{dataset}-{preset}"
    + "".join(f"-{re.sub(r'[^A-Za-z0-9_.]+', '_', override)}" for override in overrides)
    + ("-tuned" if tune else "")
    + (f"-seed{seed}" if seed is not None else ""),
  )
  summary_path = os.path.join(output_dir, "run_summary.json")
  if force or not os.path.exists(summary_path):
    start = time.time()
    result = _nfrec(
      "run",
      "--data",
      prepare(work_dir, dataset, shared),
      "--output",
      output_dir,
      "--preset",
      preset,
      *[arg for values in tune for arg in ("--tune", values)],
      *[arg for override in overrides for arg in ("--set", override)],
      *(["--set", f"seed={seed}"] if seed is not None else []),
    )
    if result.returncode not in (0, 1):  # 1: ran, not blessed; its metrics still count
      raise RuntimeError(f"nfrec run {dataset} {preset} failed: {result.stderr[-2000:]}")
    print(f"{dataset} {preset}: {time.time() - start:.0f} s", flush=True)
  with open(summary_path) as f:
    return json.load(f)


def _load_splits(summary: dict):
  """The run's raw splits, mapped into its served model's tables (peers.Splits)."""
  from tensorflow_metadata.proto.v0 import schema_pb2
  from tfx.types import standard_artifacts
  from tfx.utils import io_utils

  from benchmarks import peers
  from components.retrieval_evaluator import evaluation

  examples = standard_artifacts.Examples()
  examples.uri = summary["artifacts"]["examples"]
  examples.split_names = json.dumps(list(contracts.SPLITS))
  schema = io_utils.parse_pbtxt_file(
    os.path.join(summary["data_dir"], contracts.DATA_SCHEMA_FILE), schema_pb2.Schema()
  )
  spec = evaluation.raw_feature_spec(schema)
  raw = {split: evaluation.read_raw(examples, split, spec) for split in contracts.SPLITS}
  model = evaluation.load_serving_model(summary["artifacts"]["serving_model"])
  return peers.Splits.of(model, raw)


def peer_rows(dataset: str, summary: dict) -> list[tuple]:
  """(name, eval metrics, new-user metrics, note) of the peers on the run's splits."""
  from benchmarks import peers

  splits = _load_splits(summary)
  with open(os.path.join(summary["data_dir"], contracts.DATASET_FILE)) as f:
    scale = json.load(f)
  retrieval = summary["retrieval_evaluation"]
  rows = [
    ("most popular", retrieval["most_popular"], retrieval["new_users"].get("most_popular"), "")
  ]
  for name, values in retrieval["rating_baselines"].items():
    rows.append((name.replace("_", " "), values, None, "RMSE only"))
  for name, run_peer in (
    ("EASE", lambda: peers.ease(splits)),
    ("implicit ALS", lambda: peers.als(splits)),
    ("Surprise SVD", lambda: peers.svd(splits, (scale["rating_min"], scale["rating_max"]))),
  ):
    result = run_peer()
    print(f"{dataset} {name}: {result['seconds']:.0f} s ({result['params']})", flush=True)
    rows.append(
      (
        name,
        result["eval"],
        result.get("new_users"),
        f"tuned on validation: {result['params']}",
      )
    )
  return rows


def model_row(label: str, summary: dict) -> tuple:
  retrieval = summary["retrieval_evaluation"]
  values = dict(retrieval["model"])
  values[contracts.RMSE] = summary["evaluator_metrics"][contracts.TFMA_RMSE]  # TFMA's
  trainer = summary.get("trainer_metrics", {})
  note = (
    f"{trainer.get('epochs_selected')} epoch{'' if trainer.get('epochs_selected') == 1 else 's'}"
    " selected on validation; "
    + (
      f"{trainer['rating_stage']['epochs_selected']} rating-stage epochs; "
      if trainer.get("rating_stage")
      else ""
    )
    + ("blessed" if summary["blessed"] else "not blessed")
    + f"; run {summary['wall_time_s']:.0f} s"
  )
  if summary.get("tuner"):
    chosen = ", ".join(f"{name}={value}" for name, value in summary["tuner"]["chosen"].items())
    note = f"Tuner chose {chosen} ({len(summary['tuner']['trials'])} trials); " + note
  return (f"**{label}**", values, retrieval["new_users"].get("model"), note)


def mean_row(label: str, rows: list[tuple]) -> tuple:
  """The mean of the model rows of several training seeds, each metric as (mean, lowest,
  highest); a number counts only where every seed has it (curves are left out)."""

  def spread(metrics: list) -> dict:
    keys = set.intersection(
      *({key for key, value in (m or {}).items() if isinstance(value, float)} for m in metrics)
    )
    return {
      key: (
        sum(m[key] for m in metrics) / len(metrics),
        min(m[key] for m in metrics),
        max(m[key] for m in metrics),
      )
      for key in sorted(keys)
    }

  return (
    f"**{label}**",
    spread([values for _, values, _, _ in rows]),
    spread([new for _, _, new, _ in rows]),
    f"mean over {len(rows)} training seeds (lowest-highest)",
  )


def _cell(values, key) -> str:
  value = (values or {}).get(key)
  if isinstance(value, tuple):  # a mean over seeds, with its range
    return f"{value[0]:.4f} ({value[1]:.4f}-{value[2]:.4f})"
  return f"{value:.4f}" if value is not None else ""


def render(dataset: str, rows: list[tuple]) -> list[list]:
  return [
    [
      dataset,
      name,
      _cell(values, RECALL_10),
      _cell(values, RECALL_100),
      _cell(values, NDCG_10),
      _cell(values, contracts.RMSE),
      _cell(new, RECALL_10),
      _cell(new, contracts.RMSE),
      note,
    ]
    for name, values, new, note in rows
  ]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="nfrec bench quality",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
  parser.add_argument(
    "--presets", nargs="+", default=["seed", "default"], choices=sorted(config_lib.PRESETS)
  )
  parser.add_argument(
    "--tune",
    action="append",
    default=[],
    metavar="NAME=[VALUES]",
    help="also run each preset with a Tuner over these values (nfrec run --tune)",
  )
  parser.add_argument(
    "--seeds",
    nargs="+",
    type=int,
    default=[],
    metavar="N",
    help="also fit each preset with these training seeds (a row each, and their mean)",
  )
  parser.add_argument(
    "--set",
    action="append",
    default=[],
    metavar="NAME=VALUE",
    help="also run each preset (and its seeds) with this hyperparameter set (nfrec run --set)",
  )
  parser.add_argument("--shared-data", default=SHARED, help="the shared rating data folder")
  parser.add_argument("--work-dir", default="/tmp/nfrec-quality")
  parser.add_argument("--force", action="store_true", help="rerun even where results exist")
  parser.add_argument("--no-doc", action="store_true", help="do not write docs/results.md")
  args = parser.parse_args(argv)
  if not os.path.isdir(args.shared_data):
    print(f"{args.shared_data}: not found (the shared rating data)", file=sys.stderr)
    return 2
  os.makedirs(args.work_dir, exist_ok=True)
  sections = []
  for dataset in args.datasets:
    summaries, seed_groups = {}, {}
    for preset in args.presets:
      variants = {f"{preset} preset": ()}
      if args.set:
        variants[f"{preset} preset, " + ", ".join(args.set)] = tuple(args.set)
      for variant, overrides in variants.items():
        summaries[variant] = run(
          args.work_dir, dataset, preset, args.force, args.shared_data, overrides=overrides
        )
        if args.seeds:
          labels = [variant]
          for seed in args.seeds:
            if seed != config_lib.PRESETS[preset].seed:
              labels.append(f"{variant}, seed {seed}")
              summaries[labels[-1]] = run(
                args.work_dir,
                dataset,
                preset,
                args.force,
                args.shared_data,
                seed=seed,
                overrides=overrides,
              )
          seed_groups[variant] = labels
      if args.tune:
        summaries[f"{preset} preset, tuned on validation"] = run(
          args.work_dir, dataset, preset, args.force, args.shared_data, tune=args.tune
        )
    # Every preset's run splits the same data with the same seed: the same splits.
    counts = {preset: s["data"]["ratings"] for preset, s in summaries.items()}
    assert len({json.dumps(c, sort_keys=True) for c in counts.values()}) == 1, counts
    first = next(iter(summaries.values()))
    rows = [model_row(label, summary) for label, summary in summaries.items()]
    for preset_label, labels in seed_groups.items():
      seeded = [model_row(label, summaries[label]) for label in labels]
      rows.append(mean_row(f"{preset_label}, mean of {len(labels)} seeds", seeded))
    rows += peer_rows(dataset, first)
    data = first["data"]
    new_users = first["retrieval_evaluation"]["new_users"].get("users", 0)
    sections.append(
      f"### {dataset}\n\nSplit protocol **{data['split_protocol']}**; ratings per split "
      + ", ".join(f"{k} {v:,}" for k, v in data["ratings"].items())
      + f"; {new_users:,} new users scored.\n\n"
      + markdown.table(HEADER, render(dataset, rows))
    )
  text = (
    f"Measured on {markdown.machine()} by `nfrec bench quality`, all rows of a data set in "
    "one run, on the same splits, scored by the same code (docs/metrics.md): Recall/NDCG "
    "filtered (each user's train + validation movies excluded, relevant = rated >= 4), "
    "over the whole catalog; RMSE on the eval pairs (ours: TFMA on the serving signature, "
    "clipped, with fallbacks). New users: held out of training; the first half of each "
    "one's ratings given at request time (ours: `recommend_from_ratings` and "
    "`predict_rating_from_ratings`; EASE: fold-in), scored on the rest. Peers are tuned on "
    "the validation split only and refit on train + validation, as our Trainer is.\n\n"
    + "\n\n".join(sections)
  )
  print(text)
  if not args.no_doc:
    markdown.update_section("quality", text, path=RESULTS_DOC, title="Model quality")
  return 0


if __name__ == "__main__":
  sys.exit(main())
