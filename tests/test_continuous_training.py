"""Continuous training, end to end: spans arrive, each run warm-starts from the last
blessed model, a drifted span is stopped before training, batch recommendations
follow every pushed version."""

import json
import os
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from nfrec import contracts
from nfrec.data import sample as sample_data
from nfrec.data import spans
from tests.conftest import TINY_SAMPLE

pytestmark = pytest.mark.e2e

NFREC = os.path.join(os.path.dirname(sys.executable), "nfrec")
FAST = ["--set", "epochs=3", "--set", "early_stopping_patience=0", "--min-ratio-to-popular", "0"]
WINDOW = 6


def _nfrec(*args):
  return subprocess.run([NFREC, *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
  """A data folder with monthly spans 1-6 live; spans 7-9 held back to arrive later."""
  root = tmp_path_factory.mktemp("ct")
  data, later = root / "data", root / "later"
  sample_data.write(str(data), TINY_SAMPLE)
  spans.split_into_spans(str(data), "month")
  later.mkdir()
  for n in range(WINDOW + 1, 25):
    source = data / "ratings" / f"span-{n}"
    if n <= WINDOW + 3:
      shutil.copy(source / spans.RATINGS_FILE, later / f"span-{n}.csv")
    shutil.rmtree(source)
  return data, later, str(root / "out")


def _run(data, output):
  result = _nfrec(
    "run",
    "--data",
    str(data),
    "--output",
    output,
    "--warm-start",
    "--span-window",
    str(WINDOW),
    "--change-tolerance",
    "1",
    *FAST,
  )
  summary = None
  if os.path.exists(os.path.join(output, "run_summary.json")):
    with open(os.path.join(output, "run_summary.json")) as f:
      summary = json.load(f)
  return result, summary


def _versions(output):
  return sorted(os.listdir(os.path.join(output, "serving_model", "netflix_recommender")))


def _check_batch_recommendations(summary):
  """Every known user has a list, and no list holds a movie its user rated (the
  served model's own record of what each user rated)."""
  table = pq.read_table(
    os.path.join(summary["artifacts"]["recommendations"], "recommendations.parquet")
  ).to_pandas()
  assert table["user_id"].nunique() == summary["data"]["known_users"]
  model = tf.saved_model.load(summary["pushed_to"])
  with open(contracts.asset_path(summary["pushed_to"], contracts.USER_VOCABULARY)) as f:
    users = [line.strip() for line in f if line.strip()]
  splits, rated = model.rated_row_splits.numpy(), model.rated_movies.numpy()
  movie_ids = [m.decode() for m in model.movie_ids.numpy()]
  recommended = table.groupby("user_id")["movie_id"].apply(set).to_dict()
  checked = 0
  for row, user in enumerate(users):
    seen = {movie_ids[m] for m in rated[splits[row] : splits[row + 1]]}
    assert not seen & recommended[user], user
    checked += bool(seen)
  assert checked > 0.9 * len(users)


def test_spans_arrive_warm_start_and_a_drifted_span_is_stopped(live):
  data, later, output = live
  # Span 6 (with the 5 before it): a cold start.
  result, first = _run(data, output)
  assert result.returncode == 0, result.stderr[-3000:]
  assert first["pushed"] and first["trainer_metrics"]["warm_start"] is None
  _check_batch_recommendations(first)

  # Span 7 arrives: warm-started from the model span 6 pushed, pushed as a new version.
  assert _nfrec("add-span", str(later / "span-7.csv"), "--data", str(data)).returncode == 0
  result, second = _run(data, output)
  assert result.returncode == 0, result.stderr[-3000:]
  warm = second["trainer_metrics"]["warm_start"]
  assert warm["remapped_users"] > 0 and warm["remapped_movies"] > 0 and warm["copied"] > 0
  assert second["pushed"] and len(_versions(output)) == 2
  assert second["data"]["ratings"] != first["data"]["ratings"]  # the window moved
  # The newest span alone is also its own split (what the drift check compares).
  assert 0 < second["data"]["newest_span_ratings"] < sum(second["data"]["ratings"].values())
  _check_batch_recommendations(second)

  # Span 8 is a bad day (every rating a 5): stopped before training, nothing pushed.
  drifted = later / "span-8-drifted.csv"
  lines = (later / "span-8.csv").read_text().splitlines()
  rows = [line.split(",") for line in lines[1:]]
  drifted.write_text("\n".join([lines[0]] + [f"{u},5,{m},{t}" for u, _, m, t in rows]) + "\n")
  assert _nfrec("add-span", str(drifted), "--data", str(data)).returncode == 0
  trainer_runs = os.listdir(os.path.join(output, "pipeline", "Trainer", "model"))
  result, _ = _run(data, output)
  assert result.returncode != 0
  error = [line for line in result.stderr.splitlines() if line.startswith("nfrec run: error")]
  assert len(error) == 1 and "drift against the last approved data" in error[0], result.stderr
  assert os.listdir(os.path.join(output, "pipeline", "Trainer", "model")) == trainer_runs
  assert len(_versions(output)) == 2

  # The span is fixed (its real ratings): it passes, warm-started from span 7's model.
  shutil.copy(later / "span-8.csv", data / "ratings" / "span-8" / spans.RATINGS_FILE)
  result, third = _run(data, output)
  assert result.returncode == 0, result.stderr[-3000:]
  assert third["trainer_metrics"]["warm_start"]["remapped_users"] > 0
  assert third["pushed"] and len(_versions(output)) == 3
  _check_batch_recommendations(third)
