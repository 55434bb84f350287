"""Catalog movies without a training rating ("cold" movies), as the served index holds them.

The serving model can recommend every catalog movie: the rated ones by their trained
vectors, the others from their title and year alone (the OOV id row), with a popularity
term for half a rating. Validation ranks the same candidates, so model selection and the
Tuner see what the served index will recommend, not only the rated movies.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from modules.transform import examples

COLD_PSEUDO_COUNT = 0.5  # ratings a movie nobody has rated yet is credited with


def candidate_rows(movie_vocabulary: list[str], catalog: examples.Catalog) -> tuple[list, list]:
  """(movie ids of the candidates, their catalog rows or -1): the vocabulary's movies
  first (candidate row = vocabulary index), then catalog movies without ratings."""
  in_vocabulary = set(movie_vocabulary)
  cold = [movie_id for movie_id in catalog.movie_ids.tolist() if movie_id not in in_vocabulary]
  ids = list(movie_vocabulary) + cold
  return ids, catalog.rows_of(ids).tolist()


def cold_retrieval_bias(biases: np.ndarray, counts: np.ndarray) -> float:
  """The retrieval bias of a movie nobody has rated yet.

  The learned retrieval bias is the popularity term of the score; across known
  movies it grows about linearly with log(ratings). A movie with no rating is
  given the value that line extrapolates to COLD_PSEUDO_COUNT ratings, and never
  more than the least popular known movie's: its title and year must earn its
  place, as the untrained OOV row's bias would not make it.
  """
  rated = counts > 0
  floor = float(biases[rated].min()) if rated.any() else float(biases.min())
  if rated.sum() < 2 or np.ptp(np.log(counts[rated])) == 0:
    return floor
  slope, intercept = np.polyfit(np.log(counts[rated]), biases[rated], 1)
  if slope <= 0:
    return floor
  return min(floor, float(intercept + slope * np.log(COLD_PSEUDO_COUNT)))


def place_cold_bias(
  candidates: np.ndarray, num_rated: int, movie_counts: np.ndarray, has_retrieval_bias: bool
) -> np.ndarray:
  """Sets, in place, the retrieval-bias column (the last) of the cold rows of `candidates`
  (rated movies first, `num_rated` of them with `movie_counts` ratings) to
  cold_retrieval_bias; a model without a retrieval bias has no such column."""
  if has_retrieval_bias and 0 < num_rated < len(candidates):
    candidates[num_rated:, -1] = cold_retrieval_bias(candidates[:num_rated, -1], movie_counts)
  return candidates


@dataclasses.dataclass
class ColdMovies:
  """The content features of the catalog movies outside the movie vocabulary."""

  title_tokens: np.ndarray  # [C, T] int64, as examples.Catalog
  year_bucket: np.ndarray  # [C] int64

  def __len__(self) -> int:
    return len(self.year_bucket)

  @classmethod
  def of_catalog(cls, catalog: examples.Catalog, movie_vocabulary: list[str]) -> ColdMovies:
    _, rows = candidate_rows(movie_vocabulary, catalog)
    return cls(*catalog.features_at(rows[len(movie_vocabulary) :]))
