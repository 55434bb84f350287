"""ServingModelBuilder's index (builder.build_index) over a real (tiny) core model."""

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import synthetic_model
from components.serving_model_builder import builder
from modules import interactions
from modules.trainer import export
from modules.trainer import model as model_lib
from pipeline import config as config_lib
from tests.conftest import CATALOG, KNOWN, MOVIES, USERS


def test_the_index_holds_every_catalog_movie_and_every_users_history(core):
  biases = core.model.movie_retrieval_bias.embeddings
  untouched = biases.numpy()
  biases.assign(np.array([[0.5], [-0.25], [1.0], [0.0], [2.0]], np.float32))  # + the OOV row
  try:
    index, report = builder.build_index(core, MOVIES, len(USERS), CATALOG, KNOWN)
  finally:
    biases.assign(untouched)  # the core fixture is shared
  # The vocabulary's movies first (row = vocabulary index), then the cold catalog movie.
  assert index.movie_ids.tolist() == MOVIES + ["500"]
  assert index.titles.tolist()[-1] == "Heat Returns" and index.years.tolist()[-1] == 2006
  assert index.movie_counts.tolist() == [2, 1, 0, 0, 0] and index.num_vocabulary_movies == 4
  assert report["movies_without_ratings"] == 1 and report["indexed_movies"] == 5
  # Its popularity term is at most the least popular known movie's, never the
  # untrained OOV row's 2.0 (cold_retrieval_bias below).
  biases = index.candidate_vectors[:, -1]
  assert biases[:4].tolist() == [0.5, -0.25, 1.0, 0.0] and biases[4] <= -0.25
  # Each known user's query comes from their history: user 0 and 1 differ from the
  # OOV user 2, who has none.
  assert index.user_queries.shape == (3, index.candidate_vectors.shape[1])
  assert not np.allclose(index.user_queries[0], index.user_queries[2])
  splits, rated = index.rated_row_splits, index.rated_movies
  assert [rated[splits[u] : splits[u + 1]].tolist() for u in range(3)] == [[0, 1], [0], []]


def test_user_vectors_come_back_in_vocabulary_order_whatever_the_calls_order(core):
  """Users are called in order of history length (user 2 has none, user 0 two ratings);
  each row still holds its own user's output, as a call for that user alone gives it."""
  histories = interactions.Histories(KNOWN, len(USERS))
  together = builder.user_vectors(core, histories, len(USERS))
  window = int(core.history_window)
  for user in range(len(USERS)):
    movies, ratings, length = histories.padded(np.array([user]), window)
    alone = core.user_tower(
      tf.constant([user], tf.int64), tf.constant(movies), tf.constant(ratings), tf.constant(length)
    )
    for name, values in together.items():
      np.testing.assert_allclose(values[user], alone[name].numpy()[0], rtol=1e-5, atol=1e-6)
  assert not np.allclose(together["query"][0], together["query"][2])


@pytest.mark.parametrize("query_window, pooled", [(0, 2), (4, 4)])
def test_the_exported_user_tower_pools_the_query_window(tmp_path, query_window, pooled):
  """The builder pads every user's history to the core model's window, and a request's
  ratings are pooled the same way: query_history_window, else the training window."""
  export_dir = synthetic_model.export_core(
    str(tmp_path),
    USERS,
    MOVIES,
    CATALOG,
    history_window=2,
    recent_window=1,
    query_history_window=query_window,
  )
  core = tf.saved_model.load(export_dir)
  assert int(core.history_window) == pooled

  def query(movies, ratings):
    return core.user_tower(
      tf.constant([0], tf.int64),
      tf.constant([movies], tf.int64),
      tf.constant([ratings], tf.float32),
      tf.constant([len(movies)], tf.int64),
    )["query"].numpy()

  # Four ratings against their last three: the same query only when two are pooled.
  four, last_three = query([0, 1, 2, 3], [5.0, 1.0, 4.0, 2.0]), query([1, 2, 3], [1.0, 4.0, 2.0])
  assert np.allclose(four, last_three) == (pooled == 2)


def test_the_exported_model_rates_with_its_rating_towers_and_retrieves_with_the_towers(tmp_path):
  hparams = config_lib.PRESETS["default"].replace(
    rating_towers=True, embedding_dim=8, history_window=2, recent_window=1
  )
  model = model_lib.build_model(
    len(USERS),
    len(MOVIES),
    hparams,
    movie_counts=np.ones(len(MOVIES)),
    global_mean=3.5,
    features=model_lib.MovieFeatures.for_vocabulary(CATALOG, MOVIES),
  )
  model.start_rating_stage(0.001)
  for name in ("user_embedding", "movie_embedding", "history_embedding", "token_embedding"):
    twin = getattr(model, model_lib.RATING_PREFIX + name)  # as if the stage had trained them
    twin.set_weights([weights + 0.5 for weights in twin.get_weights()])
  export_dir = str(tmp_path / "core_model")
  vocabularies = synthetic_model.VocabularyFiles(str(tmp_path), USERS, MOVIES)
  export.export_core_model(model, vocabularies, export_dir)
  core = tf.saved_model.load(export_dir)

  users, movies = tf.constant([0, 1], tf.int64), tf.constant([1, 2], tf.int64)
  history = tf.constant([[0, 1], [2, 0]], tf.int64), tf.constant([[5.0, 2.0], [4.0, 0.0]])
  lengths = tf.constant([2, 1], tf.int64)
  user = core.user_tower(users, *history, lengths)
  movie = core.movie_tower(
    movies, tf.gather(model.title_tokens, movies), tf.gather(model.year_bucket, movies)
  )
  vector, bias = model.user_tower(users, model.history_sums(*history, lengths))
  movie_vector, movie_bias, _ = model.movie_tower(movies)
  assert user["vector"].shape == (2, 16)  # [retrieval | rating]
  np.testing.assert_allclose(user["vector"], vector, rtol=1e-6)
  np.testing.assert_allclose(user["query"][:, :8], vector[:, :8], rtol=1e-6)
  rating = core.rate(user["vector"], user["bias"], movie["vector"], movie["bias"]).numpy()
  expected = model.rate(vector, bias, movie_vector, movie_bias).numpy()
  np.testing.assert_allclose(rating, expected, rtol=1e-5)
  # The rating towers' part decides the rating: the retrieval part in its place rates apart.
  retrieval_only = model.rate(
    tf.concat([vector[:, :8]] * 2, 1), bias, tf.concat([movie_vector[:, :8]] * 2, 1), movie_bias
  ).numpy()
  assert not np.allclose(rating, retrieval_only)
