"""Reads the pushed serving model the way TF Serving does: the newest integer version."""

from __future__ import annotations

import os

import tensorflow as tf


class ModelNotFound(FileNotFoundError):
  pass


def latest_version_dir(model_base_path: str) -> str:
  """The highest integer-named version folder holding a saved_model.pb."""
  if not os.path.isdir(model_base_path):
    raise ModelNotFound(f"{model_base_path}: no such model directory (run `nfrec run` first).")
  versions = [name for name in os.listdir(model_base_path)
              if name.isdigit()
              and os.path.exists(os.path.join(model_base_path, name, "saved_model.pb"))]
  if not versions:
    raise ModelNotFound(f"{model_base_path}: no model version in this directory "
                        "(no pushed model yet: was the last run blessed?).")
  return os.path.join(model_base_path, max(versions, key=int))


class Recommender:
  """The pushed model's signatures, called in-process."""

  def __init__(self, model_base_path: str):
    self.version_dir = latest_version_dir(model_base_path)
    self._model = tf.saved_model.load(self.version_dir)
    self._recommend = self._model.signatures["recommend"]
    self._predict_rating = self._model.signatures["predict_rating"]

  def most_active_user(self) -> str:
    """First entry of the model's user vocabulary (Transform sorts it by rating count)."""
    with open(os.path.join(self.version_dir, "assets", "user_id"), "rb") as f:
      return f.readline().strip().decode()

  def recommend(self, user_ids: list[str]) -> list[dict]:
    out = self._recommend(user_id=tf.constant(user_ids, tf.string))
    results = []
    for row in range(len(user_ids)):
      results.append({
          "user_id": user_ids[row],
          "popular_fallback": bool(out["popular_fallback"][row]),
          "items": [{"movie_id": m.decode(), "title": t.decode(), "year": int(y), "score": float(s)}
                    for m, t, y, s in zip(out["movie_ids"][row].numpy(), out["titles"][row].numpy(),
                                          out["years"][row].numpy(), out["scores"][row].numpy())],
      })
    return results

  def movies_titled(self, title: str) -> list[dict]:
    """Every indexed movie with this title (case-insensitive): titles are not unique."""
    wanted = title.strip().casefold()
    return [{"movie_id": m.decode(), "title": t.decode(), "year": int(y)}
            for m, t, y in zip(self._model.movie_ids.numpy(), self._model.titles.numpy(),
                               self._model.years.numpy())
            if t.decode().casefold() == wanted]

  def resolve_movie(self, movie: str) -> str:
    """A Movie_ID from an id or a title; an ambiguous or unknown title is an error."""
    if movie.strip().isdigit():
      return movie.strip()
    matches = self.movies_titled(movie)
    if not matches:
      raise LookupError(f"no movie titled {movie!r} in the model (give a Movie_ID?)")
    if len(matches) > 1:
      candidates = "; ".join(f"{m['movie_id']} ({m['year']})" for m in matches)
      raise LookupError(f"{len(matches)} movies are titled {movie!r}: {candidates}; "
                        "give the Movie_ID")
    return matches[0]["movie_id"]

  def predict_rating(self, user_ids: list[str], movie_ids: list[str]) -> list[dict]:
    out = self._predict_rating(user_id=tf.constant(user_ids, tf.string),
                               movie_id=tf.constant(movie_ids, tf.string))
    return [{"rating": float(r), "fallback": bool(f)}
            for r, f in zip(out["rating"].numpy(), out["fallback"].numpy())]


def format_recommendations(result: dict) -> str:
  lines = [f"Top {len(result['items'])} for user {result['user_id']}"
           + (" (unknown user: most popular movies)" if result["popular_fallback"] else "")]
  lines.append(f"{'rank':>4}  {'Movie_ID':>8}  {'year':>4}  {'score':>7}  title")
  for rank, item in enumerate(result["items"], 1):
    lines.append(f"{rank:>4}  {item['movie_id']:>8}  {item['year']:>4}  {item['score']:>7.3f}  "
                 f"{item['title']}")
  return "\n".join(lines)
