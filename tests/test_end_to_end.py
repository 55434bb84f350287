"""The whole TFX pipeline on a tiny sample, through the `nfrec` command, twice."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from nfrec import contracts
from tests.conftest import PIPELINE_COMPONENTS

pytestmark = pytest.mark.e2e

NFREC = os.path.join(os.path.dirname(sys.executable), "nfrec")
# Few epochs: this checks the pipeline's wiring and lineage, not model quality (so the
# retrieval gate's comparison with the most-popular baseline is off, but see
# test_a_model_below_the_popularity_baseline_is_not_pushed).
FAST = ["--set", "epochs=4", "--set", "early_stopping_patience=0", "--min-ratio-to-popular", "0"]


def _nfrec(*args, timeout=900, env=None):
  result = subprocess.run([NFREC, *args], capture_output=True, text=True, timeout=timeout, env=env)
  return result


@pytest.fixture(scope="module")
def first_run_temp_dir(tmp_path_factory):
  """The first run's TMPDIR."""
  return str(tmp_path_factory.mktemp("tmpdir"))


@pytest.fixture(scope="module")
def first_run(tiny_data_dir, tmp_path_factory, first_run_temp_dir):
  output = str(tmp_path_factory.mktemp("run"))
  env = {**os.environ, "TMPDIR": first_run_temp_dir}
  result = _nfrec("run", "--data", tiny_data_dir, "--output", output, *FAST, env=env)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
  with open(os.path.join(output, "run_summary.json")) as f:
    return output, json.load(f), result


def test_every_component_ran(first_run):
  _, summary, _ = first_run
  assert set(summary["components"]) == set(PIPELINE_COMPONENTS)
  assert all(c["state"] == "COMPLETE" for c in summary["components"].values())


def test_the_run_leaves_no_temporary_files(first_run, first_run_temp_dir):
  # TFX alone would leave a ~50 MB package of itself per Beam component (local_runner).
  assert os.listdir(first_run_temp_dir) == []


def test_progress_names_each_component_as_it_starts_and_ends_and_each_epoch(first_run):
  """Not a terminal here: one line per event, on stderr (stdout keeps the summary)."""
  _, summary, result = first_run
  lines = result.stderr.splitlines()
  for component in PIPELINE_COMPONENTS:
    started = [i for i, line in enumerate(lines) if line.endswith(f"] {component} started")]
    done = [i for i, line in enumerate(lines) if f"] {component} done in " in line]
    assert len(started) == 1 and len(done) == 1 and started[0] < done[0], component
  (statistics,) = [line for line in lines if "] StatisticsGen done in" in line]
  train = summary["data"]["ratings"]["train"]
  assert f"train {train:,}," in statistics
  epochs = [line for line in lines if "] Trainer selection fit: epoch " in line]
  assert [line.split("epoch ")[1].split(" ")[0] for line in epochs] == ["1/4", "2/4", "3/4", "4/4"]
  assert "val_recall_at_10" in epochs[0] and epochs[-1].endswith("this fit is done")
  refit = [line for line in lines if "] Trainer refit: epoch " in line]
  assert len(refit) == summary["trainer_metrics"]["epochs_selected"]
  assert not any("\r" in line for line in lines)  # no live line outside a terminal


def test_summary_counts_the_data_and_the_split(first_run, tiny_data_dir):
  _, summary, _ = first_run
  with open(os.path.join(tiny_data_dir, "ratings", "Netflix_Dataset_Rating.csv")) as f:
    rows = sum(1 for _ in f) - 1
  data = summary["data"]
  ratings = data["ratings"]
  assert sum(ratings.values()) == rows  # every rating in exactly one split
  # The data has time: each user's latest ratings are eval, those before validation;
  # a seeded 10 % of the users are held out entirely (docs/metrics.md).
  assert data["split_protocol"] == "user_time"
  for split in ("eval", "validation", "new_users"):
    assert 0.03 < ratings[split] / rows < 0.2, ratings
  assert data["catalog_movies"] == 120
  # Every catalog movie is indexed: those without a training rating from title and year.
  assert data["indexed_movies"] == 120 and data["movies_without_ratings"] >= 0
  assert data["indexed_movies_without_title"] == 0
  assert summary["anomalies"] == {split: [] for split in contracts.SPLITS}
  assert summary["movies_anomalies"] == {"catalog": []}


def test_metrics_blessing_and_push(first_run):
  output, summary, result = first_run
  stdout = result.stdout
  evaluator, trainer = summary["evaluator_metrics"], summary["trainer_metrics"]
  assert 0.3 < evaluator["root_mean_squared_error"] < 1.5
  # The Trainer selects on validation, never on eval, and says so.
  assert trainer["split"] == "validation"
  assert 0.3 < trainer["rmse"] < 1.5
  assert 1 <= trainer["epochs_selected"] <= trainer["epochs_run"] == 4
  assert 0.0 <= trainer["recall_at_10"] <= trainer["recall_at_100"] <= 1.0
  assert summary["blessed"] and summary["pushed"]
  version_dir = summary["pushed_to"]
  assert os.path.dirname(version_dir) == os.path.join(
    output, "serving_model", "netflix_recommender"
  )
  assert os.path.basename(version_dir).isdigit()
  assert os.path.exists(os.path.join(version_dir, "saved_model.pb"))
  # TF Serving replays these before it serves the version (modules/serving/warmup.py).
  assert os.path.exists(os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests"))
  assert "Top 10 for user" in stdout


def test_retrieval_metrics_and_baselines_gate_the_push_and_fill_the_report(first_run):
  output, summary, result = first_run
  stdout = result.stdout
  retrieval = summary["retrieval_evaluation"]
  model, popular = retrieval["model"], retrieval["most_popular"]
  for metrics in (model, popular):
    assert 0.0 <= metrics["recall_at_10"] <= metrics["recall_at_100"] <= 1.0
    assert 0.0 < metrics["ndcg_at_100"] <= 1.0
    assert metrics["users_with_relevant"] > 0
  # Light and heavy users, and the users the model never saw (from half their ratings).
  assert model["recall_by_activity"] and model["rmse_by_activity"]
  new = retrieval["new_users"]
  assert new["users"] > 0 and new["model"]["users_with_relevant"] > 0
  assert 0.0 <= new["model"]["recall_at_10"] <= 1.0 and 0.3 < new["model"]["rmse"] < 1.5
  assert "new users" in stdout
  baselines = retrieval["rating_baselines"]
  assert baselines["user_movie_bias"]["rmse"] < baselines["global_mean"]["rmse"]
  assert summary["rating_gate_passed"] and summary["blessed"]
  assert "most popular" in stdout and "rating baselines" in stdout
  with open(os.path.join(output, "report.html")) as f:
    report = f.read()
  assert "Recall@100" in report and "most popular" in report and "Blessed" in report
  assert "New users" in report and "known ratings" in report
  assert report.count("data:image/png;base64,") == 4  # distribution, curves, activity, recall
  assert os.path.exists(os.path.join(output, "statistics.html"))  # TFDV's Facets view


def test_batch_recommendations_of_the_blessed_model_match_the_served_answers(first_run):
  import pyarrow.parquet as pq
  import tensorflow as tf

  _, summary, _ = first_run
  table = pq.read_table(
    os.path.join(summary["artifacts"]["recommendations"], "recommendations.parquet")
  ).to_pandas()
  assert table["user_id"].nunique() == summary["data"]["known_users"]
  model = tf.saved_model.load(summary["pushed_to"])
  users = table["user_id"].unique()[:5].tolist()
  served = model.signatures["recommend"](user_id=tf.constant(users))["movie_ids"].numpy()
  for user, expected in zip(users, served, strict=True):
    got = table[table["user_id"] == user].sort_values("rank")["movie_id"].tolist()
    assert got == [m.decode() for m in expected if m]


def test_pushed_model_answers_in_a_tensorflow_only_process(first_run):
  _, summary, _ = first_run
  check = (
    "import sys, tensorflow as tf\n"
    "m = tf.saved_model.load(sys.argv[1])\n"
    "out = m.signatures['recommend'](user_id=tf.constant(['no-such-user']))\n"
    "assert bool(out['popular_fallback'][0]), out\n"
    "assert out['movie_ids'].shape == (1, 10), out['movie_ids'].shape\n"
    "given = open(sys.argv[2], 'rb').read().split()[:2]  # two most rated movies\n"
    "new = m.signatures['recommend_from_ratings'](\n"
    "    movie_ids=tf.constant([given + [b'']]), ratings=tf.constant([[5.0, 4.0, 0.0]]))\n"
    "assert not bool(new['popular_fallback'][0]), new\n"
    "assert not set(given) & set(new['movie_ids'][0].numpy().tolist())\n"
    "assert not any(n.startswith('tensorflow_recommenders') for n in sys.modules)\n"
    "print('ok')\n"
  )
  env = contracts.tf_only_environment()
  result = subprocess.run(
    [
      sys.executable,
      "-c",
      check,
      summary["pushed_to"],
      contracts.asset_path(summary["pushed_to"], contracts.MOVIE_VOCABULARY),
    ],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
    cwd="/",
  )
  assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_second_run_is_served_from_the_cache(first_run, tiny_data_dir):
  output, first, _ = first_run
  result = _nfrec("run", "--data", tiny_data_dir, "--output", output, *FAST)
  assert result.returncode == 0, result.stderr[-5000:]
  with open(os.path.join(output, "run_summary.json")) as f:
    second = json.load(f)
  states = {name: c["state"] for name, c in second["components"].items()}
  # Everything up to the model is cached. The drift check and the data gate run again:
  # they now compare with the data the first run approved (the same data: no drift).
  # The Evaluator runs again because it now has a baseline (the model the first run
  # blessed): the same model.
  for name in PIPELINE_COMPONENTS[: PIPELINE_COMPONENTS.index("ServingModelBuilder") + 1]:
    # (Resolvers are queries, run every time, never cached.)
    if name not in ("DistributionValidator", "DataGate") and not name.endswith("_resolver"):
      assert states[name] == "CACHED", states
  assert second["blessed"]
  assert second["evaluator_metrics"]["root_mean_squared_error"] == pytest.approx(
    first["evaluator_metrics"]["root_mean_squared_error"]
  )
  # The same model is not pushed again as a new version.
  assert second["pushed_to"] == first["pushed_to"]
  versions = os.listdir(os.path.join(output, "serving_model", "netflix_recommender"))
  assert versions == [os.path.basename(first["pushed_to"])]


def test_bad_data_stops_the_run_before_training_and_the_served_model_stays(
  first_run, tiny_data_dir, tmp_path
):
  output, first, _ = first_run
  bad = tmp_path / "bad"
  shutil.copytree(tiny_data_dir, bad)
  with open(bad / "ratings" / "Netflix_Dataset_Rating.csv", "a") as f:
    f.writelines(f"{900000 + i},9,1,1100000000\n" for i in range(50))  # ratings outside 1..5
  trainer_runs = os.listdir(os.path.join(output, "pipeline", "Trainer", "model"))
  result = _nfrec("run", "--data", str(bad), "--output", output, *FAST)
  assert result.returncode != 0
  error = [line for line in result.stderr.splitlines() if line.startswith("nfrec run: error")]
  assert len(error) == 1 and "data validation failed" in error[0] and "Rating" in error[0], (
    result.stderr[-3000:]
  )
  assert "Traceback" not in result.stderr
  assert os.listdir(os.path.join(output, "pipeline", "Trainer", "model")) == trainer_runs
  versions = os.listdir(os.path.join(output, "serving_model", "netflix_recommender"))
  assert versions == [os.path.basename(first["pushed_to"])]


def test_drifted_data_stops_the_run_before_training_and_the_served_model_stays(
  first_run, tiny_data_dir, tmp_path
):
  output, first, _ = first_run
  drifted = tmp_path / "drifted"
  shutil.copytree(tiny_data_dir, drifted)
  path = drifted / "ratings" / "Netflix_Dataset_Rating.csv"
  lines = path.read_text().splitlines()
  # A bad day: every rating a 5 (valid values, so the schema check passes; only the
  # distribution gives it away).
  rows = [line.split(",") for line in lines[1:]]
  path.write_text("\n".join([lines[0]] + [",".join([u, "5", m, t]) for u, _, m, t in rows]) + "\n")
  trainer_runs = os.listdir(os.path.join(output, "pipeline", "Trainer", "model"))
  result = _nfrec("run", "--data", str(drifted), "--output", output, *FAST)
  assert result.returncode != 0
  error = [line for line in result.stderr.splitlines() if line.startswith("nfrec run: error")]
  assert len(error) == 1 and "drift against the last approved data" in error[0], result.stderr[
    -3000:
  ]
  assert "Rating" in error[0] and "Traceback" not in result.stderr
  assert os.listdir(os.path.join(output, "pipeline", "Trainer", "model")) == trainer_runs
  versions = os.listdir(os.path.join(output, "serving_model", "netflix_recommender"))
  assert versions == [os.path.basename(first["pushed_to"])]


def test_a_degraded_model_is_not_blessed_and_the_last_blessed_model_stays(first_run, tiny_data_dir):
  output, first, _ = first_run
  # Trained for zero epochs: the rating head is untrained noise around the mean.
  result = _nfrec(
    "run",
    "--data",
    tiny_data_dir,
    "--output",
    output,
    "--set",
    "epochs=0",
    "--set",
    "early_stopping_patience=0",
  )
  assert result.returncode == 1, result.stderr[-3000:]  # ran, but nothing to serve from it
  with open(os.path.join(output, "run_summary.json")) as f:
    degraded = json.load(f)
  assert degraded["components"]["Trainer"]["state"] == "COMPLETE"
  assert (
    degraded["evaluator_metrics"]["root_mean_squared_error"]
    > first["evaluator_metrics"]["root_mean_squared_error"]
  )
  assert not degraded["blessed"] and not degraded["pushed"]
  assert any("rating gate" in reason for reason in degraded["gate_reasons"])
  assert "not blessed: the rating gate" in result.stdout
  versions = os.listdir(os.path.join(output, "serving_model", "netflix_recommender"))
  assert versions == [os.path.basename(first["pushed_to"])]


def test_a_model_below_the_popularity_baseline_is_not_pushed(first_run, tiny_data_dir):
  output, first, _ = first_run
  # The same model, judged by a stricter retrieval gate: only RetrievalEvaluator re-runs.
  result = _nfrec(
    "run", "--data", tiny_data_dir, "--output", output, *FAST[:-2], "--min-ratio-to-popular", "100"
  )
  assert result.returncode == 1, result.stderr[-3000:]
  with open(os.path.join(output, "run_summary.json")) as f:
    strict = json.load(f)
  assert strict["components"]["Trainer"]["state"] == "CACHED"
  assert strict["rating_gate_passed"] and not strict["blessed"] and not strict["pushed"]
  assert any("below the most-popular baseline" in r for r in strict["gate_reasons"])
  versions = os.listdir(os.path.join(output, "serving_model", "netflix_recommender"))
  assert versions == [os.path.basename(first["pushed_to"])]


def test_a_run_killed_during_training_resumes_from_the_cache(tiny_data_dir, tmp_path):
  output = str(tmp_path / "run")
  process = subprocess.Popen(
    [NFREC, "run", "--data", tiny_data_dir, "--output", output, *FAST],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
    start_new_session=True,
  )
  trainer_dir = os.path.join(output, "pipeline", "Trainer")
  deadline = time.time() + 600
  while not os.path.isdir(trainer_dir) and process.poll() is None and time.time() < deadline:
    time.sleep(0.5)
  assert process.poll() is None, "the run ended before the Trainer started"
  os.killpg(process.pid, signal.SIGKILL)  # the whole run, mid-training
  process.wait()
  assert not os.path.exists(os.path.join(output, "serving_model"))

  result = _nfrec("run", "--data", tiny_data_dir, "--output", output, *FAST)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(output, "run_summary.json")) as f:
    summary = json.load(f)
  states = {name: c["state"] for name, c in summary["components"].items()}
  for name in ("RatingsExampleGen", "StatisticsGen", "ImportSchemaGen", "Transform"):
    assert states[name] == "CACHED", states
  assert states["Trainer"] == "COMPLETE" and summary["pushed"]
  served = os.path.join(output, "serving_model", "netflix_recommender")
  assert os.listdir(served) == [os.path.basename(summary["pushed_to"])]


def test_a_tuned_run_trains_with_the_choice_of_its_tuner(tiny_data_dir, tmp_path):
  output = str(tmp_path / "run")
  result = _nfrec(
    "run", "--data", tiny_data_dir, "--output", output, *FAST, "--tune", "embedding_dim=[8, 16]"
  )
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
  with open(os.path.join(output, "run_summary.json")) as f:
    summary = json.load(f)
  assert summary["components"]["Tuner"]["state"] == "COMPLETE"
  trials = summary["tuner"]["trials"]  # best first, scored on validation Recall@10
  assert sorted(trial["embedding_dim"] for trial in trials) == [8, 16]
  assert trials[0]["score"] >= trials[1]["score"]
  chosen = summary["tuner"]["chosen"]["embedding_dim"]
  assert chosen == trials[0]["embedding_dim"]
  assert summary["trainer_metrics"]["hparams"]["embedding_dim"] == chosen
  assert f"tuner (validation split, 2 trials, best score {trials[0]['score']:.4f})" in result.stdout
  assert summary["pushed"]


def _readme_curl_commands() -> list[list[str]]:
  """The argv of each curl command in the README's REST examples, as bash would pass it."""
  import re
  import shlex

  with open(os.path.join(os.path.dirname(__file__), "..", "README.md")) as f:
    blocks = re.findall(r"```sh\n(.*?)```", f.read(), flags=re.DOTALL)
  commands = []
  for block in blocks:
    if f"localhost:{contracts.REST_PORT}/v1/models" not in block:
      continue
    words = shlex.split(block.replace("\\\n", " "), comments=True)
    starts = [i for i, word in enumerate(words) if word == "curl"] + [len(words)]
    commands += [words[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]
  return commands


def test_readme_curl_commands_against_nfrec_serve_equal_the_signatures(first_run):
  """`nfrec serve` on the pushed model; the README's curl commands verbatim (its port
  included); each answer is what a direct call of the signature returns."""
  import urllib.request

  import tensorflow as tf

  from tests.nfrec.serving.conftest import assert_same_answer

  _, summary, _ = first_run
  commands = _readme_curl_commands()
  assert len(commands) >= 3, commands
  server = subprocess.Popen(
    [NFREC, "serve", "--model", os.path.dirname(summary["pushed_to"])],
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )
  status_url = f"http://localhost:{contracts.REST_PORT}/v1/models/{contracts.MODEL_NAME}"
  try:
    deadline = time.time() + 180
    while True:
      assert server.poll() is None, server.stdout.read()
      try:
        with urllib.request.urlopen(status_url, timeout=5) as reply:
          assert json.load(reply)["model_version_status"][0]["state"] == "AVAILABLE"
        break
      except OSError:
        assert time.time() < deadline, "nfrec serve did not answer in 180 s"
        time.sleep(0.5)
    signatures = tf.saved_model.load(summary["pushed_to"]).signatures
    for argv in commands:
      result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
      answer = json.loads(result.stdout)
      if "-d" not in argv:  # GET: the version status or the signature defs
        if argv[-1].endswith("/metadata"):
          defs = answer["metadata"]["signature_def"]["signature_def"]
          assert set(signatures) <= set(defs), (argv, sorted(defs))
        else:
          version = os.path.basename(summary["pushed_to"])
          assert answer["model_version_status"][0]["version"] == version, answer
          assert answer["model_version_status"][0]["state"] == "AVAILABLE", answer
        continue
      request = json.loads(argv[argv.index("-d") + 1])
      rows = "instances" in request
      if rows:
        instances = request["instances"]
        inputs = (
          {name: [i[name] for i in instances] for name in instances[0]}
          if isinstance(instances[0], dict)
          else {contracts.INPUT_USER_ID: instances}
        )
      else:
        inputs = request["inputs"]
      expected = signatures[request["signature_name"]](
        **{name: tf.constant(value) for name, value in inputs.items()}
      )
      assert_same_answer(answer, expected, rows)
  finally:
    server.terminate()
    server.wait(timeout=30)
