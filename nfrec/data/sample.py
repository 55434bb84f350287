"""Generator of the embedded Netflix-layout sample (`data/sample/`).

The sample is synthetic but shaped like the real data, so the pipeline has
something to learn and the metrics mean something:
  * popularity is Zipf-skewed (a few blockbusters, a long tail);
  * user activity is log-normal (many light users, a few heavy ones);
  * ratings come from a low-rank taste model (user and movie factors plus
    biases plus noise), and users tend to watch what they would like, so both
    the rating head and the retrieval towers have a signal to find;
  * titles repeat across movies (as "Pride and Prejudice" does in Netflix),
    so nothing may key movies by title.

It writes the two Kaggle files: `movies/Netflix_Dataset_Movie.csv`
(`Movie_ID,Year,Name`) and `ratings/Netflix_Dataset_Rating.csv`
(`User_ID,Rating,Movie_ID`), each in its own folder because CsvExampleGen
reads every file of its input folder.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.resources
import os

import numpy as np

from nfrec import contracts

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


def generate(spec: SampleSpec) -> tuple[list[tuple], np.ndarray]:
  """Returns (movie rows, ratings as an int array [n, 3]), in the Kaggle column order."""
  rng = np.random.default_rng(spec.seed)
  movies = _movies(rng, spec.num_movies)

  popularity = 1.0 / np.arange(1, spec.num_movies + 1) ** 0.9
  popularity = rng.permutation(popularity)
  user_factors = rng.normal(0, 1 / np.sqrt(spec.rank), (spec.num_users, spec.rank))
  movie_factors = rng.normal(0, 1 / np.sqrt(spec.rank), (spec.num_movies, spec.rank))
  user_bias = rng.normal(0, 0.35, spec.num_users)
  # Popular movies are rated a little higher, as in the real data.
  movie_bias = rng.normal(0, 0.35, spec.num_movies) + 0.3 * np.log(popularity / popularity.mean())
  movie_bias -= movie_bias.mean()

  activity = rng.lognormal(np.log(spec.mean_ratings_per_user) - 0.5, 1.0, spec.num_users)
  activity = np.clip(activity.astype(int), 3, spec.num_movies // 2)
  # Netflix-like user ids: sparse integers, not 1..N.
  user_ids = np.sort(rng.choice(np.arange(1, 2_650_000), spec.num_users, replace=False))

  log_popularity = np.log(popularity)
  per_user = []
  for user in range(spec.num_users):
    affinity = movie_factors @ user_factors[user]
    # Gumbel top-k: a sample without replacement, weighted by popularity and taste.
    keys = log_popularity + 2.0 * affinity + rng.gumbel(size=spec.num_movies)
    watched = np.argpartition(-keys, activity[user])[: activity[user]]
    raw = (
      2.8
      + user_bias[user]
      + movie_bias[watched]
      + 2.0 * affinity[watched]
      + rng.normal(0, spec.noise_stddev, watched.size)
    )
    stars = np.clip(np.rint(raw), 1, 5).astype(np.int64)
    per_user.append(np.stack([np.full(watched.size, user_ids[user]), stars, watched + 1], axis=1))
  ratings = np.concatenate(per_user)
  return movies, ratings[rng.permutation(len(ratings))]


def _movies(rng: np.random.Generator, num_movies: int) -> list[tuple]:
  rows = []
  for movie_id in range(1, num_movies + 1):
    if rng.random() < 0.02:
      title = str(rng.choice(_REMADE_TITLES))
    else:
      title = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
      if rng.random() < 0.3:
        title += f" {rng.integers(2, 5)}"
    rows.append((movie_id, int(rng.integers(1930, 2006)), title))
  return rows


def write(output_dir: str, spec: SampleSpec = SampleSpec()) -> tuple[str, str]:
  """Writes the sample's two folders under `output_dir`; returns their paths."""
  movies, ratings = generate(spec)
  ratings_dir = os.path.join(output_dir, contracts.RATINGS_FOLDER)
  movies_dir = os.path.join(output_dir, contracts.MOVIES_FOLDER)
  for folder, name, header, rows in (
    (movies_dir, MOVIES_FILE, contracts.MOVIES_COLUMNS, movies),
    (ratings_dir, RATINGS_FILE, contracts.RATINGS_COLUMNS, ratings),
  ):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w", newline="", encoding="utf-8") as f:
      writer = csv.writer(f)
      writer.writerow(header)
      writer.writerows(rows.tolist() if isinstance(rows, np.ndarray) else rows)
  return ratings_dir, movies_dir
