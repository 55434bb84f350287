"""The in-process client of a pushed model: newest version, titles, fallbacks."""

import os

import pytest

from nfrec.serving import client as serving_client
from tests.conftest import USERS


def test_client_reads_the_newest_version_and_resolves_titles(saved_model_dir):
  recommender = serving_client.Recommender(os.path.dirname(saved_model_dir))
  assert recommender.version_dir == saved_model_dir
  assert recommender.most_active_user() == USERS[0]  # first of the vocabulary asset
  assert recommender.resolve_movie("heat") == "300"
  assert recommender.resolve_movie(" 200 ") == "200"
  with pytest.raises(
    LookupError, match=r"2 movies are titled 'Hamlet': 100 \(1948\); 200 \(1996\)"
  ):
    recommender.resolve_movie("Hamlet")
  with pytest.raises(LookupError, match="no movie titled"):
    recommender.resolve_movie("Vertigo")
  rating = recommender.predict_rating(["10"], [recommender.resolve_movie("Heat")])[0]
  assert 1.0 <= rating["rating"] <= 5.0 and not rating["fallback"]
  top = recommender.recommend(["nobody"])[0]
  assert top["popular_fallback"] and [i["movie_id"] for i in top["items"]][:2] == ["100", "200"]


def test_no_version_is_a_clear_error(tmp_path):
  with pytest.raises(serving_client.ModelNotFound, match="no such model directory"):
    serving_client.Recommender(str(tmp_path / "nowhere"))
  (tmp_path / ".incoming-1").mkdir()  # a staging folder is never a version
  with pytest.raises(serving_client.ModelNotFound, match="no model version"):
    serving_client.Recommender(str(tmp_path))


def test_recommend_from_ratings_takes_ids_or_titles_and_never_gives_them_back(saved_model_dir):
  recommender = serving_client.Recommender(os.path.dirname(saved_model_dir))
  given = recommender.parse_ratings("100:5, Up:2.5")
  assert given == {"100": 5.0, "400": 2.5}
  top = recommender.recommend_from_ratings(given)
  assert not top["popular_fallback"]
  ids = [item["movie_id"] for item in top["items"]]
  assert sorted(ids) == ["200", "300", "500"]  # padding dropped, given movies excluded
  # Titles are resolved as `rate` resolves them: an ambiguous one is an error.
  with pytest.raises(LookupError, match="2 movies are titled 'Hamlet'"):
    recommender.parse_ratings("Hamlet:5")
  with pytest.raises(ValueError, match="expected MOVIE:RATING"):
    recommender.parse_ratings("100")
  with pytest.raises(ValueError, match="the rating 'five' is not a number"):
    recommender.parse_ratings("100:five")
  # Nobody known: the popular list, flagged.
  assert recommender.recommend_from_ratings({})["popular_fallback"]
  assert recommender.recommend_from_ratings({"999": 4.0})["popular_fallback"]
