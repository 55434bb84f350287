"""The TFRS multi-task model: two towers for retrieval, an MLP for the rating.

Both towers read vocabulary indices produced by Transform (index
`vocabulary size` is the out-of-vocabulary bucket). Every knob comes from a
`hparams` dict (the preset in `pipeline/config.py`), so the seed configuration
of the original notebook and the tuned default are the same code.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TFRS needs Keras 2.

import tensorflow as tf
import tensorflow_recommenders as tfrs

from modules.transform import preprocessing as features


def _embedding(rows: int, width: int, l2: float, initializer="uniform", name=None):
  regularizer = tf.keras.regularizers.l2(l2) if l2 else None
  return tf.keras.layers.Embedding(
      rows, width, embeddings_initializer=initializer,
      embeddings_regularizer=regularizer, name=name)


class RecommenderModel(tfrs.Model):
  """Retrieval (user tower · movie tower) and rating regression, trained jointly."""

  def __init__(self, num_users: int, num_movies: int, hparams: dict):
    super().__init__()
    self.hparams = dict(hparams)
    dim = hparams["embedding_dim"]
    l2 = hparams.get("l2", 0.0)
    # +1 row for the out-of-vocabulary bucket Transform puts at the end.
    self.user_embedding = _embedding(num_users + 1, dim, l2, name="user_embedding")
    self.movie_embedding = _embedding(num_movies + 1, dim, l2, name="movie_embedding")
    self.rating_head = tf.keras.Sequential(
        [tf.keras.layers.Dense(units, activation="relu")
         for units in hparams["rating_hidden_units"]]
        + [tf.keras.layers.Dense(1)], name="rating_head")
    self.use_bias = hparams.get("use_bias", False)
    if self.use_bias:
      self.user_bias = _embedding(num_users + 1, 1, l2, "zeros", name="user_bias")
      self.movie_bias = _embedding(num_movies + 1, 1, l2, "zeros", name="movie_bias")
      self.global_bias = tf.Variable(hparams.get("global_mean", 0.0), name="global_bias")

    self.rating_task = tfrs.tasks.Ranking(
        loss=tf.keras.losses.MeanSquaredError(),
        metrics=[tf.keras.metrics.RootMeanSquaredError("rmse"),
                 tf.keras.metrics.MeanAbsoluteError("mae")])
    # TFRS sums the retrieval loss over the batch; with "mean" it is averaged, so it
    # no longer drowns the per-example rating MSE (see DEVELOPERS.md).
    reduction = (tf.keras.losses.Reduction.SUM_OVER_BATCH_SIZE
                 if hparams.get("retrieval_loss_reduction", "sum") == "mean"
                 else tf.keras.losses.Reduction.SUM)
    self.retrieval_task = tfrs.tasks.Retrieval(
        loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True, reduction=reduction),
        temperature=hparams.get("retrieval_temperature"),
        remove_accidental_hits=hparams.get("remove_accidental_hits", False))
    self.rating_weight = hparams["rating_weight"]
    self.retrieval_weight = hparams["retrieval_weight"]

  def user_vectors(self, user_index):
    return self.user_embedding(user_index)

  def movie_vectors(self, movie_index):
    return self.movie_embedding(movie_index)

  def predict_ratings(self, user_index, movie_index):
    """Rating head on the two embeddings; shape [batch]."""
    user_vectors = self.user_embedding(user_index)
    movie_vectors = self.movie_embedding(movie_index)
    rating = self.rating_head(tf.concat([user_vectors, movie_vectors], axis=1))
    rating = tf.squeeze(rating, axis=1)
    if self.use_bias:
      rating += (tf.squeeze(self.user_bias(user_index), axis=1)
                 + tf.squeeze(self.movie_bias(movie_index), axis=1) + self.global_bias)
    return rating

  def call(self, inputs):
    user_index, movie_index = inputs[features.USER_INDEX], inputs[features.MOVIE_INDEX]
    return (self.user_vectors(user_index), self.movie_vectors(movie_index),
            self.predict_ratings(user_index, movie_index))

  def compute_loss(self, inputs, training=False):
    user_vectors, movie_vectors, ratings = self(inputs)
    rating_loss = self.rating_task(labels=inputs[features.RATING], predictions=ratings)
    retrieval_loss = self.retrieval_task(
        user_vectors, movie_vectors,
        candidate_ids=inputs[features.MOVIE_INDEX]
        if self.hparams.get("remove_accidental_hits") else None,
        compute_metrics=False)
    return self.rating_weight * rating_loss + self.retrieval_weight * retrieval_loss


def build_model(num_users: int, num_movies: int, hparams: dict) -> RecommenderModel:
  """Builds and compiles the model with the preset's optimizer."""
  tf.keras.utils.set_random_seed(hparams.get("seed", 0))
  model = RecommenderModel(num_users, num_movies, hparams)
  optimizers = {"adagrad": tf.keras.optimizers.Adagrad, "adam": tf.keras.optimizers.Adam}
  model.compile(optimizer=optimizers[hparams["optimizer"]](hparams["learning_rate"]))
  return model


def retrieval_ranks(model: RecommenderModel, user_index, movie_index, num_movies: int):
  """Rank (0 = best) of each true movie among all `num_movies` candidates.

  Nothing is excluded: this is the seed's / TFRS FactorizedTopK "top-K
  accuracy", computed exactly with one matrix product per batch.
  """
  candidates = model.movie_vectors(tf.range(num_movies, dtype=tf.int64))
  queries = model.user_vectors(user_index)
  scores = tf.matmul(queries, candidates, transpose_b=True)
  true_scores = tf.reduce_sum(queries * model.movie_vectors(movie_index), axis=1, keepdims=True)
  return tf.reduce_sum(tf.cast(scores > true_scores, tf.int32), axis=1)
