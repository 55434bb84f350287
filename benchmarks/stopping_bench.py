"""How many epochs early stopping needs: Keras's EarlyStopping rule replayed on the
validation curves that Trainer runs recorded.

Every Trainer run writes the per-epoch validation history of its selection fit to
metrics.json. Replaying the rule on those curves gives, for each patience and
minimum delta, the epoch it would select and how many it would run, without
training again: a rule that selects the same epoch trains the same model (the
fits are seeded), so it changes only the cost. The curves come from real runs:
point it at the output folders of `nfrec bench quality` or `nfrec run`.

  nfrec bench stopping /tmp/nfrec-quality/run-*-default [--reference 4 0.0]
"""

from __future__ import annotations

import argparse
import glob
import json
import os

from benchmarks import markdown
from nfrec import contracts

PATIENCES = (1, 2, 3, 4)
MIN_DELTAS = (0.0, 0.002, 0.005)


def replay(curve: list[float], patience: int, min_delta: float, mode: str = "max"):
  """(selected epoch, epochs run), both counted from 1, as tf.keras EarlyStopping with
  restore_best_weights would give on this monitor curve."""
  sign = 1.0 if mode == "max" else -1.0
  best, best_epoch, wait = None, 0, 0
  for epoch, value in enumerate(curve):
    wait += 1
    if best is None or sign * (value - best) > min_delta:
      best, best_epoch, wait = value, epoch, 0
      continue
    if wait >= patience and epoch > 0:
      return best_epoch + 1, epoch + 1
  return best_epoch + 1, len(curve)


def recorded_curves(output_dirs: list[str], monitor: str) -> dict[str, list[float]]:
  """The monitor's per-epoch history of every Trainer run under the given outputs."""
  from pipeline import config as config_lib
  from pipeline import pipeline as pipeline_lib

  curves = {}
  for output_dir in output_dirs:
    root = config_lib.PipelineConfig(data_dir="", output_dir=output_dir).pipeline_root
    pattern = os.path.join(
      root, pipeline_lib.TRAINER, "model_run", "*", contracts.TRAINER_METRICS_FILE
    )
    for path in sorted(glob.glob(pattern)):
      with open(path) as f:
        history = json.load(f).get("history", {})
      if history.get(monitor):
        run = os.path.relpath(os.path.dirname(path), os.path.dirname(output_dir.rstrip("/")))
        curves[run] = history[monitor]
  return curves


def compare(
  curves: dict[str, list[float]], reference: tuple[int, float], mode: str = "max"
) -> list[list]:
  """One row per rule: runs selecting the reference rule's epoch, the mean monitor value
  at the selected epoch, and the epochs run in all (against the reference's)."""
  chosen = {run: replay(curve, *reference, mode) for run, curve in curves.items()}
  reference_epochs = sum(ran for _, ran in chosen.values())
  rows = []
  for patience in PATIENCES:
    for min_delta in MIN_DELTAS:
      same, values, epochs = 0, [], 0
      for run, curve in curves.items():
        selected, ran = replay(curve, patience, min_delta, mode)
        same += selected == chosen[run][0]
        values.append(curve[selected - 1])
        epochs += ran
      rows.append(
        [
          patience,
          min_delta,
          f"{same} of {len(curves)}",
          f"{sum(values) / len(values):.4f}",
          f"{epochs} ({epochs - reference_epochs:+d})",
        ]
      )
  return rows


HEADER = [
  "patience",
  "min delta",
  "same epoch as the reference rule",
  "mean monitor at the selected epoch",
  "selection epochs run (vs the reference)",
]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="nfrec bench stopping",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("output_dirs", nargs="+", help="output folders of pipeline runs")
  parser.add_argument("--monitor", default="val_recall_at_10")
  parser.add_argument(
    "--reference",
    nargs=2,
    type=float,
    metavar=("PATIENCE", "MIN_DELTA"),
    help="the rule the others are compared with (default: the default preset's)",
  )
  parser.add_argument("--no-doc", action="store_true", help="do not write docs/performance.md")
  args = parser.parse_args(argv)

  from modules.trainer import train
  from pipeline import config as config_lib

  default = config_lib.PRESETS["default"]
  curves = recorded_curves(args.output_dirs, args.monitor)
  if not curves:
    raise SystemExit(
      f"no Trainer metrics.json with a {args.monitor} history under {args.output_dirs}"
    )
  for run, curve in curves.items():
    print(run, " ".join(f"{value:.4f}" for value in curve))
  reference = (
    (int(args.reference[0]), args.reference[1])
    if args.reference
    else (default.early_stopping_patience, default.early_stopping_min_delta)
  )
  table = markdown.table(HEADER, compare(curves, reference, train.monitor_mode(args.monitor)))
  print(table)
  if not args.no_doc:
    listing = "\n".join(
      f"- {run}: " + ", ".join(f"{value:.4f}" for value in curve) for run, curve in curves.items()
    )
    markdown.update_section(
      "stopping",
      f"Measured on {markdown.machine()} by `nfrec bench stopping`: Keras's EarlyStopping rule "
      f"replayed on the {args.monitor} curves of {len(curves)} recorded Trainer runs, each "
      f"rule against patience {reference[0]}, min delta {reference[1]}; the default preset's "
      f"rule is patience {default.early_stopping_patience}, min delta "
      f"{default.early_stopping_min_delta}.\n\n"
      + table
      + "\n\nThe curves (validation, one value per epoch):\n\n"
      + listing,
    )
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
