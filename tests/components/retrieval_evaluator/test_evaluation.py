"""RetrievalEvaluator's gate and blessing, as plain functions."""

import json
import os

import pytest

from components.retrieval_evaluator import evaluation
from nfrec import contracts

REPORT = {"model": {"recall_at_100": 0.30}, "most_popular": {"recall_at_100": 0.25}}


def test_gate_blesses_a_model_that_passes_everything():
  assert evaluation.gate(
    dict(REPORT, baseline_model={"recall_at_100": 0.305}), True, "recall_at_100", 1.0, 0.01
  ) == (True, [])


@pytest.mark.parametrize(
  "report, rating_blessed, expected",
  [
    (REPORT, False, "rating gate"),
    (
      {"model": {"recall_at_100": 0.2}, "most_popular": {"recall_at_100": 0.25}},
      True,
      "below the most-popular baseline",
    ),
    (dict(REPORT, baseline_model={"recall_at_100": 0.32}), True, "worse than the last blessed"),
  ],
)
def test_gate_names_why_it_does_not_bless(report, rating_blessed, expected):
  blessed, reasons = evaluation.gate(report, rating_blessed, "recall_at_100", 1.0, 0.01)
  assert not blessed
  assert len(reasons) == 1 and expected in reasons[0]


def test_the_blessing_has_tfmas_marker_file_and_the_reasons(tmp_path):
  evaluation.write_blessing(str(tmp_path / "yes"), True, [])
  evaluation.write_blessing(str(tmp_path / "no"), False, ["below the most-popular baseline"])
  assert os.path.exists(tmp_path / "yes" / "BLESSED")
  assert os.path.exists(tmp_path / "no" / "NOT_BLESSED")
  assert not os.path.exists(tmp_path / "no" / "BLESSED")
  with open(tmp_path / "no" / contracts.GATE_FILE) as f:
    assert json.load(f) == {"blessed": False, "reasons": ["below the most-popular baseline"]}
