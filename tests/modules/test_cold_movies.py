"""The catalog movies without training ratings, as the served index and validation rank
them (modules/cold_movies.py)."""

import numpy as np
import pytest

from modules import cold_movies
from tests.conftest import CATALOG, MOVIES


def test_a_cold_movie_is_credited_with_half_a_rating_on_the_popularity_line():
  counts = np.array([1, 10, 100, 0])
  biases = np.log(counts.clip(1)).astype(np.float32) * 0.5 + 1.0  # bias = 1 + 0.5 log(n)
  cold = cold_movies.cold_retrieval_bias(biases, counts)
  assert cold == pytest.approx(1.0 + 0.5 * np.log(0.5), abs=1e-5)
  # No usable relation (popularity does not raise the bias): the least popular's.
  assert cold_movies.cold_retrieval_bias(np.array([2.0, 1.0, 0.5]), np.array([1, 10, 100])) == 0.5


def test_the_cold_movies_are_the_catalog_movies_outside_the_vocabulary_with_their_features():
  ids, rows = cold_movies.candidate_rows(MOVIES, CATALOG)
  assert ids == MOVIES + ["500"] and rows == [0, 1, 2, 3, 4]
  cold = cold_movies.ColdMovies.of_catalog(CATALOG, MOVIES)
  assert len(cold) == 1
  np.testing.assert_array_equal(cold.title_tokens, CATALOG.title_tokens[4:5])
  np.testing.assert_array_equal(cold.year_bucket, CATALOG.year_bucket[4:5])
  # A vocabulary holding the whole catalog leaves none.
  assert len(cold_movies.ColdMovies.of_catalog(CATALOG, MOVIES + ["500"])) == 0


def test_only_the_cold_rows_bias_column_is_placed_and_only_for_a_model_with_that_column():
  rated = np.array([[0.1, 1.0], [0.2, 2.0], [0.3, 3.0]], np.float32)  # [vector, retrieval bias]
  counts = np.array([1, 2, 3])
  candidates = np.concatenate([rated, [[0.4, 9.0]]])  # one cold row, the OOV row's bias 9.0
  placed = cold_movies.place_cold_bias(candidates.copy(), 3, counts, has_retrieval_bias=True)
  np.testing.assert_array_equal(placed[:3], rated)
  assert placed[3, 0] == pytest.approx(0.4)
  assert placed[3, 1] == pytest.approx(cold_movies.cold_retrieval_bias(rated[:, 1], counts))
  # Without a retrieval bias the last column is a vector component: left alone.
  untouched = cold_movies.place_cold_bias(candidates.copy(), 3, counts, has_retrieval_bias=False)
  np.testing.assert_array_equal(untouched, candidates)
  # No cold rows, or no rated ones to extrapolate from: nothing to place.
  np.testing.assert_array_equal(cold_movies.place_cold_bias(rated.copy(), 3, counts, True), rated)
  np.testing.assert_array_equal(
    cold_movies.place_cold_bias(candidates.copy(), 0, counts[:0], True), candidates
  )
