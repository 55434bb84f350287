"""The serving model: the core model's towers, precomputed vectors and an exact index.

Everything here is stock TensorFlow, so TensorFlow Serving (or any process that
imports only TensorFlow) can load and answer it. Signatures (the serving contract
of docs/design.md; names in nfrec/contracts.py; REST examples in the README):

  recommend / serving_default
      user_id: string [batch]
      -> movie_ids string [batch, K], titles string [batch, K], years int64 [batch, K],
         scores float32 [batch, K], popular_fallback bool [batch]
      Movies the user rated are excluded (where fewer than K are left, the extra
      slots are padding: movie id "", score -inf). Users the model does not know
      (and empty ids) get the K most popular movies, flagged, scored by their share
      of training ratings.
  recommend_from_ratings
      movie_ids string [batch, n], ratings float32 [batch, n] ("" pads a row),
      the ratings in the order they were given (oldest first)
      -> as recommend, for a person the model has never seen: the user tower reads
      the given ratings (unknown movie ids are ignored); the given movies are never
      recommended back; a row with no known movie gets the popular list, flagged.
  predict_rating
      user_id, movie_id: string [batch]
      -> rating float32 [batch] (clipped to the rating scale), fallback bool [batch]
      An unknown user or movie gets the known side's damped mean rating (or the
      global mean), flagged; never an untrained embedding's guess.
  predict_rating_from_ratings
      movie_ids, ratings as recommend_from_ratings, movie_id string [batch]
      -> as predict_rating, for a person described by their ratings.
  serving_examples
      examples: serialized tf.Example [batch] with the raw rating columns
      -> rating float32 [batch]; for the Evaluator (TFMA) and batch inference.

Candidates (what can be recommended) are the movie vocabulary's movies (row =
vocabulary index) followed by the catalog's movies that had no training rating:
those get a vector from their title and year alone, and `movie_training_ratings`
is 0 for them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from modules import interactions
from nfrec import contracts


@dataclasses.dataclass
class IndexData:
  """What the serving model holds besides the core model's functions.

  Candidate rows c: the movie vocabulary's movies first (c = vocabulary index,
  c < num_vocabulary_movies), then catalog movies without training ratings.
  User rows u: the user vocabulary (u = vocabulary index).
  """

  movie_ids: np.ndarray  # [C] str
  titles: np.ndarray  # [C] str
  years: np.ndarray  # [C] int64
  candidate_vectors: np.ndarray  # [C, D] float32: retrieval vectors (bias folded in)
  movie_vectors: np.ndarray  # [C, d] float32: the movie tower's output, for the rating
  movie_biases: np.ndarray  # [C] float32
  movie_counts: np.ndarray  # [C] int64: training ratings (0: known from title and year only)
  movie_mean_rating: np.ndarray  # [C] float32
  user_queries: np.ndarray  # [U, D] float32: retrieval queries from each user's history
  user_vectors: np.ndarray  # [U, d] float32
  user_biases: np.ndarray  # [U] float32
  user_mean_rating: np.ndarray  # [U] float32
  global_mean_rating: float
  rated_row_splits: np.ndarray  # [U + 1] int64
  rated_movies: np.ndarray  # [total] int64: candidate rows each user rated
  num_vocabulary_movies: int


MEAN_DAMPING = 5.0


def interactions_index(
  user_index: np.ndarray,
  movie_index: np.ndarray,
  rating: np.ndarray,
  num_users: int,
  num_movies: int,
) -> dict:
  """Per-user rated movies, popularity and damped mean ratings of known interactions.

  Rows whose user or movie is out of vocabulary are ignored.
  """
  known = (user_index < num_users) & (movie_index < num_movies)
  user_index, movie_index, rating = user_index[known], movie_index[known], rating[known]
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
    **interactions.rated_index(user_index, movie_index, num_users, num_movies),
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


_FROM_RATINGS = [
  tf.TensorSpec([None, None], tf.string, name=contracts.INPUT_MOVIE_IDS),
  tf.TensorSpec([None, None], tf.float32, name=contracts.INPUT_RATINGS),
]


class ServingModel(tf.Module):
  """Wraps a loaded core model; see the module docstring for the signatures."""

  def __init__(
    self,
    core,
    index: IndexData,
    top_k: int,
    rating_min: float,
    rating_max: float,
    index_type: str,
    scann_candidates: int,
  ):
    """`index_type` "scann" retrieves `scann_candidates` approximately, then drops the
    excluded movies among them and keeps the best `top_k`."""
    super().__init__()
    self.core = core
    num_candidates = len(index.movie_ids)
    self.top_k = min(top_k, num_candidates)
    if index_type not in contracts.INDEX_TYPES:
      raise ValueError(f"index_type must be one of {contracts.INDEX_TYPES}, got {index_type!r}")
    self.scann_candidates = min(max(scann_candidates, self.top_k), num_candidates)
    self.scann = (
      scann_searcher_module(index.candidate_vectors, self.scann_candidates)
      if index_type == "scann"
      else None
    )
    self.rating_min, self.rating_max = float(rating_min), float(rating_max)
    self.num_users = len(index.user_biases)
    self.num_vocabulary_movies = index.num_vocabulary_movies
    # The catalog: every candidate, with how many training ratings it had (0: a movie
    # known from its title and year only).
    self.movie_ids = _variable(index.movie_ids.astype(object), tf.string)
    self.titles = _variable(index.titles.astype(object), tf.string)
    self.years = _variable(index.years, tf.int64)
    self.movie_training_ratings = _variable(index.movie_counts, tf.int64)
    self.candidate_row = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
        tf.constant(index.movie_ids.astype(object), tf.string),
        tf.range(num_candidates, dtype=tf.int64),
      ),
      default_value=-1,
    )
    self.candidate_vectors = _variable(index.candidate_vectors, tf.float32)
    self.movie_vectors = _variable(index.movie_vectors, tf.float32)
    self.movie_biases = _variable(index.movie_biases, tf.float32)
    self.user_queries = _variable(index.user_queries, tf.float32)
    self.user_vectors = _variable(index.user_vectors, tf.float32)
    self.user_biases = _variable(index.user_biases, tf.float32)
    self.rated_row_splits = _variable(index.rated_row_splits, tf.int64)
    self.rated_movies = _variable(index.rated_movies, tf.int64)
    self.movie_mean_rating = _variable(index.movie_mean_rating, tf.float32)
    self.user_mean_rating = _variable(index.user_mean_rating, tf.float32)
    self.global_mean_rating = _variable(index.global_mean_rating, tf.float32)
    counts = index.movie_counts
    popular = np.argsort(-counts, kind="stable")[: self.top_k]
    self.popular_movies = _variable(popular, tf.int64)
    self.popular_scores = _variable(counts[popular] / max(counts.sum(), 1), tf.float32)

  # ---------------------------------------------------------------------------
  # Lookups.

  def _user_rows(self, user_id):
    """(is known, row safe to gather with): unknown users point at row 0 and are masked."""
    row = self.core.user_index(user_id)
    known = row < self.num_users
    return known, tf.where(known, row, tf.zeros_like(row))

  @tf.function(input_signature=[tf.TensorSpec(None, tf.string)])
  def candidate_rows(self, movie_id):
    """Candidate row of each movie id (any shape), -1 for a movie not in the catalog."""
    return self.candidate_row.lookup(movie_id)

  def _candidate_rows(self, movie_id):
    """(is known, row safe to gather with) of movie ids among the candidates."""
    row = tf.ensure_shape(self.candidate_rows(movie_id), movie_id.shape)
    known = row >= 0
    return known, tf.where(known, row, tf.zeros_like(row))

  def _person(self, movie_ids, ratings):
    """The user tower's output for people given by their ratings, the candidate rows
    they gave (ragged), and whether any given movie was usable history."""
    given, rows = self._candidate_rows(movie_ids)
    # Only vocabulary movies have a learned history embedding; the rest are ignored.
    usable = given & (rows < self.num_vocabulary_movies)
    # The usable entries first, in the order given (the tower reads the last ones).
    order = tf.argsort(tf.cast(tf.logical_not(usable), tf.int32), axis=1, stable=True)
    history_movies = tf.gather(rows, order, batch_dims=1)
    history_ratings = tf.gather(ratings, order, batch_dims=1)
    length = tf.reduce_sum(tf.cast(usable, tf.int64), axis=1)
    batch = tf.shape(movie_ids, out_type=tf.int64)[:1]
    person = self.core.user_tower(
      tf.fill(batch, tf.constant(self.num_users, tf.int64)),  # no id: the OOV user
      history_movies,
      history_ratings,
      length,
    )
    return person, tf.ragged.boolean_mask(rows, given), length > 0

  # ---------------------------------------------------------------------------
  # Top K with exclusions.

  def _top_k(self, queries, excluded):
    """(candidate rows [B, K], scores [B, K]) of the best candidates, `excluded`
    (ragged candidate rows per query) left out."""
    if self.scann is not None:
      return self._approximate_top_k(queries, excluded)
    scores = tf.matmul(queries, self.candidate_vectors, transpose_b=True)
    positions = tf.stack([excluded.value_rowids(), excluded.flat_values], axis=1)
    scores = tf.tensor_scatter_nd_update(
      scores, positions, tf.fill(tf.shape(excluded.flat_values), -np.inf)
    )
    values, indices = blocked_top_k(scores, self.top_k)
    return tf.cast(indices, tf.int64), values

  def _approximate_top_k(self, queries, excluded):
    """ScaNN's best `scann_candidates`, minus the excluded, then top_k."""
    from scann.scann_ops.py import scann_ops  # pylint: disable=g-import-not-at-top

    result = scann_ops.searcher_from_module(self.scann).search_batched(
      queries, final_num_neighbors=self.scann_candidates
    )
    candidates = tf.cast(result.indices, tf.int64)
    largest = np.iinfo(np.int64).max
    padded = tf.sort(excluded.to_tensor(default_value=largest), axis=1)
    padded = tf.concat([padded, tf.fill([tf.shape(padded)[0], 1], largest)], 1)
    position = tf.searchsorted(padded, candidates)
    is_excluded = tf.equal(tf.gather(padded, position, batch_dims=1), candidates)
    scores = tf.where(is_excluded, -np.inf, result.distances)
    top = tf.math.top_k(scores, k=self.top_k)
    return tf.gather(candidates, top.indices, batch_dims=1), top.values

  def _recommendations(self, has_model, top_rows, top_scores):
    """The recommend outputs; rows without a model answer get the popular list."""
    batch = tf.shape(has_model)[0]
    rows = has_model[:, tf.newaxis]
    indices = tf.where(rows, top_rows, tf.tile(self.popular_movies[tf.newaxis], [batch, 1]))
    scores = tf.where(rows, top_scores, tf.tile(self.popular_scores[tf.newaxis], [batch, 1]))
    # Fewer than K movies left to recommend: the extra slots are padding.
    filled = scores > -np.inf
    return {
      contracts.OUTPUT_MOVIE_IDS: tf.where(filled, tf.gather(self.movie_ids, indices), ""),
      contracts.OUTPUT_TITLES: tf.where(filled, tf.gather(self.titles, indices), ""),
      contracts.OUTPUT_YEARS: tf.where(
        filled, tf.gather(self.years, indices), tf.zeros_like(indices)
      ),
      contracts.OUTPUT_SCORES: scores,
      contracts.OUTPUT_POPULAR_FALLBACK: tf.logical_not(has_model),
    }

  # ---------------------------------------------------------------------------
  # Signatures.

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=contracts.INPUT_USER_ID)])
  def recommend(self, user_id):
    known, row = self._user_rows(user_id)
    rated = tf.gather(
      tf.RaggedTensor.from_row_splits(self.rated_movies, self.rated_row_splits, validate=False),
      row,
    )
    top_rows, top_scores = self._top_k(tf.gather(self.user_queries, row), rated)
    return self._recommendations(known, top_rows, top_scores)

  @tf.function(input_signature=_FROM_RATINGS)
  def recommend_from_ratings(self, movie_ids, ratings):
    person, given, has_history = self._person(movie_ids, ratings)
    top_rows, top_scores = self._top_k(person["query"], given)
    return self._recommendations(has_history, top_rows, top_scores)

  @tf.function(input_signature=_FROM_RATINGS)
  def query_from_ratings(self, movie_ids, ratings):
    """(retrieval queries, given candidate rows, has history): for evaluators."""
    person, given, has_history = self._person(movie_ids, ratings)
    return person["query"], given, has_history

  def _rate(self, user_vector, user_bias, user_known, user_mean, movie_id):
    movie_known, movie_row = self._candidate_rows(movie_id)
    model_rating = self.core.rate(
      user_vector,
      user_bias,
      tf.gather(self.movie_vectors, movie_row),
      tf.gather(self.movie_biases, movie_row),
    )
    # Fallbacks: the known side's mean rating, or the global mean.
    fallback_rating = tf.where(
      movie_known,
      tf.gather(self.movie_mean_rating, movie_row),
      tf.where(user_known, user_mean, tf.fill(tf.shape(model_rating), self.global_mean_rating)),
    )
    both_known = tf.logical_and(user_known, movie_known)
    rating = tf.where(both_known, model_rating, fallback_rating)
    return {
      contracts.OUTPUT_RATING: tf.clip_by_value(rating, self.rating_min, self.rating_max),
      contracts.OUTPUT_FALLBACK: tf.logical_not(both_known),
    }

  @tf.function(
    input_signature=[
      tf.TensorSpec([None], tf.string, name=contracts.INPUT_USER_ID),
      tf.TensorSpec([None], tf.string, name=contracts.INPUT_MOVIE_ID),
    ]
  )
  def predict_rating(self, user_id, movie_id):
    known, row = self._user_rows(user_id)
    return self._rate(
      tf.gather(self.user_vectors, row),
      tf.gather(self.user_biases, row),
      known,
      tf.gather(self.user_mean_rating, row),
      movie_id,
    )

  @tf.function(
    input_signature=[
      *_FROM_RATINGS,
      tf.TensorSpec([None], tf.string, name=contracts.INPUT_MOVIE_ID),
    ]
  )
  def predict_rating_from_ratings(self, movie_ids, ratings, movie_id):
    person, _, has_history = self._person(movie_ids, ratings)
    given = tf.cast(movie_ids != "", tf.float32)
    given_mean = tf.math.divide_no_nan(
      tf.reduce_sum(ratings * given, axis=1), tf.reduce_sum(given, axis=1)
    )
    return self._rate(person["vector"], person["bias"], has_history, given_mean, movie_id)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=contracts.INPUT_EXAMPLES)])
  def rate_examples(self, examples):
    user_ids, movie_ids = self.core.ids_from_examples(examples)
    return {
      contracts.OUTPUT_RATING: self.predict_rating(user_ids, movie_ids)[contracts.OUTPUT_RATING]
    }


def signatures(model: ServingModel) -> dict:
  """The serving contract: signature name -> concrete function."""
  return {
    contracts.SIGNATURE_DEFAULT: model.recommend,
    contracts.SIGNATURE_RECOMMEND: model.recommend,
    contracts.SIGNATURE_RECOMMEND_FROM_RATINGS: model.recommend_from_ratings,
    contracts.SIGNATURE_PREDICT_RATING: model.predict_rating,
    contracts.SIGNATURE_PREDICT_RATING_FROM_RATINGS: model.predict_rating_from_ratings,
    contracts.SIGNATURE_EXAMPLES: model.rate_examples,
  }


def save(model: ServingModel, export_dir: str) -> None:
  """Writes the SavedModel; a ScaNN index needs the Scann op namespace allowed."""
  options = tf.saved_model.SaveOptions(
    namespace_whitelist=["Scann"] if model.scann is not None else None
  )
  tf.saved_model.save(model, export_dir, signatures=signatures(model), options=options)
