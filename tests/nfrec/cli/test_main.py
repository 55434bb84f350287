"""Bad input to `nfrec` ends with one clear line and a non-zero exit, never a traceback."""

import os
import subprocess
import sys

NFREC = os.path.join(os.path.dirname(sys.executable), "nfrec")


def _nfrec(*args):
  return subprocess.run([NFREC, *args], capture_output=True, text=True, timeout=300)


def _one_line_error(result, *fragments):
  assert result.returncode != 0
  assert "Traceback" not in result.stderr
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert len(lines) == 1, result.stderr
  for fragment in fragments:
    assert fragment in lines[0], lines[0]


def test_run_on_a_missing_data_folder(tmp_path):
  missing = str(tmp_path / "nowhere")
  _one_line_error(
    _nfrec("run", "--data", missing, "--output", str(tmp_path / "out")),
    os.path.join(missing, "ratings"),
    "missing ratings folder",
  )


def test_run_on_an_empty_ratings_file(tmp_path):
  for name in ("ratings", "movies"):
    (tmp_path / name).mkdir()
    (tmp_path / name / "x.csv").write_text("" if name == "ratings" else "Movie_ID,Year,Name\n")
  _one_line_error(
    _nfrec("run", "--data", str(tmp_path), "--output", str(tmp_path / "out")),
    "x.csv",
    "line 1",
    "empty file",
  )


def test_run_with_an_unknown_hyperparameter(tmp_path):
  _one_line_error(
    _nfrec("run", "--output", str(tmp_path), "--set", "embeding_dim=8"),
    "Unknown hyperparameter 'embeding_dim'",
  )


def test_recommend_without_a_pushed_model(tmp_path):
  _one_line_error(
    _nfrec("recommend", "--user", "1", "--model", str(tmp_path)), str(tmp_path), "no model version"
  )


def test_prepare_with_a_missing_file(tmp_path):
  missing = str(tmp_path / "ratings.csv")
  _one_line_error(
    _nfrec(
      "prepare",
      "--format",
      "netflix-kaggle",
      "--ratings",
      missing,
      "--movies",
      missing,
      "--output",
      str(tmp_path / "out"),
    ),
    missing,
    "no such file",
  )


def test_prepare_with_the_wrong_format(tmp_path):
  _one_line_error(
    _nfrec(
      "prepare",
      "--format",
      "movielens",
      "--input",
      str(tmp_path),
      "--output",
      str(tmp_path / "out"),
    ),
    "no MovieLens ratings here",
  )
  _one_line_error(
    _nfrec("prepare", "--format", "netflix-prize", "--output", str(tmp_path)),
    "--format netflix-prize needs --combined and --titles",
  )
  _one_line_error(
    _nfrec("prepare", "--format", "csv", "--output", str(tmp_path)), "invalid choice: 'csv'"
  )


def test_rate_without_a_pushed_model(tmp_path):
  _one_line_error(
    _nfrec("rate", "--user", "1", "--movie", "2", "--model", str(tmp_path)), "no model version"
  )


def test_compile_kubeflow_with_an_unknown_runner(tmp_path):
  _one_line_error(
    _nfrec(
      "compile-kubeflow",
      "--output",
      str(tmp_path / "p.json"),
      "--data",
      "gs://b/d",
      "--pipeline-output",
      "gs://b/o",
      "--beam-runner",
      "dataflw",
    ),
    "invalid choice: 'dataflw'",
  )


def test_recommend_for_someone_new_from_their_ratings(saved_model_dir):
  model = os.path.dirname(saved_model_dir)
  result = _nfrec("recommend", "--ratings", "Heat:5,100:4", "--model", model)
  assert result.returncode == 0, result.stderr[-2000:]
  lines = result.stdout.splitlines()
  assert lines[0] == "Top 3 for user (from the given ratings)"
  recommended = {line.split()[1] for line in lines[2:]}
  assert recommended == {"200", "400", "500"}  # 300 (Heat) and 100 are not given back
  _one_line_error(
    _nfrec("recommend", "--ratings", "Hamlet:5", "--model", model),
    "2 movies are titled 'Hamlet'",
  )


def test_export_recommendations_writes_every_known_user(saved_model_dir, tmp_path):
  result = _nfrec(
    "export-recommendations", "--model", os.path.dirname(saved_model_dir), "--output", str(tmp_path)
  )
  assert result.returncode == 0, result.stderr[-2000:]
  assert "recommendations for 3 users" in result.stdout
  assert sorted(os.listdir(tmp_path)) == ["recommendations.csv", "recommendations.parquet"]
