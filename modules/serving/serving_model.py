"""The serving model: the Trainer's core model plus an exact retrieval index.

Everything here is stock TensorFlow, so TensorFlow Serving (or any process
that imports only TensorFlow) can load and answer it. Signatures (the serving
contract of docs/design.md, documented in the README):

  recommend / serving_default
      user_id: string [batch]
      -> movie_ids string [batch, K], titles string [batch, K],
         years int64 [batch, K], scores float32 [batch, K],
         popular_fallback bool [batch]
      Movies the user rated in training are excluded (where fewer than K are
      left, the remaining slots are padding: movie id "", score -inf). Users the model does not
      know (and empty ids) get the K most popular movies, flagged, with their
      share of training ratings as score.
  predict_rating
      user_id, movie_id: string [batch]
      -> rating float32 [batch] (clipped to the rating scale), fallback bool [batch]
      An unknown user or movie gets the known side's damped mean rating (or the
      global mean), flagged; never an untrained embedding's guess.
  serving_examples
      examples: serialized tf.Example [batch] with the raw rating columns
      -> rating float32 [batch]; for the Evaluator (TFMA) and batch inference.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from modules.transform import vocabulary
from nfrec import contracts


@dataclasses.dataclass
class IndexData:
  """What the serving model carries besides the core model, aligned with the movie vocabulary.

  movie_ids/titles/years/candidate_vectors have one row per vocabulary movie
  (vocabulary index order). rated_row_splits/rated_movies give, per user index,
  the movie indices the user rated in training (a ragged row per user).
  """

  movie_ids: np.ndarray  # [M] str
  titles: np.ndarray  # [M] str
  years: np.ndarray  # [M] int64
  candidate_vectors: np.ndarray  # [M, D] float32
  movie_counts: np.ndarray  # [M] int64: training ratings per movie
  movie_mean_rating: np.ndarray  # [M] float32
  user_mean_rating: np.ndarray  # [U] float32
  global_mean_rating: float
  rated_row_splits: np.ndarray  # [U + 1] int64
  rated_movies: np.ndarray  # [total] int64


MEAN_DAMPING = 5.0


def interactions_index(
  user_index: np.ndarray,
  movie_index: np.ndarray,
  rating: np.ndarray,
  num_users: int,
  num_movies: int,
) -> dict:
  """Per-user rated movies, popularity and mean ratings from training interactions.

  Rows whose user or movie is out of vocabulary are ignored (they cannot occur
  in the training split Transform analysed, but the eval split may have them).
  """
  known = (user_index < num_users) & (movie_index < num_movies)
  user_index, movie_index, rating = user_index[known], movie_index[known], rating[known]
  order = np.lexsort((movie_index, user_index))
  user_counts = np.bincount(user_index, minlength=num_users)
  movie_counts = np.bincount(movie_index, minlength=num_movies)
  user_sums = np.bincount(user_index, weights=rating, minlength=num_users)
  movie_sums = np.bincount(movie_index, weights=rating, minlength=num_movies)
  global_mean = float(rating.mean()) if rating.size else 0.0
  # Means damped towards the global mean (MEAN_DAMPING pseudo-ratings): a movie with
  # one 5-star rating is not a 5-star movie. With no rating, the global mean.
  user_mean = (user_sums + MEAN_DAMPING * global_mean) / (user_counts + MEAN_DAMPING)
  movie_mean = (movie_sums + MEAN_DAMPING * global_mean) / (movie_counts + MEAN_DAMPING)
  return dict(
    rated_row_splits=np.concatenate([[0], np.cumsum(user_counts)]).astype(np.int64),
    rated_movies=movie_index[order].astype(np.int64),
    movie_counts=movie_counts.astype(np.int64),
    movie_mean_rating=movie_mean.astype(np.float32),
    user_mean_rating=user_mean.astype(np.float32),
    global_mean_rating=global_mean,
  )


TOP_K_BLOCK = 128


def blocked_top_k(scores, k: int, block: int = TOP_K_BLOCK):
  """Exact (values, column indices) of the k best scores per row, about 2x faster
  than `tf.math.top_k` on wide rows (17,770 movies).

  The columns are cut into blocks of `block`; only the k blocks with the highest
  maxima can hold a top-k score (a block outside them has k blocks, hence k
  scores, above its best), so `top_k` runs on the block maxima and then on those
  k blocks instead of on the whole row. Stock TF ops only.
  """
  batch, width = tf.shape(scores)[0], scores.shape[1]
  num_blocks = -(-width // block)
  padded = tf.pad(scores, [[0, 0], [0, num_blocks * block - width]], constant_values=-np.inf)
  blocks = tf.reshape(padded, [batch, num_blocks, block])
  best_blocks = tf.math.top_k(tf.reduce_max(blocks, axis=2), k=min(k, num_blocks)).indices
  candidates = tf.reshape(tf.gather(blocks, best_blocks, batch_dims=1), [batch, -1])
  top = tf.math.top_k(candidates, k=k)
  columns = tf.reshape(best_blocks[:, :, tf.newaxis] * block + tf.range(block), [batch, -1])
  # A padding column can only be picked with score -inf (a row with fewer than k
  # finite scores); keep its index inside the row so it can still be gathered.
  return top.values, tf.minimum(tf.gather(columns, top.indices, batch_dims=1), width - 1)


def _variable(value, dtype=None):
  # Variables, not constants: large tables would overflow the 2 GB graph proto.
  return tf.Variable(tf.constant(value, dtype=dtype), trainable=False)


def scann_searcher_module(candidate_vectors: np.ndarray, num_neighbors: int):
  """An approximate ScaNN index over the candidates, as a saveable module.

  Needs the ScaNN ops (`scann==1.3.2`) wherever the model is loaded: stock TF
  Serving does not have them.
  """
  from scann.scann_ops.py import scann_ops  # pylint: disable=g-import-not-at-top

  builder = scann_ops.builder(tf.constant(candidate_vectors), num_neighbors, "dot_product")
  if len(candidate_vectors) < 2_000:
    # Too few vectors to train a partitioning and a quantizer: ScaNN's own brute force.
    builder = builder.score_brute_force()
  else:
    num_leaves = int(np.sqrt(len(candidate_vectors)))
    builder = (
      builder.tree(
        num_leaves=num_leaves,
        num_leaves_to_search=max(1, num_leaves // 5),
        training_sample_size=len(candidate_vectors),
      )
      .score_ah(2, anisotropic_quantization_threshold=0.2)
      .reorder(min(len(candidate_vectors), 4 * num_neighbors))
    )
  return builder.build(shared_name=f"scann_index_{id(candidate_vectors)}").serialize_to_module()


class ServingModel(tf.Module):
  """Wraps a loaded core model; see the module docstring for the signatures."""

  def __init__(
    self,
    core,
    index: IndexData,
    top_k: int,
    rating_min: float,
    rating_max: float,
    index_type: str = "brute_force",
    scann_candidates: int = 200,
  ):
    """`index_type` "scann" retrieves `scann_candidates` approximately, then drops the
    user's rated movies among them and keeps the best `top_k`."""
    super().__init__()
    self.core = core
    num_movies = len(index.movie_ids)
    self.top_k = min(top_k, num_movies)
    if index_type not in contracts.INDEX_TYPES:
      raise ValueError(f"index_type must be one of {contracts.INDEX_TYPES}, got {index_type!r}")
    self.scann_candidates = min(max(scann_candidates, self.top_k), num_movies)
    self.scann = (
      scann_searcher_module(index.candidate_vectors, self.scann_candidates)
      if index_type == "scann"
      else None
    )
    self.rating_min, self.rating_max = float(rating_min), float(rating_max)
    self.movie_ids = _variable(index.movie_ids.astype(object), tf.string)
    self.titles = _variable(index.titles.astype(object), tf.string)
    self.years = _variable(index.years, tf.int64)
    self.candidate_vectors = _variable(index.candidate_vectors, tf.float32)
    self.rated_row_splits = _variable(index.rated_row_splits, tf.int64)
    self.rated_movies = _variable(index.rated_movies, tf.int64)
    self.movie_mean_rating = _variable(index.movie_mean_rating, tf.float32)
    self.user_mean_rating = _variable(index.user_mean_rating, tf.float32)
    self.global_mean_rating = _variable(index.global_mean_rating, tf.float32)
    counts = index.movie_counts
    popular = np.argsort(-counts, kind="stable")[: self.top_k]
    self.popular_movies = _variable(popular, tf.int64)
    self.popular_scores = _variable(counts[popular] / max(counts.sum(), 1), tf.float32)

  def _known(self, index, vocabulary_size):
    """(is known, index safe to gather with): OOV rows point at row 0, and are masked."""
    known = vocabulary.is_known(index, vocabulary_size)
    return known, tf.where(known, index, tf.zeros_like(index))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=contracts.INPUT_USER_ID)])
  def recommend(self, user_id):
    user_index = self.core.user_index(user_id)
    known, safe_index = self._known(user_index, tf.shape(self.user_mean_rating, tf.int64)[0])
    queries = self.core.user_vectors(safe_index)
    rated = tf.gather(
      tf.RaggedTensor.from_row_splits(self.rated_movies, self.rated_row_splits, validate=False),
      safe_index,
    )
    top_indices, top_scores = (
      self._exact_top_k(queries, rated)
      if self.scann is None
      else self._approximate_top_k(queries, rated)
    )

    batch = tf.shape(user_id)[0]
    known_rows = known[:, tf.newaxis]
    indices = tf.where(
      known_rows, top_indices, tf.tile(self.popular_movies[tf.newaxis], [batch, 1])
    )
    scores = tf.where(known_rows, top_scores, tf.tile(self.popular_scores[tf.newaxis], [batch, 1]))
    # A user who rated all but fewer than K movies: the excess slots are padding.
    filled = scores > -np.inf
    return {
      contracts.OUTPUT_MOVIE_IDS: tf.where(filled, tf.gather(self.movie_ids, indices), ""),
      contracts.OUTPUT_TITLES: tf.where(filled, tf.gather(self.titles, indices), ""),
      contracts.OUTPUT_YEARS: tf.where(
        filled, tf.gather(self.years, indices), tf.zeros_like(indices)
      ),
      contracts.OUTPUT_SCORES: scores,
      contracts.OUTPUT_POPULAR_FALLBACK: tf.logical_not(known),
    }

  def _exact_top_k(self, queries, rated):
    """One matrix product over all candidates, rated movies set to -inf, top_k."""
    scores = tf.matmul(queries, self.candidate_vectors, transpose_b=True)
    positions = tf.stack([rated.value_rowids(), rated.flat_values], axis=1)
    scores = tf.tensor_scatter_nd_update(
      scores, positions, tf.fill(tf.shape(rated.flat_values), -np.inf)
    )
    values, indices = blocked_top_k(scores, self.top_k)
    return tf.cast(indices, tf.int64), values

  def _approximate_top_k(self, queries, rated):
    """ScaNN's best `scann_candidates`, minus rated movies, then top_k."""
    from scann.scann_ops.py import scann_ops  # pylint: disable=g-import-not-at-top

    result = scann_ops.searcher_from_module(self.scann).search_batched(
      queries, final_num_neighbors=self.scann_candidates
    )
    candidates = tf.cast(result.indices, tf.int64)
    # Rated rows are sorted (see interactions_index): membership by binary search.
    padded = rated.to_tensor(default_value=np.iinfo(np.int64).max)
    padded = tf.concat([padded, tf.fill([tf.shape(padded)[0], 1], np.iinfo(np.int64).max)], 1)
    position = tf.searchsorted(padded, candidates)
    is_rated = tf.equal(tf.gather(padded, position, batch_dims=1), candidates)
    scores = tf.where(is_rated, -np.inf, result.distances)
    top = tf.math.top_k(scores, k=self.top_k)
    return tf.gather(candidates, top.indices, batch_dims=1), top.values

  @tf.function(
    input_signature=[
      tf.TensorSpec([None], tf.string, name=contracts.INPUT_USER_ID),
      tf.TensorSpec([None], tf.string, name=contracts.INPUT_MOVIE_ID),
    ]
  )
  def predict_rating(self, user_id, movie_id):
    user_known, user_index = self._known(
      self.core.user_index(user_id), tf.shape(self.user_mean_rating, tf.int64)[0]
    )
    movie_known, movie_index = self._known(
      self.core.movie_index(movie_id), tf.shape(self.movie_mean_rating, tf.int64)[0]
    )
    model_rating = self.core.rate_indices(user_index, movie_index)
    # Fallbacks: the known side's mean rating, or the global mean.
    fallback_rating = tf.where(
      movie_known,
      tf.gather(self.movie_mean_rating, movie_index),
      tf.where(
        user_known,
        tf.gather(self.user_mean_rating, user_index),
        tf.fill(tf.shape(model_rating), self.global_mean_rating),
      ),
    )
    both_known = tf.logical_and(user_known, movie_known)
    rating = tf.where(both_known, model_rating, fallback_rating)
    return {
      contracts.OUTPUT_RATING: tf.clip_by_value(rating, self.rating_min, self.rating_max),
      contracts.OUTPUT_FALLBACK: tf.logical_not(both_known),
    }

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=contracts.INPUT_EXAMPLES)])
  def rate_examples(self, examples):
    user_ids, movie_ids = self.core.ids_from_examples(examples)
    return {
      contracts.OUTPUT_RATING: self.predict_rating(user_ids, movie_ids)[contracts.OUTPUT_RATING]
    }


def save(model: ServingModel, export_dir: str) -> None:
  """Writes the SavedModel; a ScaNN index needs the Scann op namespace allowed."""
  options = tf.saved_model.SaveOptions(
    namespace_whitelist=["Scann"] if model.scann is not None else None
  )
  signatures = {
    contracts.SIGNATURE_DEFAULT: model.recommend,
    contracts.SIGNATURE_RECOMMEND: model.recommend,
    contracts.SIGNATURE_PREDICT_RATING: model.predict_rating,
    contracts.SIGNATURE_EXAMPLES: model.rate_examples,
  }
  tf.saved_model.save(model, export_dir, signatures=signatures, options=options)
