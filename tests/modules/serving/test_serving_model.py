"""The serving model: built from a real (tiny) core model, saved, loaded with TF only."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from modules.serving import serving_model
from nfrec import contracts
from tests.conftest import INTERACTIONS, TOP_K, USERS, save_serving_model, tiny_serving_model


def test_interactions_index_groups_rated_movies_per_user_and_counts_popularity():
  stats = serving_model.interactions_index(*INTERACTIONS, num_users=3, num_movies=4)
  splits, rated = stats["rated_row_splits"], stats["rated_movies"]
  assert [rated[splits[u] : splits[u + 1]].tolist() for u in range(3)] == [[0, 1], [0], []]
  assert stats["movie_counts"].tolist() == [2, 1, 0, 0]
  assert stats["global_mean_rating"] == pytest.approx(4.0)
  # Damped: (sum + 5 * global mean) / (count + 5); no rating at all gives the global mean.
  assert stats["user_mean_rating"].tolist() == pytest.approx([(8 + 20) / 7, (4 + 20) / 6, 4.0])
  assert stats["movie_mean_rating"].tolist() == pytest.approx(
    [(9 + 20) / 7, (3 + 20) / 6, 4.0, 4.0]
  )


def test_interactions_index_ignores_out_of_vocabulary_rows():
  stats = serving_model.interactions_index(
    np.array([0, 3]), np.array([4, 1]), np.array([1.0, 2.0]), num_users=3, num_movies=4
  )
  assert stats["rated_movies"].size == 0


TF_ONLY_CHECK = r"""
import json, sys
import tensorflow as tf
if len(sys.argv) > 2:
  import scann  # registers the ScaNN ops, as a ScaNN-enabled server would
model = tf.saved_model.load(sys.argv[1])
recommend = model.signatures["recommend"](user_id=tf.constant(["10", "20", "nobody", ""]))
rating = model.signatures["predict_rating"](
    user_id=tf.constant(["10", "10", "nobody", "nobody"]),
    movie_id=tf.constant(["300", "999", "100", "999"]))
cold = model.signatures["predict_rating"](
    user_id=tf.constant(["10"]), movie_id=tf.constant(["500"]))
example = tf.train.Example(features=tf.train.Features(feature={
    "User_ID": tf.train.Feature(int64_list=tf.train.Int64List(value=[10])),
    "Movie_ID": tf.train.Feature(int64_list=tf.train.Int64List(value=[300]))}))
by_example = model.signatures["serving_examples"](
    examples=tf.constant([example.SerializeToString()]))
from_ratings = model.signatures["recommend_from_ratings"](
    movie_ids=tf.constant([["100", "300", ""], ["999", "200", ""], ["", "", ""],
                           ["999", "abc", ""], ["500", "", ""]]),
    ratings=tf.constant([[5.0, 2.0, 0.0], [0.5, 4.0, 0.0], [0.0] * 3, [4.0, 4.0, 0.0],
                         [5.0, 0.0, 0.0]]))
alone = model.signatures["recommend_from_ratings"](
    movie_ids=tf.constant([["999", "200"]]), ratings=tf.constant([[0.5, 4.0]]))
rating_from_ratings = model.signatures["predict_rating_from_ratings"](
    movie_ids=tf.constant([["100", "200"], ["", ""], ["999", ""]]),
    ratings=tf.constant([[5.0, 3.0], [0.0, 0.0], [4.0, 0.0]]),
    movie_id=tf.constant(["300", "300", "100"]))
as_of = lambda outputs: {k: v.numpy().tolist() for k, v in outputs.items()}
print(json.dumps({
    "signatures": sorted(model.signatures.keys()),
    "recommend": as_of(recommend),
    "dtypes": {k: v.dtype.name for k, v in recommend.items()},
    "from_ratings": as_of(from_ratings),
    "from_ratings_dtypes": {k: v.dtype.name for k, v in from_ratings.items()},
    "alone": as_of(alone),
    "rating_from_ratings": as_of(rating_from_ratings),
    "catalog": dict(zip([m.decode() for m in model.movie_ids.numpy().tolist()],
                        model.movie_training_ratings.numpy().tolist())),
    "rating": as_of(rating),
    "by_example": by_example["rating"].numpy().tolist(),
    "cold": as_of(cold),
    "tfrs_loaded": any(m.startswith("tensorflow_recommenders") for m in sys.modules),
}, default=lambda b: b.decode()))
"""


def _call_in_fresh_process(model_dir, *extra):
  env = contracts.tf_only_environment()
  return subprocess.run(
    [sys.executable, "-c", TF_ONLY_CHECK, model_dir, *extra],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
    cwd="/",
  )


@pytest.fixture(scope="module")
def tf_only_answers(saved_model_dir):
  """Calls every signature in a fresh process that imports only TensorFlow."""
  result = _call_in_fresh_process(saved_model_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def test_signatures_of_the_serving_contract(tf_only_answers):
  assert tf_only_answers["signatures"] == [
    "predict_rating",
    "predict_rating_from_ratings",
    "recommend",
    "recommend_from_ratings",
    "serving_default",
    "serving_examples",
  ]
  assert not tf_only_answers["tfrs_loaded"]
  recommend_dtypes = {
    "movie_ids": "string",
    "titles": "string",
    "years": "int64",
    "scores": "float32",
    "popular_fallback": "bool",
  }
  assert tf_only_answers["dtypes"] == recommend_dtypes
  assert tf_only_answers["from_ratings_dtypes"] == recommend_dtypes


def test_the_catalog_holds_movies_without_ratings_flagged_with_zero(tf_only_answers):
  assert tf_only_answers["catalog"] == {"100": 2, "200": 1, "300": 0, "400": 0, "500": 0}


def test_recommend_excludes_rated_movies_and_flags_unknown_users(tf_only_answers):
  out = tf_only_answers["recommend"]
  assert [len(row) for row in out["movie_ids"]] == [TOP_K] * 4
  # User 10 rated 100 and 200: three movies left for four slots, the last is padding.
  # Movie 500 has no rating at all: it is recommended from its title and year.
  assert sorted(out["movie_ids"][0][:3]) == ["300", "400", "500"]
  assert out["movie_ids"][0][3] == "" and out["scores"][0][3] == -np.inf
  assert out["titles"][0][3] == "" and out["years"][0][3] == 0
  assert sorted(out["movie_ids"][1]) == ["200", "300", "400", "500"]  # user 20 rated 100
  assert out["popular_fallback"] == [False, False, True, True]
  # Unknown and empty ids get the most popular movies, never a guess.
  assert out["movie_ids"][2] == out["movie_ids"][3]
  assert out["movie_ids"][2][:2] == ["100", "200"]
  assert out["titles"][2][:2] == ["Hamlet", "Hamlet"]  # same title, different movies
  assert out["years"][2][:2] == [1948, 1996]
  assert out["scores"][0] == sorted(out["scores"][0], reverse=True)


def test_predict_rating_is_clipped_and_falls_back_for_unknown_ids(tf_only_answers):
  out = tf_only_answers["rating"]
  assert all(1.0 <= r <= 5.0 for r in out["rating"])
  assert out["fallback"] == [False, True, True, True]
  assert out["rating"][2] == pytest.approx(29 / 7)  # unknown user, movie 100: its mean
  assert out["rating"][1] == pytest.approx(4.0)  # user 10, unknown movie: the user's mean
  assert out["rating"][3] == pytest.approx(4.0)  # both unknown: the global mean
  assert tf_only_answers["by_example"] == pytest.approx([out["rating"][0]])
  # A catalog movie without ratings is rated by the model (its content vector).
  assert tf_only_answers["cold"]["fallback"] == [False]


def test_recommend_from_ratings_reads_the_given_ratings_at_request_time(tf_only_answers):
  out = tf_only_answers["from_ratings"]
  assert [len(row) for row in out["movie_ids"]] == [TOP_K] * 5
  # Row 0 gave 100 and 300: never recommended back; three left, the last slot padding.
  assert sorted(out["movie_ids"][0][:3]) == ["200", "400", "500"]
  assert out["movie_ids"][0][3] == "" and out["scores"][0][3] == -np.inf
  # Row 1: the unknown id 999 is ignored, 200 is excluded.
  assert sorted(out["movie_ids"][1]) == ["100", "300", "400", "500"]
  # An unknown id changes nothing: the same answer as the row without it.
  assert out["movie_ids"][1] == tf_only_answers["alone"]["movie_ids"][0]
  assert out["scores"][1] == pytest.approx(tf_only_answers["alone"]["scores"][0])
  assert out["popular_fallback"] == [False, False, True, True, True]
  # An empty row, a row of unknown ids, a row of a movie without training ratings
  # (no learned history): the popular list, flagged.
  popular = tf_only_answers["recommend"]["movie_ids"][2]
  assert out["movie_ids"][2] == out["movie_ids"][3] == out["movie_ids"][4] == popular
  assert out["scores"][0][:3] == sorted(out["scores"][0][:3], reverse=True)


def test_predict_rating_from_ratings_falls_back_without_history(tf_only_answers):
  out = tf_only_answers["rating_from_ratings"]
  assert out["fallback"] == [False, True, True]
  assert all(1.0 <= r <= 5.0 for r in out["rating"])
  assert out["rating"][1] == pytest.approx(4.0)  # movie 300's mean: no rating -> global 4.0
  assert out["rating"][2] == pytest.approx(29 / 7)  # movie 100's damped mean


def test_saved_model_cli_lists_the_signatures(saved_model_dir):
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  result = subprocess.run(
    [cli, "show", "--dir", saved_model_dir, "--all"], capture_output=True, text=True, timeout=300
  )
  assert result.returncode == 0, result.stderr[-2000:]
  for name in (
    "recommend",
    "recommend_from_ratings",
    "predict_rating",
    "predict_rating_from_ratings",
    "serving_examples",
    "serving_default",
  ):
    assert f"signature_def['{name}']" in result.stdout


def test_scann_index_gives_the_same_contract_and_needs_scann_ops(
  core, tmp_path_factory, tf_only_answers
):
  model_dir = save_serving_model(
    tiny_serving_model(core, index_type="scann"), tmp_path_factory, "serving_scann"
  )
  result = _call_in_fresh_process(model_dir, "with-scann")
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])["recommend"]
  exact = tf_only_answers["recommend"]
  # Five candidates: the approximate index finds the exact answer, rated movies excluded.
  assert out["movie_ids"] == exact["movie_ids"]
  assert out["popular_fallback"] == exact["popular_fallback"]
  # Stock TensorFlow without the ScaNN ops cannot load it (as stock TF Serving cannot).
  without = _call_in_fresh_process(model_dir)
  assert without.returncode != 0 and "Scann" in without.stderr


def test_robust_to_odd_ids_large_batches_and_many_threads(saved_model_dir):
  import concurrent.futures

  model = tf.saved_model.load(saved_model_dir)
  recommend = model.signatures["recommend"]
  rate = model.signatures["predict_rating"]
  odd = ["", " ", "用户-169999", "10\n", "-1", "9" * 200, "\x00"]
  out = recommend(user_id=tf.constant(odd))
  assert out["popular_fallback"].numpy().all() and out["movie_ids"].shape == (len(odd), TOP_K)
  rated = rate(user_id=tf.constant(odd), movie_id=tf.constant(["電影"] * len(odd)))
  assert rated["fallback"].numpy().all()
  assert np.all((rated["rating"].numpy() >= 1) & (rated["rating"].numpy() <= 5))

  users = tf.constant((USERS + ["nobody"]) * 2_500)  # a batch of 10,000
  out = recommend(user_id=users)
  assert out["movie_ids"].shape == (10_000, TOP_K) and out["scores"].shape == (10_000, TOP_K)
  assert out["popular_fallback"].numpy().sum() == 2_500

  expected = recommend(user_id=tf.constant(["10"]))["movie_ids"].numpy().tolist()

  def calls(_):
    for _ in range(2_000):
      got = recommend(user_id=tf.constant(["10"]))["movie_ids"].numpy().tolist()
      if got != expected:
        return got
    return expected

  with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
    assert all(result == expected for result in pool.map(calls, range(8)))


@pytest.mark.needs_tf_serving
@pytest.mark.skipif(
  shutil.which("tensorflow_model_server") is None,
  reason="needs tensorflow_model_server on PATH (no PyPI or Debian package here); "
  "the TF-only process tests above stand in for it",
)
def test_tensorflow_model_server_rest_api(saved_model_dir, tmp_path):
  """The real server, if installed (it has no PyPI or Debian package on this machine)."""
  import socket
  import time
  import urllib.request

  server = shutil.which("tensorflow_model_server")
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
  process = subprocess.Popen(
    [
      server,
      f"--rest_api_port={port}",
      "--port=0",
      "--model_name=netflix_recommender",
      f"--model_base_path={os.path.dirname(saved_model_dir)}",
    ],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  try:
    url = f"http://127.0.0.1:{port}/v1/models/netflix_recommender:predict"
    body = json.dumps({"signature_name": "recommend", "instances": ["10", "nobody"]}).encode()
    deadline = time.time() + 60
    while True:
      try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=5) as reply:
          predictions = json.load(reply)["predictions"]
        break
      except OSError:
        if time.time() > deadline:
          raise
        time.sleep(0.5)
    assert [p["popular_fallback"] for p in predictions] == [False, True]
    assert len(predictions[0]["movie_ids"]) == TOP_K
  finally:
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.parametrize(
  "width, k, excluded",
  [
    (17_770, 10, 0.3),
    (1_200, 10, 0.3),
    (4, 3, 0.3),
    (130, 100, 0.3),
    (128, 5, 0.3),
    (130, 100, 0.6),
  ],
)  # fewer than k finite scores: -inf picks, never a padding column
def test_blocked_top_k_is_exactly_top_k(width, k, excluded):
  scores = tf.random.stateless_normal([7, width], seed=[width, k])
  # Ties and excluded (-inf) entries, as the serving model produces them.
  scores = tf.concat([scores[:, : width // 2], tf.round(scores[:, width // 2 :])], axis=1)
  scores = tf.where(
    tf.random.stateless_uniform([7, width], seed=[1, 2]) < excluded, -np.inf, scores
  )
  values, indices = serving_model.blocked_top_k(scores, k)
  expected = tf.math.top_k(scores, k=k)
  np.testing.assert_array_equal(values.numpy(), expected.values.numpy())
  # Same scores at the returned columns (ties may pick other columns of equal score).
  np.testing.assert_array_equal(tf.gather(scores, indices, batch_dims=1).numpy(), values.numpy())
  assert indices.numpy().max() < width
  finite = tf.reduce_sum(tf.cast(values > -np.inf, tf.int32), axis=1).numpy()
  assert all(
    len(set(row[:n])) == n for row, n in zip(indices.numpy().tolist(), finite, strict=True)
  )
