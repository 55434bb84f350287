"""RetrievalEvaluator's gate and blessing, as plain functions."""

import dataclasses
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


def test_the_new_user_protocol_is_the_same_in_bounded_calls(saved_model_dir, monkeypatch):
  """Histories are embedded a bounded number of ratings per call, people of alike given
  lengths together: one person per call gives the same report as all of them at once,
  and so does the same data with the people named in the order of their lengths (the
  calls' order is then theirs: each result goes back to its own person)."""
  import numpy as np
  import tensorflow as tf

  from tests.conftest import MOVIES

  rng = np.random.default_rng(0)
  people, lengths = ["p1", "p2", "p3"], [8, 2, 5]
  user_ids = np.repeat(np.array(people, dtype=object), lengths)
  movie_ids = np.array([MOVIES[i % len(MOVIES)] for i in range(sum(lengths))], dtype=object)
  new = evaluation.RawRatings(
    user_ids=user_ids,
    movie_ids=movie_ids,
    ratings=rng.integers(1, 6, sum(lengths)).astype(np.float32),
    times=np.arange(sum(lengths), dtype=np.int64),
  )
  model = tf.saved_model.load(saved_model_dir)
  at_once = evaluation.new_users(model, new)
  monkeypatch.setattr(evaluation, "GIVEN_RATINGS_PER_CALL", 1)
  one_by_one = evaluation.new_users(model, new)
  assert at_once["users"] == one_by_one["users"] == 3
  for group in ("model", "most_popular"):
    assert one_by_one[group].keys() == at_once[group].keys()
    for name, value in at_once[group].items():
      assert one_by_one[group][name] == (
        value if isinstance(value, dict) else pytest.approx(value, rel=1e-5)
      ), name
  assert np.isfinite(at_once["model"]["rmse"]) and at_once["model"]["eval_pairs"] == 8
  renamed = dataclasses.replace(
    new, user_ids=np.array([{"p1": "p3", "p2": "p1", "p3": "p2"}[u] for u in user_ids], object)
  )
  monkeypatch.undo()
  in_order = evaluation.new_users(model, renamed)
  for group in ("model", "most_popular"):
    for name, value in at_once[group].items():
      assert in_order[group][name] == (
        value if isinstance(value, dict) else pytest.approx(value, rel=1e-5)
      ), name


def test_each_new_user_is_ranked_with_the_query_and_exclusions_of_their_own_ratings(
  saved_model_dir, monkeypatch
):
  """Calls take people in order of given length; the ranker's row p must still hold
  person p's query (as a call for p alone gives it) and exclude p's given movies."""
  import numpy as np
  import tensorflow as tf

  from tests.conftest import MOVIES

  people, lengths = ["p1", "p2", "p3"], [8, 2, 5]  # given 4, 1, 2: called p2, p3, p1
  user_ids = np.repeat(np.array(people, dtype=object), lengths)
  movie_ids = np.array([MOVIES[(i * 3) % len(MOVIES)] for i in range(sum(lengths))], object)
  new = evaluation.RawRatings(
    user_ids=user_ids,
    movie_ids=movie_ids,
    ratings=np.arange(sum(lengths), dtype=np.float32) % 5 + 1,
    times=np.arange(sum(lengths), dtype=np.int64),
  )
  rankers = []
  ranker = evaluation.metrics_lib.Ranker
  monkeypatch.setattr(
    evaluation.metrics_lib, "Ranker", lambda **kw: rankers.append(ranker(**kw)) or rankers[-1]
  )
  model = tf.saved_model.load(saved_model_dir)
  evaluation.new_users(model, new)
  given, _ = evaluation.halves(new)
  (ranked,) = rankers
  for person, part in enumerate(given):
    query, rows, _ = model.query_from_ratings(
      tf.constant([part.movie_ids.tolist()]), tf.constant([part.ratings])
    )
    alone = tf.matmul(query, model.candidate_vectors, transpose_b=True).numpy()[0]
    np.testing.assert_allclose(ranked.scores(np.array([person]))[0], alone, rtol=1e-5)
    splits = ranked.rated_row_splits
    assert sorted(ranked.rated_movies[splits[person] : splits[person + 1]]) == sorted(
      rows[0].numpy()
    )
