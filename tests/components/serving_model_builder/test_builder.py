"""ServingModelBuilder's index (builder.build_index) over a real (tiny) core model."""

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import synthetic_model
from components.serving_model_builder import builder
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
