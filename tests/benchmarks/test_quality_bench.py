"""`nfrec bench quality`: several training seeds of a preset, and their mean row."""

import json
import os

import pytest

from benchmarks import quality_bench
from nfrec import contracts

R10 = contracts.recall_at(10)


@pytest.fixture
def nfrec_calls(monkeypatch):
  """The `nfrec` commands the bench runs, each faked as a run whose summary names its folder."""
  calls = []

  def fake_nfrec(*args):
    calls.append(args)
    output = args[args.index("--output") + 1]
    os.makedirs(output)
    with open(os.path.join(output, "run_summary.json"), "w") as f:
      json.dump({"output": output}, f)

    class Done:
      returncode = 0

    return Done()

  monkeypatch.setattr(quality_bench, "_nfrec", fake_nfrec)
  monkeypatch.setattr(quality_bench, "prepare", lambda work_dir, dataset, shared: "/data")
  return calls


def test_another_seed_runs_in_its_own_folder_with_only_the_seed_changed(tmp_path, nfrec_calls):
  calls = nfrec_calls
  own = quality_bench.run(str(tmp_path), "ml-100k", "default", False, "/shared")
  other = quality_bench.run(str(tmp_path), "ml-100k", "default", False, "/shared", seed=7)
  assert own["output"] != other["output"]
  assert other["output"].endswith("run-ml-100k-default-seed7")
  assert "--set" not in calls[0]
  assert calls[1][-2:] == ("--set", "seed=7")
  output_at = calls[0].index("--output") + 1
  without_output = [call[:output_at] + call[output_at + 1 :] for call in calls]
  assert without_output[0] == without_output[1][:-2]  # nothing else differs
  quality_bench.run(str(tmp_path), "ml-100k", "default", False, "/shared", seed=7)
  assert len(calls) == 2  # a finished run is read back, not run again
  zero = quality_bench.run(str(tmp_path), "ml-100k", "default", False, "/shared", seed=0)
  assert zero["output"].endswith("-seed0") and calls[2][-1] == "seed=0"  # 0 is a seed too


def test_overridden_hyperparameters_run_in_their_own_folder_with_each_seed(tmp_path, nfrec_calls):
  calls = nfrec_calls
  overrides = ("rating_towers=true", "user_hidden_units=[256]")
  plain = quality_bench.run(str(tmp_path), "ml-100k", "default", False, "/shared")
  candidate = quality_bench.run(
    str(tmp_path), "ml-100k", "default", False, "/shared", overrides=overrides
  )
  seeded = quality_bench.run(
    str(tmp_path), "ml-100k", "default", False, "/shared", seed=7, overrides=overrides
  )
  assert len({plain["output"], candidate["output"], seeded["output"]}) == 3
  assert candidate["output"].endswith(
    "run-ml-100k-default-rating_towers_true-user_hidden_units_256_"
  )
  assert calls[1][-4:] == ("--set", "rating_towers=true", "--set", "user_hidden_units=[256]")
  assert calls[2][-6:] == calls[1][-4:] + ("--set", "seed=7")


def test_the_mean_row_gives_each_metric_its_mean_and_range_over_the_seeds():
  rows = [
    ("**default preset**", {R10: 0.50, contracts.RMSE: 0.96, "curve": [0.1]}, {R10: 0.4}, "n"),
    ("**default preset, seed 7**", {R10: 0.56, contracts.RMSE: 0.98, "curve": [0.2]}, None, "n"),
    ("**default preset, seed 13**", {R10: 0.53, "curve": [0.3]}, {R10: 0.5}, "n"),
  ]
  label, values, new_users, note = quality_bench.mean_row("default preset, mean", rows)
  assert label == "**default preset, mean**"
  assert values[R10] == pytest.approx((0.53, 0.50, 0.56))
  assert set(values) == {R10}  # seed 13 has no RMSE: no mean of two of three; no curves
  assert new_users == {}
  assert "3 training seeds" in note
  [rendered] = quality_bench.render("ml-100k", [(label, values, new_users, note)])
  assert rendered[2] == "0.5300 (0.5000-0.5600)"
  assert rendered[5] == ""
