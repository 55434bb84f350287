"""The core model: what the Trainer exports and the serving model wraps.

The towers and the rating head as TF functions on vocabulary indices, and
Transform's vocabularies as lookup tables (their files become the SavedModel's
assets). All stock TensorFlow: the trained Keras model is only called inside
the traced functions, so loading the core model needs no Keras and no TFRS.
"""

from __future__ import annotations

import tensorflow as tf

from modules.transform import vocabulary
from nfrec import contracts


class CoreModel(tf.Module):
  """`model` is the trained RecommenderModel (its towers and rating head are called);
  `tf_transform_output` gives the vocabularies and the raw feature spec."""

  def __init__(self, model, tf_transform_output):
    super().__init__()
    self.model = model
    self.num_users = tf.constant(
      tf_transform_output.vocabulary_size_by_name(contracts.USER_VOCABULARY), tf.int64
    )
    self.num_movies = tf.constant(
      tf_transform_output.vocabulary_size_by_name(contracts.MOVIE_VOCABULARY), tf.int64
    )
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

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])
  def user_vectors(self, user_index):
    return self.model.user_vectors(user_index)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])
  def movie_vectors(self, movie_index):
    return self.model.movie_vectors(movie_index)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64)])
  def rate_indices(self, user_index, movie_index):
    """Unclipped rating head output."""
    return self.model.predict_ratings(user_index, movie_index)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def ids_from_examples(self, serialized):
    """Raw ratings rows as tf.Examples -> (user ids, movie ids) as strings."""
    parsed = tf.io.parse_example(serialized, self._id_spec)
    return (
      vocabulary.id_to_string(tf.reshape(parsed[contracts.USER_ID], [-1])),
      vocabulary.id_to_string(tf.reshape(parsed[contracts.MOVIE_ID], [-1])),
    )

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=contracts.INPUT_EXAMPLES)])
  def rate_examples(self, serialized):
    """Raw ratings rows as tf.Examples (User_ID, Movie_ID) -> {"rating": [batch]}."""
    user_ids, movie_ids = self.ids_from_examples(serialized)
    return {
      contracts.OUTPUT_RATING: self.rate_indices(
        self.user_index(user_ids), self.movie_index(movie_ids)
      )
    }


def save(core: CoreModel, export_dir: str) -> None:
  tf.saved_model.save(
    core, export_dir, signatures={contracts.SIGNATURE_DEFAULT: core.rate_examples}
  )
