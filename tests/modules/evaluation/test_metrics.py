"""Retrieval metrics and baselines, on cases small enough to check by hand."""

import numpy as np
import pytest

from modules.evaluation import metrics
from modules.serving import serving_model


def _ranker(scores, rated_pairs, num_users=2):
  scores = np.array(scores, np.float32)
  users = np.array([u for u, _ in rated_pairs], np.int64)
  movies = np.array([m for _, m in rated_pairs], np.int64)
  # Grouped by user exactly as the serving model stores what it excludes.
  rated = serving_model.interactions_index(
    users, movies, np.ones(len(users)), num_users=num_users, num_movies=scores.shape[1]
  )
  return metrics.Ranker(
    num_users=num_users,
    num_movies=scores.shape[1],
    rated_row_splits=rated["rated_row_splits"],
    rated_movies=rated["rated_movies"],
    scores=lambda user_index: scores[user_index],
  )


# User 0 ranks movies 0 > 1 > 2 > 3 > 4 and rated movie 0 in training;
# user 1 ranks 4 > 3 > 2 > 1 > 0 and rated nothing.
SCORES = [[5, 4, 3, 2, 1], [1, 2, 3, 4, 5]]
RATED = [(0, 0)]


def test_scores_above_counts_the_strictly_higher_scores_of_each_value():
  rng = np.random.default_rng(0)
  scores = rng.integers(0, 20, 500).astype(np.float32)  # many ties
  few = np.concatenate([scores[[3, 3, 10, 499]], [-1.0, 25.0, 7.5]]).astype(np.float32)
  many = np.concatenate([few, rng.integers(-2, 22, 40)]).astype(np.float32)
  assert len(few) <= metrics.FEW_VALUES < len(many)  # both ways of counting
  for values in (few, many, few[:0]):
    expected = [int((scores > value).sum()) for value in values]
    assert metrics.scores_above(scores, values).tolist() == expected


def test_top_k_accuracy_counts_pairs_with_nothing_excluded():
  ranker = _ranker(SCORES, RATED)
  # Pairs: (0, movie 1) rank 1; (0, movie 4) rank 4; (1, movie 4) rank 0.
  result = metrics.retrieval_metrics(
    ranker,
    np.array([0, 0, 1]),
    np.array([1, 4, 4]),
    np.array([5.0, 2.0, 4.0]),
    ks=(1, 2),
    curve_ks=(),
  )
  assert result["top_1_accuracy"] == pytest.approx(1 / 3)
  assert result["top_2_accuracy"] == pytest.approx(2 / 3)


def test_filtered_recall_and_ndcg_exclude_training_movies_and_count_only_relevant():
  ranker = _ranker(SCORES, RATED)
  # User 0: relevant {1, 3} (rated >= 4); movie 0 is excluded, so the list is 1, 2, 3, 4.
  # User 1: relevant {0}; the list is 4, 3, 2, 1, 0.
  result = metrics.retrieval_metrics(
    ranker,
    np.array([0, 0, 0, 1]),
    np.array([1, 3, 2, 0]),
    np.array([4.0, 5.0, 3.0, 4.5]),
    ks=(1, 3),
    curve_ks=(5,),
  )
  assert result["users_with_relevant"] == 2
  assert result["recall_at_1"] == pytest.approx((1 / 2 + 0) / 2)
  assert result["recall_at_3"] == pytest.approx((2 / 2 + 0) / 2)
  assert result["recall_curve"]["5"] == pytest.approx((1 + 1) / 2)
  ideal = 1 + 1 / np.log2(3)
  assert result["ndcg_at_3"] == pytest.approx((1 + 1 / np.log2(4)) / ideal / 2)


def test_unknown_users_are_left_out_and_unknown_movies_are_misses():
  ranker = _ranker(SCORES, RATED)
  result = metrics.retrieval_metrics(
    ranker,
    np.array([1, 1, 2]),
    np.array([4, 5, 0]),
    np.array([5.0, 5.0, 5.0]),
    ks=(5,),
    curve_ks=(),
  )
  assert result["unknown_user_pairs"] == 1
  assert result["eval_pairs"] == 2
  assert result["top_5_accuracy"] == pytest.approx(1 / 2)  # movie 5 is not in the catalog
  assert result["recall_at_5"] == pytest.approx(1 / 2)


def test_popularity_ranker_scores_every_user_the_same():
  ranker = metrics.popularity_ranker(np.array([3, 9, 1, 0, 0]), _ranker(SCORES, RATED))
  result = metrics.retrieval_metrics(
    ranker, np.array([1]), np.array([1]), np.array([5.0]), ks=(1,), curve_ks=()
  )
  assert result["recall_at_1"] == 1.0


def test_bias_baseline_beats_the_global_mean_on_biased_data():
  rng = np.random.default_rng(0)
  users, movies = rng.integers(0, 50, 5000), rng.integers(0, 40, 5000)
  user_bias, movie_bias = rng.normal(0, 0.5, 50), rng.normal(0, 0.5, 40)
  ratings = 3.5 + user_bias[users] + movie_bias[movies] + rng.normal(0, 0.3, 5000)
  train = (users[:4000], movies[:4000], ratings[:4000])
  eval_ = (users[4000:], movies[4000:], ratings[4000:])
  result = metrics.rating_baselines(train, eval_, num_users=50, num_movies=40)
  assert result["global_mean"]["rmse"] == pytest.approx(
    np.sqrt(np.mean((ratings[4000:] - ratings[:4000].mean()) ** 2))
  )
  assert result["user_movie_bias"]["rmse"] < 0.5 * result["global_mean"]["rmse"]


def test_rmse_by_activity_buckets_by_known_ratings():
  buckets = metrics.rmse_by_activity(
    np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 3.0]), np.array([2, 30, 300]), edges=(1, 10)
  )
  assert [(b["known_ratings"], b["eval_pairs"]) for b in buckets] == [("1-9", 1), ("10+", 2)]
  assert buckets[1]["rmse"] == pytest.approx(np.sqrt(0.5))


def test_recall_by_activity_scores_light_and_heavy_users_apart():
  # Two users, three movies; each scores movie 0 best. User 0 (light) liked movie 0,
  # user 1 (heavy) liked movie 2, ranked last.
  ranker = metrics.Ranker(
    num_users=2,
    num_movies=3,
    rated_row_splits=np.array([0, 0, 0]),
    rated_movies=np.zeros(0, np.int64),
    scores=lambda users: np.tile([3.0, 2.0, 1.0], (len(users), 1)),
  )
  buckets = metrics.recall_by_activity(
    ranker,
    np.array([0, 1]),
    np.array([0, 2]),
    np.array([5.0, 5.0]),
    user_counts=np.array([3, 40]),
    k=1,
    edges=(1, 10),
  )
  assert [(b["known_ratings"], b["users"], b["recall_at_1"]) for b in buckets] == [
    ("1-9", 1, 1.0),
    ("10+", 1, 0.0),
  ]
