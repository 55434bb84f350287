"""report.html: the verdict, the metrics table, the plots, made from a run summary."""

import os

from nfrec.reporting import report

SUMMARY = {
  "pipeline": "netflix-recommender",
  "data_dir": "/data",
  "preset": "default",
  "wall_time_s": 12.5,
  "blessed": False,
  "pushed": False,
  "gate_reasons": ["recall_at_100 0.2 is below the <most popular> baseline's 0.3"],
  "evaluator_metrics": {"root_mean_squared_error": 0.8123, "mean_absolute_error": 0.61},
  "retrieval_evaluation": {
    "model": {
      "recall_at_10": 0.25,
      "rmse": 0.9,  # RetrievalEvaluator's own; TFMA's wins in the table
      "recall_curve": {"1": 0.1, "10": 0.25},
      "rmse_by_activity": [{"known_ratings": "1-4", "eval_pairs": 3, "rmse": 1.0}],
      "recall_by_activity": [{"known_ratings": "1-4", "users": 2, "recall_at_10": 0.125}],
    },
    "new_users": {
      "users": 40,
      "model": {"recall_at_10": 0.375, "rmse": 0.95},
      "most_popular": {"recall_at_10": 0.1875},
    },
    "most_popular": {"recall_at_10": 0.2, "recall_curve": {"1": 0.05, "10": 0.2}},
    "rating_baselines": {"global_mean": {"rmse": 1.1, "mae": 0.9}},
    "rating_counts": {"train": {"1": 3, "5": 7}, "eval": {"1": 1, "5": 1}},
  },
  "training_history": {"loss": [2.0, 1.5], "val_loss": [2.1, 1.7], "rmse": [1.0, 0.9]},
  "components": {"Trainer": {"state": "COMPLETE", "seconds": 3.0}},
}


def test_the_report_shows_the_verdict_metrics_and_four_plots(tmp_path):
  path = report.write(str(tmp_path), SUMMARY)
  assert path == os.path.join(str(tmp_path), report.REPORT_FILE)
  with open(path) as f:
    page = f.read()
  assert "Not blessed" in page
  assert "&lt;most popular&gt;" in page and "<most popular>" not in page  # escaped
  rows = dict(report.metrics_rows(SUMMARY))
  assert rows["this model"]["rmse"] == 0.8123  # TFMA's RMSE, on the serving signature
  assert rows["most popular"]["recall_at_10"] == 0.2
  assert rows["global mean"]["rmse"] == 1.1
  assert "<td>0.8123</td>" in page and "<td>0.2500</td>" in page
  # The light/heavy-user slice and the new-user protocol, each beside its baseline.
  assert "1-4 known ratings" in page and "<td>0.1250</td>" in page
  assert dict(report.new_user_rows(SUMMARY))["most popular"]["recall_at_10"] == 0.1875
  assert "40 users the model never saw" in page and "<td>0.3750</td>" in page
  # rating distribution, training curves, RMSE by activity, recall@K
  assert page.count("data:image/png;base64,") == 4
  assert not os.path.exists(tmp_path / report.STATISTICS_FILE)  # no statistics given


def test_a_blessed_run_says_where_it_was_pushed(tmp_path):
  summary = dict(SUMMARY, blessed=True, pushed=True, pushed_to="/serving/7", gate_reasons=[])
  with open(report.write(str(tmp_path), summary)) as f:
    assert "Blessed and pushed to /serving/7" in f.read()
