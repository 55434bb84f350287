"""Transform module: the one place where ids become embedding indices.

Raw ratings (`User_ID`, `Movie_ID` as INT64, `Rating` INT64 or FLOAT) become
`user_index`, `movie_index` (int64) and `rating` (float32). The vocabularies
computed here (files `user_id` and `movie_id`, most frequent first) are the
only id-to-index mapping of the project: training reads the transformed
examples, and the serving model looks raw string ids up in the same files
(modules/transform/vocabulary.py states the mapping for both).
"""

import tensorflow as tf
import tensorflow_transform as tft

from modules.transform import vocabulary
from nfrec import contracts


def _dense(feature) -> tf.Tensor:
  """Ratings have exactly one value per column; the schema may give it as [B] or [B, 1]."""
  if isinstance(feature, tf.SparseTensor):
    feature = tf.sparse.to_dense(feature)
  return tf.reshape(feature, [-1])


def preprocessing_fn(inputs):
  """tf.Transform callback: ids to vocabulary indices, rating to float."""
  user_ids = vocabulary.id_to_string(_dense(inputs[contracts.USER_ID]))
  movie_ids = vocabulary.id_to_string(_dense(inputs[contracts.MOVIE_ID]))
  return {
    contracts.USER_INDEX: tft.compute_and_apply_vocabulary(
      user_ids, num_oov_buckets=vocabulary.NUM_OOV_BUCKETS, vocab_filename=contracts.USER_VOCABULARY
    ),
    contracts.MOVIE_INDEX: tft.compute_and_apply_vocabulary(
      movie_ids,
      num_oov_buckets=vocabulary.NUM_OOV_BUCKETS,
      vocab_filename=contracts.MOVIE_VOCABULARY,
    ),
    contracts.RATING_LABEL: tf.cast(_dense(inputs[contracts.RATING]), tf.float32),
  }
