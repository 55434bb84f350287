"""Transform module: the one place where ids become embedding indices.

Raw ratings (`User_ID`, `Movie_ID` as INT64, `Rating` INT64 or FLOAT, and
`Timestamp` when the data has time) become `user_index`, `movie_index` (int64),
`rating` (float32) and `rating_time` (int64, 0 without time). The vocabularies
computed here (files `user_id` and `movie_id`, most frequent first) are the
only id-to-index mapping of the project: training reads the transformed
examples, and the serving model looks raw string ids up in the same files
(modules/transform/vocabulary.py states the mapping for both).

The pipeline analyzes train and validation (everything known before eval), so
every user and movie the model may be asked about has an index; ids with no
train rating are mapped to the out-of-vocabulary row by the model itself.
"""

import tensorflow as tf
import tensorflow_transform as tft

from modules.transform import vocabulary
from nfrec import contracts


def dense(feature, default=0) -> tf.Tensor:
  """A column with (at most) one value per example, as [B]; a missing value is `default`."""
  if isinstance(feature, tf.SparseTensor):
    feature = tf.sparse.to_dense(
      tf.sparse.reset_shape(feature, [feature.dense_shape[0], 1]), default_value=default
    )
  return tf.reshape(feature, [-1])


def preprocessing_fn(inputs):
  """tf.Transform callback: ids to vocabulary indices, rating to float."""
  user_ids = vocabulary.id_to_string(dense(inputs[contracts.USER_ID]))
  movie_ids = vocabulary.id_to_string(dense(inputs[contracts.MOVIE_ID]))
  time = inputs.get(contracts.TIMESTAMP)
  return {
    contracts.USER_INDEX: tft.compute_and_apply_vocabulary(
      user_ids, num_oov_buckets=vocabulary.NUM_OOV_BUCKETS, vocab_filename=contracts.USER_VOCABULARY
    ),
    contracts.MOVIE_INDEX: tft.compute_and_apply_vocabulary(
      movie_ids,
      num_oov_buckets=vocabulary.NUM_OOV_BUCKETS,
      vocab_filename=contracts.MOVIE_VOCABULARY,
    ),
    contracts.RATING_LABEL: tf.cast(dense(inputs[contracts.RATING]), tf.float32),
    contracts.RATING_TIME: (
      tf.zeros_like(user_ids, tf.int64) if time is None else tf.cast(dense(time), tf.int64)
    ),
  }
