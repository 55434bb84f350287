"""The classic peers of `nfrec bench quality`, on a pipeline run's own splits.

Every peer is trained on the run's train split, tuned on its validation split
(filtered Recall@10, or RMSE), refit on train + validation as our Trainer refits,
and scored on eval by the pipeline's own code (modules/evaluation/metrics.py) in
the served model's index space, with the served model's exclusions. The new-user
protocol uses RetrievalEvaluator's own halves. Benchmark-only: `implicit` and
`scikit-surprise` come from the `bench` extra and are imported here only.

  EASE      Steck 2019: one closed-form item-item matrix (numpy)
  ALS       implicit-feedback matrix factorization (`implicit`)
  SVD       Funk SVD with biases on the ratings (`scikit-surprise`)
"""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import scipy.sparse as sparse

from components.retrieval_evaluator import evaluation
from modules import interactions
from modules.evaluation import metrics as metrics_lib
from nfrec import contracts

RECALL = contracts.recall_at(10)


@dataclasses.dataclass
class Splits:
  """A run's raw splits mapped into its served model's tables (evaluation.rows_of)."""

  raw: dict  # split -> evaluation.RawRatings
  rows: dict  # split -> (user rows, candidate rows)
  num_users: int
  num_movies: int  # vocabulary movies: the ones a peer can learn (candidate rows < this)
  num_candidates: int
  model: object  # the loaded serving model

  @classmethod
  def of(cls, model, raw: dict) -> Splits:
    return cls(
      raw=raw,
      rows={split: evaluation.rows_of(model, ratings) for split, ratings in raw.items()},
      num_users=int(model.user_vectors.shape[0]),
      num_movies=int(model.core.num_movies.numpy()),
      num_candidates=int(model.candidate_vectors.shape[0]),
      model=model,
    )

  def matrix(self, splits, min_rating: float = 0.0) -> sparse.csr_matrix:
    """Users x vocabulary movies, 1 where the user rated the movie (>= min_rating)."""
    users = np.concatenate([self.rows[s][0] for s in splits])
    movies = np.concatenate([self.rows[s][1] for s in splits])
    ratings = np.concatenate([self.raw[s].ratings for s in splits])
    keep = (users < self.num_users) & (movies < self.num_movies) & (ratings >= min_rating)
    return sparse.csr_matrix(
      (np.ones(keep.sum(), np.float32), (users[keep], movies[keep])),
      shape=(self.num_users, self.num_movies),
    )

  def padded(self, scores: np.ndarray) -> np.ndarray:
    """Scores over every candidate: the catalog movies a peer cannot know get -inf."""
    extra = self.num_candidates - scores.shape[1]
    return np.pad(scores, ((0, 0), (0, extra)), constant_values=-np.inf) if extra else scores

  def _ranker(self, history_splits, scores) -> metrics_lib.Ranker:
    """Ranks by `scores`, each user's movies in `history_splits` excluded."""
    users = np.concatenate([self.rows[s][0] for s in history_splits])
    movies = np.concatenate([self.rows[s][1] for s in history_splits])
    return metrics_lib.Ranker(
      num_users=self.num_users,
      num_movies=self.num_candidates,
      **interactions.rated_index(users, movies, self.num_users, self.num_candidates),
      scores=lambda user_index: self.padded(scores(user_index)),
    )

  def on_validation(self, scores) -> dict:
    """Filtered metrics on validation, each user's train movies excluded (for tuning)."""
    users, movies = self.rows[contracts.VALIDATION]
    ranker = self._ranker([contracts.TRAIN], scores)
    return metrics_lib.retrieval_metrics(
      ranker, users, movies, self.raw[contracts.VALIDATION].ratings, curve_ks=()
    )

  def on_eval(self, scores) -> dict:
    """Filtered metrics on eval, each user's train + validation movies excluded
    (the served model's exclusions: the pipeline's own measurement)."""
    users, movies = self.rows[contracts.EVAL]
    ranker = self._ranker([contracts.TRAIN, contracts.VALIDATION], scores)
    return metrics_lib.retrieval_metrics(
      ranker, users, movies, self.raw[contracts.EVAL].ratings, curve_ks=()
    )

  def on_new_users(self, scores_for_given) -> dict:
    """The new-user protocol (RetrievalEvaluator's halves): `scores_for_given(given)`
    ranks for each new user from the first half of their ratings (given: a function
    of a minimum rating -> people x vocabulary movies matrix); scored on the rest."""
    given, rest = evaluation.halves(self.raw[contracts.NEW_USERS])
    if not given:
      return {}
    people = np.repeat(np.arange(len(given)), [len(g) for g in given])
    movies = np.concatenate([self.model_rows(g) for g in given])
    ratings = np.concatenate([g.ratings for g in given])

    def given_matrix(min_rating):
      keep = (movies < self.num_movies) & (ratings >= min_rating)
      return sparse.csr_matrix(
        (np.ones(keep.sum(), np.float32), (people[keep], movies[keep])),
        shape=(len(given), self.num_movies),
      )

    scores = self.padded(scores_for_given(given_matrix))
    ranker = metrics_lib.Ranker(
      num_users=len(given),
      num_movies=self.num_candidates,
      **interactions.rated_index(people, movies, len(given), self.num_candidates),
      scores=lambda person: scores[person],
    )
    return metrics_lib.retrieval_metrics(
      ranker,
      np.repeat(np.arange(len(rest)), [len(r) for r in rest]),
      np.concatenate([self.model_rows(r) for r in rest]),
      np.concatenate([r.ratings for r in rest]),
      curve_ks=(),
    )

  def model_rows(self, ratings) -> np.ndarray:
    """Candidate rows of the ratings' movies in the served model (unknown: a miss)."""
    return evaluation.rows_of(self.model, ratings)[1]


def ease_matrix(X: sparse.csr_matrix, regularization: float) -> np.ndarray:
  """EASE's item-item weights: B = I - P diagMat(1 / diag(P)), P = (X'X + lambda I)^-1."""
  gram = (X.T @ X).toarray().astype(np.float64)
  gram[np.diag_indices_from(gram)] += regularization
  inverse = np.linalg.inv(gram)
  weights = -inverse / np.diag(inverse)
  weights[np.diag_indices_from(weights)] = 0
  return weights.astype(np.float32)


def ease(splits: Splits, lambdas=(50, 100, 200, 400, 800, 1600), positives=(0.0, 4.0)) -> dict:
  started = time.time()
  best = None
  for regularization, min_rating in itertools.product(lambdas, positives):
    X = splits.matrix([contracts.TRAIN], min_rating)
    B = ease_matrix(X, regularization)
    recall = splits.on_validation(lambda users, X=X, B=B: np.asarray(X[users] @ B))[RECALL]
    if best is None or recall > best[0]:
      best = (recall, regularization, min_rating)
  _, regularization, min_rating = best
  X = splits.matrix([contracts.TRAIN, contracts.VALIDATION], min_rating)
  B = ease_matrix(X, regularization)
  return {
    "eval": splits.on_eval(lambda users: np.asarray(X[users] @ B)),
    # Fold-in: a new user's given movies are their row of X.
    "new_users": splits.on_new_users(lambda matrix_of: np.asarray(matrix_of(min_rating) @ B)),
    "params": f"lambda {regularization:g}, positives >= {min_rating:g}",
    "seconds": time.time() - started,
  }


def als(splits: Splits, grid=None) -> dict:
  import implicit
  from threadpoolctl import threadpool_limits

  started = time.time()
  grid = grid or list(itertools.product((32, 64, 128), (0.01, 0.1, 1.0), (1.0, 10.0), (0.0, 4.0)))

  def fit(split_names, factors, regularization, alpha, min_rating):
    model = implicit.als.AlternatingLeastSquares(
      factors=factors, regularization=regularization, alpha=alpha, iterations=15, random_state=0
    )
    with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads fight them
      model.fit(splits.matrix(split_names, min_rating), show_progress=False)
    return model.user_factors, model.item_factors

  best = None
  for params in grid:
    U, V = fit([contracts.TRAIN], *params)
    recall = splits.on_validation(lambda users, U=U, V=V: U[users] @ V.T)[RECALL]
    if best is None or recall > best[0]:
      best = (recall, params)
  U, V = fit([contracts.TRAIN, contracts.VALIDATION], *best[1])
  factors, regularization, alpha, min_rating = best[1]
  return {
    "eval": splits.on_eval(lambda users: U[users] @ V.T),
    "params": f"factors {factors}, reg {regularization:g}, alpha {alpha:g}, "
    f"positives >= {min_rating:g}",
    "seconds": time.time() - started,
  }


def svd(splits: Splits, rating_scale: tuple[float, float], grid=None) -> dict:
  import pandas as pd
  from surprise import SVD, Dataset, Reader

  started = time.time()
  reader = Reader(rating_scale=rating_scale)
  grid = grid or [
    dict(n_factors=f, n_epochs=e, lr_all=lr, reg_all=reg)
    for f in (50, 100)
    for e in (20, 40)
    for lr in (0.005, 0.01)
    for reg in (0.02, 0.05, 0.1)
  ]

  def fit(split_names, params):
    raw = [splits.raw[s] for s in split_names]
    frame = pd.DataFrame(
      {
        "user": np.concatenate([r.user_ids for r in raw]),
        "movie": np.concatenate([r.movie_ids for r in raw]),
        "rating": np.concatenate([r.ratings for r in raw]),
      }
    )
    algorithm = SVD(random_state=0, **params)
    algorithm.fit(Dataset.load_from_df(frame, reader).build_full_trainset())
    return algorithm

  def rmse(algorithm, split):
    raw = splits.raw[split]
    predicted = np.array(
      [algorithm.predict(u, m).est for u, m in zip(raw.user_ids, raw.movie_ids, strict=True)]
    )
    return float(np.sqrt(np.mean((predicted - raw.ratings) ** 2)))

  scores = [rmse(fit([contracts.TRAIN], params), contracts.VALIDATION) for params in grid]
  params = grid[int(np.argmin(scores))]
  return {
    "eval": {contracts.RMSE: rmse(fit([contracts.TRAIN, contracts.VALIDATION], params), "eval")},
    "params": ", ".join(f"{k} {v:g}" for k, v in params.items()),
    "seconds": time.time() - started,
  }
