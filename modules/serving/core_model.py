"""The core model: what the Trainer exports and the serving model wraps.

The towers and the rating head as TF functions, and Transform's vocabularies as
lookup tables (their files become the SavedModel's assets). All stock
TensorFlow: the trained Keras model is only called inside the traced functions,
so loading the core model needs no Keras and no TFRS.

  user_index, movie_index  raw string ids -> vocabulary indices (unknown: the size)
  user_tower      (user index, history movies [B, L], ratings [B, L], lengths [B])
                  -> query [B, D], vector [B, d], bias [B]; histories oldest first,
                  valid entries first; the tower reads the last `history_window`
  movie_tower     (movie index, title tokens [B, T], year bucket [B])
                  -> candidate [B, D], vector [B, d], bias [B], retrieval_bias [B]
  rate            (user vector, user bias, movie vector, movie bias) -> rating [B]
  ids_from_examples  serialized raw rating tf.Examples -> (user ids, movie ids) as
                  strings, parsed with Transform's raw feature spec
"""

from __future__ import annotations

import tensorflow as tf

from modules.transform import vocabulary
from nfrec import contracts

_INDEX = tf.TensorSpec([None], tf.int64)
_VECTORS = tf.TensorSpec([None, None], tf.float32)
_VALUES = tf.TensorSpec([None], tf.float32)


class CoreModel(tf.Module):
  """`model` is the trained RecommenderModel; `tf_transform_output` gives the
  vocabularies (a TFTransformOutput)."""

  def __init__(self, model, tf_transform_output):
    super().__init__()
    self.model = model
    # Variables, so that they are saved with the module (constants are not).
    self.num_users = tf.Variable(model.num_users, dtype=tf.int64, trainable=False)
    self.num_movies = tf.Variable(model.num_movies, dtype=tf.int64, trainable=False)
    # How many of a user's last ratings the user tower pools (the builder pads to it).
    self.history_window = tf.Variable(model.query_window, dtype=tf.int64, trainable=False)
    # Whether a candidate's last column is its retrieval bias (see candidate()).
    self.has_retrieval_bias = tf.Variable(model.hparams.retrieval_bias, trainable=False)
    self.user_table = vocabulary.lookup_table(
      tf_transform_output.vocabulary_file_by_name(contracts.USER_VOCABULARY)
    )
    self.movie_table = vocabulary.lookup_table(
      tf_transform_output.vocabulary_file_by_name(contracts.MOVIE_VOCABULARY)
    )
    raw_spec = tf_transform_output.raw_feature_spec()
    self._id_spec = {name: raw_spec[name] for name in (contracts.USER_ID, contracts.MOVIE_ID)}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def user_index(self, user_id):
    return self.user_table.lookup(user_id)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def movie_index(self, movie_id):
    return self.movie_table.lookup(movie_id)

  @tf.function(
    input_signature=[
      _INDEX,
      tf.TensorSpec([None, None], tf.int64),
      tf.TensorSpec([None, None], tf.float32),
      _INDEX,
    ]
  )
  def user_tower(self, user_index, history_movies, history_ratings, history_length):
    sums = None
    if self.model.hparams.history_window:
      sums = self.model.history_sums(history_movies, history_ratings, history_length)
    vector, bias = self.model.user_tower(user_index, sums)
    return {"query": self.model.query(vector), "vector": vector, "bias": bias}

  @tf.function(input_signature=[_INDEX, tf.TensorSpec([None, None], tf.int64), _INDEX])
  def movie_tower(self, movie_index, title_tokens, year_bucket):
    vector, rating_bias, retrieval_bias = self.model.movie_tower(
      movie_index, title_tokens, year_bucket
    )
    return {
      "candidate": self.model.candidate(vector, retrieval_bias),
      "vector": vector,
      "bias": rating_bias,
      "retrieval_bias": retrieval_bias,
    }

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def ids_from_examples(self, serialized):
    parsed = tf.io.parse_example(serialized, self._id_spec)
    return (
      vocabulary.id_to_string(tf.reshape(parsed[contracts.USER_ID], [-1])),
      vocabulary.id_to_string(tf.reshape(parsed[contracts.MOVIE_ID], [-1])),
    )

  @tf.function(input_signature=[_VECTORS, _VALUES, _VECTORS, _VALUES])
  def rate(self, user_vector, user_bias, movie_vector, movie_bias):
    """Unclipped rating head output."""
    return self.model.rate(user_vector, user_bias, movie_vector, movie_bias)


def save(core: CoreModel, export_dir: str) -> None:
  # No serving signature: the core model is read by ServingModelBuilder, never served.
  tf.saved_model.save(core, export_dir, signatures={})
