"""The TFRS multi-task model: two towers for retrieval, an MLP for the rating.

Both towers read vocabulary indices produced by Transform (index
`vocabulary size` is the out-of-vocabulary bucket). Every knob comes from an
`HParams` (a preset in `pipeline/config.py`), so the seed configuration of the
original notebook and the tuned default are the same code.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_recommenders as tfrs

from modules.trainer.hparams import HParams
from nfrec import contracts


def _embedding(rows: int, width: int, l2: float, initializer="uniform", name=None):
  regularizer = tf.keras.regularizers.l2(l2) if l2 else None
  return tf.keras.layers.Embedding(
    rows, width, embeddings_initializer=initializer, embeddings_regularizer=regularizer, name=name
  )


def embedding_l2(hparams: HParams, steps_per_epoch: int) -> float:
  """The L2 factor of the embedding tables, applied on every step.

  A table-wide regularizer acts once per step while a row's data gradient comes
  once per use, so the same factor regularizes 10x harder on 10x the data.
  `l2_per_epoch` keeps the strength per epoch constant (measured best at about
  0.012 on both MovieLens 100K and 1M); a plain `l2` is used as given.
  """
  if hparams.l2_per_epoch:
    return hparams.l2_per_epoch / max(steps_per_epoch, 1)
  return hparams.l2


class RecommenderModel(tfrs.Model):
  """Retrieval (user tower · movie tower) and rating regression, trained jointly."""

  def __init__(
    self,
    num_users: int,
    num_movies: int,
    hparams: HParams,
    movie_counts=None,
    global_mean: float = 0.0,
    steps_per_epoch: int = 1,
  ):
    """`movie_counts` (training ratings per movie index) enables the in-batch
    sampling correction when `hparams.sampling_correction` is set."""
    super().__init__()
    self.hparams = hparams
    dim = hparams.embedding_dim
    l2 = embedding_l2(hparams, steps_per_epoch)
    # +1 row for the out-of-vocabulary bucket Transform puts at the end.
    self.user_embedding = _embedding(num_users + 1, dim, l2, name="user_embedding")
    self.movie_embedding = _embedding(num_movies + 1, dim, l2, name="movie_embedding")
    self.rating_head = tf.keras.Sequential(
      [tf.keras.layers.Dense(units, activation="relu") for units in hparams.rating_hidden_units]
      + [tf.keras.layers.Dense(1)],
      name="rating_head",
    )
    # A per-movie retrieval bias (popularity the dot product alone cannot hold),
    # folded into the vectors: query [u, 1] · candidate [v, b] = u·v + b, so the
    # index stays one matrix product.
    self.retrieval_bias = hparams.retrieval_bias
    if self.retrieval_bias:
      self.movie_retrieval_bias = _embedding(
        num_movies + 1, 1, 0.0, "zeros", name="movie_retrieval_bias"
      )
    self.use_bias = hparams.use_bias
    if self.use_bias:
      self.user_bias = _embedding(num_users + 1, 1, l2, "zeros", name="user_bias")
      self.movie_bias = _embedding(num_movies + 1, 1, l2, "zeros", name="movie_bias")
      self.global_bias = tf.Variable(float(global_mean), name="global_bias")

    self.rating_task = tfrs.tasks.Ranking(
      loss=tf.keras.losses.MeanSquaredError(),
      metrics=[
        tf.keras.metrics.RootMeanSquaredError(contracts.RMSE),
        tf.keras.metrics.MeanAbsoluteError(contracts.MAE),
      ],
    )
    # TFRS sums the retrieval loss over the batch; with "mean" it is averaged, so it
    # no longer drowns the per-example rating MSE (docs/results.md).
    reduction = (
      tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE
      if hparams.retrieval_loss_reduction == "mean"
      else tf.keras.losses.Reduction.SUM
    )
    self.retrieval_task = tfrs.tasks.Retrieval(
      loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction=reduction),
      temperature=hparams.retrieval_temperature,
      remove_accidental_hits=hparams.remove_accidental_hits,
    )
    # In-batch negatives are drawn in proportion to popularity; without the logQ
    # correction the towers learn to *discount* popular movies (Yi et al., 2019).
    self.sampling_probability = None
    if hparams.sampling_correction and movie_counts is not None:
      counts = tf.cast(movie_counts, tf.float32)
      self.sampling_probability = tf.Variable(
        tf.concat([counts / tf.reduce_sum(counts), [1e-9]], axis=0),
        trainable=False,
        name="movie_sampling_probability",
      )  # the OOV row last, as in the vocabulary
    self.rating_weight = hparams.rating_weight
    self.retrieval_weight = hparams.retrieval_weight

  def user_vectors(self, user_index):
    """Query tower output."""
    vectors = self.user_embedding(user_index)
    if self.retrieval_bias:
      vectors = tf.concat([vectors, tf.ones_like(vectors[:, :1])], axis=1)
    return vectors

  def movie_vectors(self, movie_index):
    """Candidate tower output."""
    vectors = self.movie_embedding(movie_index)
    if self.retrieval_bias:
      vectors = tf.concat([vectors, self.movie_retrieval_bias(movie_index)], axis=1)
    return vectors

  def predict_ratings(self, user_index, movie_index):
    """Rating head on the two embeddings; shape [batch]."""
    user_vectors = self.user_embedding(user_index)
    movie_vectors = self.movie_embedding(movie_index)
    rating = self.rating_head(tf.concat([user_vectors, movie_vectors], axis=1))
    rating = tf.squeeze(rating, axis=1)
    if self.hparams.rating_dot_product:
      # A matrix-factorization term beside the MLP (NeuMF): an MLP alone learns
      # the user-movie interaction poorly (Rendle et al., 2020).
      rating += tf.reduce_sum(user_vectors * movie_vectors, axis=1)
    if self.use_bias:
      rating += (
        tf.squeeze(self.user_bias(user_index), axis=1)
        + tf.squeeze(self.movie_bias(movie_index), axis=1)
        + self.global_bias
      )
    return rating

  # The towers and the rating head have no tensor-dependent Python control flow, so
  # AutoGraph has nothing to convert in them; left to it, it transpiles every Keras
  # layer function they call on the first step (seconds on 2 cores). compute_loss
  # stays converted: TFRS's Retrieval task relies on AutoGraph.
  @tf.autograph.experimental.do_not_convert
  def call(self, inputs, training=None):
    user_index, movie_index = inputs[contracts.USER_INDEX], inputs[contracts.MOVIE_INDEX]
    return (
      self.user_vectors(user_index),
      self.movie_vectors(movie_index),
      self.predict_ratings(user_index, movie_index),
    )

  def compute_loss(self, inputs, training=False):
    user_vectors, movie_vectors, ratings = self(inputs, training=training)
    rating_loss = self.rating_task(labels=inputs[contracts.RATING_LABEL], predictions=ratings)
    retrieval_loss = self.retrieval_task(
      user_vectors,
      movie_vectors,
      candidate_ids=inputs[contracts.MOVIE_INDEX] if self.hparams.remove_accidental_hits else None,
      candidate_sampling_probability=None
      if self.sampling_probability is None
      else tf.gather(self.sampling_probability, inputs[contracts.MOVIE_INDEX]),
      compute_metrics=False,
    )
    return self.rating_weight * rating_loss + self.retrieval_weight * retrieval_loss


# The optimizers an HParams may name (hparams.OPTIMIZERS), by name.
OPTIMIZERS = {"adagrad": tf.keras.optimizers.Adagrad, "adam": tf.keras.optimizers.Adam}


def build_model(
  num_users: int,
  num_movies: int,
  hparams: HParams,
  movie_counts=None,
  global_mean: float = 0.0,
  steps_per_epoch: int = 1,
) -> RecommenderModel:
  """Builds and compiles the model with the preset's optimizer."""
  tf.keras.utils.set_random_seed(hparams.seed)
  model = RecommenderModel(
    num_users, num_movies, hparams, movie_counts, global_mean, steps_per_epoch
  )
  # XLA fuses each training step into one compiled program (about 1.7x the
  # examples/s on 2 CPU cores); several steps per call cut Python overhead.
  model.compile(
    optimizer=OPTIMIZERS[hparams.optimizer](hparams.learning_rate),
    jit_compile=hparams.jit_compile,
    steps_per_execution=hparams.steps_per_execution,
  )
  return model


def candidate_vectors(model: RecommenderModel, num_movies: int):
  """Movie-tower output for every vocabulary movie (the full candidate set)."""
  return model.movie_vectors(tf.range(num_movies, dtype=tf.int64))


def retrieval_ranks(model: RecommenderModel, user_index, movie_index, candidates):
  """Rank (0 = best) of each true movie among all `candidates` (candidate_vectors).

  Nothing is excluded: this is the seed's / TFRS FactorizedTopK "top-K
  accuracy", computed exactly with one matrix product per batch.
  """
  queries = model.user_vectors(user_index)
  scores = tf.matmul(queries, candidates, transpose_b=True)
  true_scores = tf.reduce_sum(queries * model.movie_vectors(movie_index), axis=1, keepdims=True)
  return tf.reduce_sum(tf.cast(scores > true_scores, tf.int32), axis=1)
