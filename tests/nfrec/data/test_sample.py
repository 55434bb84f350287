import collections
import csv
import os

import numpy as np

from nfrec.data import sample as sample_data
from tests.conftest import TINY_SAMPLE


def test_same_seed_same_sample_other_seed_other_sample():
  movies, ratings = sample_data.generate(TINY_SAMPLE)
  again_movies, again_ratings = sample_data.generate(TINY_SAMPLE)
  assert movies == again_movies and np.array_equal(ratings, again_ratings)
  other = sample_data.SampleSpec(**{**TINY_SAMPLE.__dict__, "seed": 8})
  assert not np.array_equal(sample_data.generate(other)[1][:100], ratings[:100])


def test_sample_is_shaped_like_netflix():
  movies, ratings = sample_data.generate(sample_data.SampleSpec())
  assert 80_000 <= len(ratings) <= 120_000
  assert {rating for _, rating, _, _ in ratings} == {1, 2, 3, 4, 5}
  pairs = [(user, movie) for user, _, movie, _ in ratings]
  assert len(set(pairs)) == len(pairs), "one rating per (user, movie)"
  assert {movie for _, _, movie, _ in ratings} <= {movie_id for movie_id, _, _ in movies}
  # Skewed popularity: the top 10 % of movies get far more than 10 % of ratings.
  per_movie = collections.Counter(m for _, _, m, _ in ratings.tolist())
  per_movie = np.array(sorted(per_movie.values(), reverse=True))
  assert per_movie[: len(per_movie) // 10].sum() > 0.3 * per_movie.sum()
  # Varied activity: heavy users rate many times more than the median user.
  per_user = np.array(list(collections.Counter(u for u, _, _, _ in ratings.tolist()).values()))
  assert per_user.max() > 5 * np.median(per_user)
  # Time: two years (2004-2005, Unix seconds); a new release is rated only after it
  # came out, so its ratings come no earlier than its year.
  times = ratings[:, 3]
  assert sample_data.START <= times.min() and times.max() < sample_data.END
  year_of = {movie_id: year for movie_id, year, _ in movies}
  new = np.array([year_of[m] >= 2004 for m in ratings[:, 2].tolist()])
  assert 0 < new.mean() < 0.5
  first_day_of_year = {2004: sample_data.START, 2005: sample_data.START + 366 * sample_data.DAY}
  assert all(
    t >= first_day_of_year[year_of[m]] for m, t in zip(ratings[new, 2], times[new], strict=True)
  )
  # Titles are not unique (as in Netflix), ids are.
  titles = collections.Counter(title for _, _, title in movies)
  assert titles.most_common(1)[0][1] > 1
  assert len({movie_id for movie_id, _, _ in movies}) == len(movies)


def test_write_makes_one_folder_per_csv_with_kaggle_headers(tmp_path):
  ratings_dir, movies_dir = sample_data.write(str(tmp_path), TINY_SAMPLE)
  assert os.listdir(ratings_dir) == [sample_data.RATINGS_FILE]
  assert os.listdir(movies_dir) == [sample_data.MOVIES_FILE]
  with open(os.path.join(ratings_dir, sample_data.RATINGS_FILE)) as f:
    assert next(csv.reader(f)) == ["User_ID", "Rating", "Movie_ID", "Timestamp"]
  with open(os.path.join(movies_dir, sample_data.MOVIES_FILE)) as f:
    assert next(csv.reader(f)) == ["Movie_ID", "Year", "Name"]


def test_embedded_sample_is_the_generator_output():
  """data/sample is what `nfrec generate-sample` writes with the default spec."""
  movies, ratings = sample_data.generate(sample_data.SampleSpec())
  path = os.path.join(sample_data.embedded_sample_dir(), "ratings", sample_data.RATINGS_FILE)
  with open(path) as f:
    rows = list(csv.reader(f))[1:]
  assert len(rows) == len(ratings)
  assert [tuple(int(v) for v in row) for row in rows[:100]] == [
    tuple(row) for row in ratings[:100].tolist()
  ]


def test_netflix_shaped_spec_has_the_full_catalog_and_the_asked_size():
  spec = sample_data.netflix_shaped(20_000)
  assert spec.num_movies == 17_770
  movies, ratings = sample_data.generate(spec)
  assert len(movies) == 17_770
  assert 0.7 * 20_000 <= len(ratings) <= 1.3 * 20_000
  pairs = ratings[:, 0] * 100_000 + ratings[:, 2]
  assert len(np.unique(pairs)) == len(ratings), "one rating per (user, movie)"
