"""Reads the pushed serving model the way TF Serving does: the newest integer version."""

from __future__ import annotations

import os

import tensorflow as tf

from nfrec import contracts


class ModelNotFound(FileNotFoundError):
  pass


def latest_version_dir(model_base_path: str) -> str:
  """The version TF Serving would serve (contracts.latest_version), or a clear error."""
  if not os.path.isdir(model_base_path):
    raise ModelNotFound(f"{model_base_path}: no such model directory (run `nfrec run` first).")
  version = contracts.latest_version(model_base_path)
  if version is None:
    raise ModelNotFound(
      f"{model_base_path}: no model version in this directory "
      "(no pushed model yet: was the last run blessed?)."
    )
  return os.path.join(model_base_path, version)


class Recommender:
  """The pushed model's signatures, called in-process."""

  def __init__(self, model_base_path: str):
    self.version_dir = latest_version_dir(model_base_path)
    self._model = tf.saved_model.load(self.version_dir)
    self._recommend = self._model.signatures[contracts.SIGNATURE_RECOMMEND]
    self._predict_rating = self._model.signatures[contracts.SIGNATURE_PREDICT_RATING]
    self._recommend_from_ratings = self._model.signatures[
      contracts.SIGNATURE_RECOMMEND_FROM_RATINGS
    ]

  def most_active_user(self) -> str:
    """First entry of the model's user vocabulary (Transform sorts it by rating count)."""
    with open(contracts.asset_path(self.version_dir, contracts.USER_VOCABULARY), "rb") as f:
      return f.readline().strip().decode()

  def recommend(self, user_ids: list[str]) -> list[dict]:
    out = self._recommend(**{contracts.INPUT_USER_ID: tf.constant(user_ids, tf.string)})
    return _recommendations(out, user_ids)

  def recommend_from_ratings(self, ratings: dict[str, float]) -> dict:
    """The top K for a person the model has never seen, from their ratings
    ({Movie_ID: rating}, oldest first); the given movies are not recommended back."""
    out = self._recommend_from_ratings(
      **{
        contracts.INPUT_MOVIE_IDS: tf.constant([list(ratings) or [""]], tf.string),
        contracts.INPUT_RATINGS: tf.constant([list(ratings.values()) or [0.0]], tf.float32),
      }
    )
    return _recommendations(out, ["(from the given ratings)"])[0]

  def parse_ratings(self, text: str) -> dict[str, float]:
    """ "MOVIE:RATING,..." -> {Movie_ID: rating}; a movie is an id or an exact title
    (resolved as `resolve_movie` does: an ambiguous title is an error)."""
    ratings = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
      movie, separator, value = item.rpartition(":")
      if not separator or not movie.strip():
        raise ValueError(f"{item!r}: expected MOVIE:RATING (a Movie_ID or title, then a rating)")
      try:
        rating = float(value)
      except ValueError:
        raise ValueError(f"{item!r}: the rating {value!r} is not a number") from None
      ratings[self.resolve_movie(movie)] = rating
    return ratings

  def movies_titled(self, title: str) -> list[dict]:
    """Every indexed movie with this title (case-insensitive): titles are not unique."""
    wanted = title.strip().casefold()
    return [
      {"movie_id": m.decode(), "title": t.decode(), "year": int(y)}
      for m, t, y in zip(
        self._model.movie_ids.numpy(),
        self._model.titles.numpy(),
        self._model.years.numpy(),
        strict=True,
      )
      if t.decode().casefold() == wanted
    ]

  def resolve_movie(self, movie: str) -> str:
    """A Movie_ID from an id or a title; an ambiguous or unknown title is an error."""
    if movie.strip().isdigit():
      return movie.strip()
    matches = self.movies_titled(movie)
    if not matches:
      raise LookupError(f"no movie titled {movie!r} in the model (give a Movie_ID?)")
    if len(matches) > 1:
      candidates = "; ".join(f"{m['movie_id']} ({m['year']})" for m in matches)
      raise LookupError(
        f"{len(matches)} movies are titled {movie!r}: {candidates}; give the Movie_ID"
      )
    return matches[0]["movie_id"]

  def predict_rating(self, user_ids: list[str], movie_ids: list[str]) -> list[dict]:
    out = self._predict_rating(
      **{
        contracts.INPUT_USER_ID: tf.constant(user_ids, tf.string),
        contracts.INPUT_MOVIE_ID: tf.constant(movie_ids, tf.string),
      }
    )
    return [
      {"rating": float(r), "fallback": bool(f)}
      for r, f in zip(
        out[contracts.OUTPUT_RATING].numpy(), out[contracts.OUTPUT_FALLBACK].numpy(), strict=True
      )
    ]


def _recommendations(out: dict, user_ids: list[str]) -> list[dict]:
  """The recommend outputs of a batch, one dict per row."""
  columns = [
    out[name].numpy()
    for name in (
      contracts.OUTPUT_MOVIE_IDS,
      contracts.OUTPUT_TITLES,
      contracts.OUTPUT_YEARS,
      contracts.OUTPUT_SCORES,
    )
  ]
  return [
    {
      "user_id": user_id,
      "popular_fallback": bool(out[contracts.OUTPUT_POPULAR_FALLBACK][row]),
      "items": [
        {"movie_id": m.decode(), "title": t.decode(), "year": int(y), "score": float(s)}
        for m, t, y, s in zip(*(column[row] for column in columns), strict=True)
        if m  # "" pads a row with fewer than K movies left to recommend
      ],
    }
    for row, user_id in enumerate(user_ids)
  ]


def format_recommendations(result: dict) -> str:
  lines = [
    f"Top {len(result['items'])} for user {result['user_id']}"
    + (" (no known user or movie: most popular movies)" if result["popular_fallback"] else "")
  ]
  lines.append(f"{'rank':>4}  {'Movie_ID':>8}  {'year':>4}  {'score':>7}  title")
  for rank, item in enumerate(result["items"], 1):
    lines.append(
      f"{rank:>4}  {item['movie_id']:>8}  {item['year']:>4}  {item['score']:>7.3f}  {item['title']}"
    )
  return "\n".join(lines)
