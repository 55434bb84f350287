"""Transform module: the one place where ids become embedding indices.

Raw ratings (`User_ID`, `Movie_ID` as INT64, `Rating` INT64 or FLOAT) become
`user_index`, `movie_index` (int64) and `rating` (float32). The vocabularies
computed here (files `user_id` and `movie_id`, most frequent first) are the
only id-to-index mapping of the project: training reads the transformed
examples, and the serving model looks raw string ids up in the same files.

Ids are turned into strings before the vocabulary so that serving can take
string ids (`"169999"`) and answer any string, numeric or not. An id not in
the vocabulary maps to index `vocabulary size` (one OOV bucket, at the end),
which the serving model treats as "unknown".
"""

import tensorflow as tf
import tensorflow_transform as tft

# Raw columns of the ratings CSV (Kaggle Netflix layout).
RAW_USER_ID = "User_ID"
RAW_MOVIE_ID = "Movie_ID"
RAW_RATING = "Rating"

# Transformed features read by the Trainer.
USER_INDEX = "user_index"
MOVIE_INDEX = "movie_index"
RATING = "rating"

# Vocabulary names, as passed to tft.TFTransformOutput.vocabulary_file_by_name.
USER_VOCABULARY = "user_id"
MOVIE_VOCABULARY = "movie_id"


def id_to_string(ids: tf.Tensor) -> tf.Tensor:
  """Canonical string form of an id column (INT64 from CSV, or already string)."""
  if ids.dtype == tf.string:
    return ids
  return tf.strings.as_string(ids)


def _dense(feature) -> tf.Tensor:
  """Ratings have exactly one value per column; the schema may give it as [B] or [B, 1]."""
  if isinstance(feature, tf.SparseTensor):
    feature = tf.sparse.to_dense(feature)
  return tf.reshape(feature, [-1])


def preprocessing_fn(inputs):
  """tf.Transform callback: ids to vocabulary indices, rating to float."""
  user_ids = id_to_string(_dense(inputs[RAW_USER_ID]))
  movie_ids = id_to_string(_dense(inputs[RAW_MOVIE_ID]))
  return {
      USER_INDEX: tft.compute_and_apply_vocabulary(
          user_ids, num_oov_buckets=1, vocab_filename=USER_VOCABULARY),
      MOVIE_INDEX: tft.compute_and_apply_vocabulary(
          movie_ids, num_oov_buckets=1, vocab_filename=MOVIE_VOCABULARY),
      RATING: tf.cast(_dense(inputs[RAW_RATING]), tf.float32),
  }
