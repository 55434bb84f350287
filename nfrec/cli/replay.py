"""`nfrec replay`: the pipeline living through a data set's history, span by span.

Splits a prepared data folder (with time) into spans, then makes them arrive one
at a time: after each arrival it runs the pipeline (`nfrec run`, a child process,
the same output folder, so the same ML-Metadata, cache and served model), with
or without warm start, and records a row per span: the window, what is new in
the span, the Trainer's epochs and seconds, the metrics on the eval split (each
known user's latest ratings in the window) and on the users never trained on,
the verdict and the pushed version. Prints the table and writes `replay.json`
and `replay.md`, and puts the table at the top of the last run's `report.html`.
"""

from __future__ import annotations

import csv
import html
import json
import os
import shutil
import subprocess
import sys

from nfrec import contracts
from nfrec.data import spans

RECALL = contracts.recall_at(10)
COLUMNS = (
  "span",
  "window ratings",
  "new users",
  "new movies",
  "epochs (selected/run)",
  "trainer s",
  "val Recall@10",
  "eval Recall@10",
  "eval RMSE",
  "new-user Recall@10",
  "verdict",
  "version",
)


def _ids(path: str) -> tuple[set, set]:
  with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))[1:]
  return {r[0] for r in rows}, {r[2] for r in rows}


def _row(span: int, summary: dict | None, error: str, new_users: int, new_movies: int) -> dict:
  row = {"span": span, "new users": new_users, "new movies": new_movies}
  if summary is None:
    return {**row, "verdict": f"stopped: {error[:120]}"}
  trainer = summary.get("trainer_metrics", {})
  retrieval = summary.get("retrieval_evaluation", {})
  new = retrieval.get("new_users") or {}
  row.update(
    {
      "window ratings": sum(summary.get("data", {}).get("ratings", {}).values()),
      "epochs (selected/run)": f"{trainer.get('epochs_selected')}/{trainer.get('epochs_run')}",
      "trainer s": summary["components"].get("Trainer", {}).get("seconds"),
      "val Recall@10": trainer.get(RECALL),
      "eval Recall@10": retrieval.get("model", {}).get(RECALL),
      "eval RMSE": summary.get("evaluator_metrics", {}).get(contracts.TFMA_RMSE),
      "new-user Recall@10": (new.get("model") or {}).get(RECALL),
      "verdict": "pushed"
      if summary["pushed"]
      else ("blessed" if summary["blessed"] else "not blessed"),
      "version": os.path.basename(summary["pushed_to"]) if summary["pushed"] else "",
    }
  )
  return row


def _cell(value) -> str:
  if isinstance(value, float):
    return f"{value:.4f}" if value < 10 else f"{value:.0f}"
  return "" if value is None else str(value)


def render(rows: list[dict]) -> str:
  lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
  lines += ["| " + " | ".join(_cell(row.get(c)) for c in COLUMNS) + " |" for row in rows]
  return "\n".join(lines)


def replay(
  data_dir: str,
  output_dir: str,
  period: str,
  window: int,
  first_span: int,
  warm_start: bool,
  run_args: list[str],
  max_spans: int = 0,
) -> list[dict]:
  work = os.path.join(output_dir, "replay-data")
  arriving = os.path.join(output_dir, "replay-arriving")
  for folder in (work, arriving):
    shutil.rmtree(folder, ignore_errors=True)
  shutil.copytree(data_dir, work, ignore=shutil.ignore_patterns(contracts.REJECTS_FILE))
  counts = spans.split_into_spans(work, period)
  ratings_dir = os.path.join(work, contracts.RATINGS_FOLDER)
  os.makedirs(arriving)
  last = len(counts) if not max_spans else min(len(counts), first_span + max_spans - 1)
  for number, _ in counts[first_span:]:
    shutil.move(os.path.join(ratings_dir, f"span-{number}"), os.path.join(arriving, str(number)))
  seen_users, seen_movies = set(), set()
  for number in range(1, first_span):
    users, movies = _ids(os.path.join(ratings_dir, f"span-{number}", spans.RATINGS_FILE))
    seen_users |= users
    seen_movies |= movies
  rows = []
  for number in range(first_span, last + 1):
    if number > first_span:
      shutil.move(os.path.join(arriving, str(number)), os.path.join(ratings_dir, f"span-{number}"))
    users, movies = _ids(os.path.join(ratings_dir, f"span-{number}", spans.RATINGS_FILE))
    new_users, new_movies = len(users - seen_users), len(movies - seen_movies)
    seen_users |= users
    seen_movies |= movies
    command = [
      sys.executable,
      "-m",
      "nfrec",
      "run",
      "--data",
      work,
      "--output",
      output_dir,
      "--span-window",
      str(window),
      *(["--warm-start"] if warm_start else []),
      *run_args,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    summary = None
    summary_path = os.path.join(output_dir, "run_summary.json")
    error = next(
      (line for line in result.stderr.splitlines() if line.startswith("nfrec run: error")), ""
    )
    if not error and os.path.exists(summary_path):
      with open(summary_path) as f:
        summary = json.load(f)
    rows.append(_row(number, summary, error or result.stderr[-200:], new_users, new_movies))
    print(render(rows[-1:]).splitlines()[-1], flush=True)
  with open(os.path.join(output_dir, "replay.json"), "w") as f:
    json.dump(rows, f, indent=1)
  with open(os.path.join(output_dir, "replay.md"), "w") as f:
    f.write(render(rows) + "\n")
  add_to_report(os.path.join(output_dir, "report.html"), rows, warm_start)
  return rows


def add_to_report(report_path: str, rows: list[dict], warm_start: bool) -> None:
  """Puts the replay table at the top of the last run's report.html."""
  if not os.path.exists(report_path):
    return
  head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
  body = "".join(
    "<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in COLUMNS) + "</tr>"
    for row in rows
  )
  section = (
    f"<h2>Replay, span by span ({'warm start' if warm_start else 'cold start'})</h2>"
    f"<table><tr>{head}</tr>{body}</table>"
  )
  with open(report_path) as f:
    page = f.read()
  with open(report_path, "w") as f:
    f.write(page.replace("<body>", "<body>" + section, 1))
