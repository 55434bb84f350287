"""Generator of the embedded Netflix-layout sample (`data/sample/`).

The sample is synthetic but shaped like the real data, so the pipeline has
something to learn and the metrics mean something:
  * popularity is Zipf-skewed (a few blockbusters, a long tail);
  * user activity is log-normal (many light users, a few heavy ones);
  * ratings come from a low-rank taste model (user and movie factors plus
    biases plus noise), and users tend to watch what they would like, so both
    the rating head and the retrieval towers have a signal to find;
  * titles repeat across movies (as "Pride and Prejudice" does in Netflix),
    so nothing may key movies by title; a title's noun hints at the movie's
    taste group, so a movie's title says something about who will like it;
  * ratings have a time: two years of activity (2004-2005), each user active
    for a stretch of it, and new releases (about 15 % of the movies) come out
    during those years and can only be rated after their release, so the
    future holds movies the past barely knows.

It writes the Kaggle files, `movies/Netflix_Dataset_Movie.csv`
(`Movie_ID,Year,Name`) and `ratings/Netflix_Dataset_Rating.csv`
(`User_ID,Rating,Movie_ID`, plus the `Timestamp` column), each in its own folder
because CsvExampleGen reads every file of its input folder, and, as `nfrec
prepare` does, the folder's curated schema and dataset.json.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.resources
import json
import os

import numpy as np

from nfrec import contracts
from pipeline import schema as schema_lib

RATINGS_FILE = "Netflix_Dataset_Rating.csv"
MOVIES_FILE = "Netflix_Dataset_Movie.csv"


def embedded_sample_dir() -> str:
  """The embedded sample's data folder (the repo's data/sample, installed with the package)."""
  return str(importlib.resources.files("nfrec.sample_data"))


_ADJECTIVES = (
  "Silent",
  "Crimson",
  "Last",
  "Hidden",
  "Broken",
  "Golden",
  "Lonely",
  "Dark",
  "Wild",
  "Frozen",
  "Secret",
  "Lost",
  "Electric",
  "Midnight",
  "Little",
  "Eternal",
)
_NOUNS = (
  "River",
  "Empire",
  "Summer",
  "Witness",
  "Garden",
  "Station",
  "Kingdom",
  "Letter",
  "Harbor",
  "Storm",
  "Dream",
  "Road",
  "Island",
  "Promise",
  "Circus",
  "Mirror",
)
# A few titles used several times, like the real catalog's remakes.
_REMADE_TITLES = ("Pride and Prejudice", "Hamlet", "Little Women", "The Killers")


@dataclasses.dataclass(frozen=True)
class SampleSpec:
  """The embedded sample; `netflix_shaped` scales it up for benchmarks."""

  num_users: int = 2_500
  num_movies: int = 1_200
  mean_ratings_per_user: float = 40.0
  rank: int = 6
  noise_stddev: float = 0.6
  seed: int = 42


def netflix_shaped(num_ratings: int, seed: int = 7) -> SampleSpec:
  """The full Netflix catalog (17,770 movies) and about 200 ratings per user, as in
  the Netflix Prize data (100M ratings by 480k users), for `num_ratings` ratings."""
  mean_per_user = 200.0
  return SampleSpec(
    num_users=max(int(num_ratings / mean_per_user), 1),
    num_movies=17_770,
    mean_ratings_per_user=mean_per_user,
    seed=seed,
  )


START = 1_072_915_200  # 2004-01-01 UTC: the ratings' two years
END = 1_136_073_600  # 2006-01-01 UTC
DAY = 86_400
NEW_RELEASE_SHARE = 0.15


def generate(spec: SampleSpec) -> tuple[list[tuple], np.ndarray]:
  """Returns (movie rows, ratings as an int array [n, 4]): the Kaggle columns
  (User_ID, Rating, Movie_ID) and the Timestamp."""
  rng = np.random.default_rng(spec.seed)
  popularity = 1.0 / np.arange(1, spec.num_movies + 1) ** 0.9
  popularity = rng.permutation(popularity)
  user_factors = rng.normal(0, 1 / np.sqrt(spec.rank), (spec.num_users, spec.rank))
  movie_factors = rng.normal(0, 1 / np.sqrt(spec.rank), (spec.num_movies, spec.rank))
  user_bias = rng.normal(0, 0.35, spec.num_users)
  # Popular movies are rated a little higher, as in the real data.
  movie_bias = rng.normal(0, 0.35, spec.num_movies) + 0.3 * np.log(popularity / popularity.mean())
  movie_bias -= movie_bias.mean()
  new_release = rng.random(spec.num_movies) < NEW_RELEASE_SHARE
  release = np.where(new_release, rng.integers(START, END - 30 * DAY, spec.num_movies), 0)
  movies = _movies(rng, movie_factors, release)

  activity = rng.lognormal(np.log(spec.mean_ratings_per_user) - 0.5, 1.0, spec.num_users)
  activity = np.clip(activity.astype(int), 3, spec.num_movies // 2)
  # Each user is active for a stretch of the two years.
  first = rng.integers(START, END - 60 * DAY, spec.num_users)
  last = np.minimum(
    first + ((30 + rng.exponential(150, spec.num_users)) * DAY).astype(int), END - 1
  )
  # Netflix-like user ids: sparse integers, not 1..N.
  user_ids = np.sort(rng.choice(np.arange(1, 2_650_000), spec.num_users, replace=False))

  log_popularity = np.log(popularity)
  per_user = []
  for user in range(spec.num_users):
    affinity = movie_factors @ user_factors[user]
    # Gumbel top-k: a sample without replacement, weighted by popularity and taste,
    # among the movies out before the user's last day.
    keys = log_popularity + 2.0 * affinity + rng.gumbel(size=spec.num_movies)
    keys[release > last[user]] = -np.inf
    count = min(activity[user], int(np.isfinite(keys).sum()))
    watched = np.argpartition(-keys, count - 1)[:count]
    raw = (
      2.8
      + user_bias[user]
      + movie_bias[watched]
      + 2.0 * affinity[watched]
      + rng.normal(0, spec.noise_stddev, watched.size)
    )
    stars = np.clip(np.rint(raw), 1, 5).astype(np.int64)
    earliest = np.maximum(first[user], release[watched])
    times = earliest + (rng.random(watched.size) * (last[user] - earliest)).astype(np.int64)
    per_user.append(
      np.stack([np.full(watched.size, user_ids[user]), stars, watched + 1, times], axis=1)
    )
  ratings = np.concatenate(per_user)
  return movies, ratings[rng.permutation(len(ratings))]


def _movies(
  rng: np.random.Generator, movie_factors: np.ndarray, release: np.ndarray
) -> list[tuple]:
  """Titles whose noun tells the movie's taste group; new releases dated 2004-2005."""
  groups = len(_NOUNS) // 4
  group = np.argmax(movie_factors[:, :groups], axis=1)
  rows = []
  for movie in range(len(movie_factors)):
    if rng.random() < 0.02:
      title = str(rng.choice(_REMADE_TITLES))
    else:
      noun = _NOUNS[group[movie] * 4 + int(rng.integers(4))]
      title = f"The {rng.choice(_ADJECTIVES)} {noun}"
      if rng.random() < 0.3:
        title += f" {rng.integers(2, 5)}"
    year = (
      2004 + int(release[movie] >= START + 366 * DAY)
      if release[movie]
      else int(rng.integers(1930, 2004))
    )
    rows.append((movie + 1, year, title))
  return rows


def write(output_dir: str, spec: SampleSpec = SampleSpec()) -> tuple[str, str]:
  """Writes the sample's folders, schema and dataset.json under `output_dir`;
  returns the ratings and movies folders."""
  movies, ratings = generate(spec)
  ratings_dir = os.path.join(output_dir, contracts.RATINGS_FOLDER)
  movies_dir = os.path.join(output_dir, contracts.MOVIES_FOLDER)
  for folder, name, header, rows in (
    (movies_dir, MOVIES_FILE, contracts.MOVIES_COLUMNS, movies),
    (ratings_dir, RATINGS_FILE, (*contracts.RATINGS_COLUMNS, contracts.TIMESTAMP), ratings),
  ):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w", newline="", encoding="utf-8") as f:
      writer = csv.writer(f)
      writer.writerow(header)
      writer.writerows(rows.tolist() if isinstance(rows, np.ndarray) else rows)
  schema_lib.write(
    schema_lib.ratings_schema(with_timestamp=True),
    os.path.join(output_dir, contracts.DATA_SCHEMA_FILE),
  )
  with open(os.path.join(output_dir, contracts.DATASET_FILE), "w") as f:
    json.dump(
      {
        "rating_min": 1.0,
        "rating_max": 5.0,
        "rating_step": 1.0,
        "has_time": True,
        "ratings_written": len(ratings),
        "movies_written": len(movies),
      },
      f,
      indent=2,
    )
  return ratings_dir, movies_dir
