"""Catalog Transform module: the movie tower's content features, from the movies file.

`Movie_ID`, `Name` (title) and `Year` become
  movie_id      the id as a string (as the rating vocabularies hold ids)
  title_tokens  indices of the title's words in a vocabulary (TFT) of the words
                seen at least twice in the titles; the others map to one OOV index
  year_bucket   0 for an unknown year, else 1 + the year's quantile bucket (TFT)
and the raw `Name` and `Year` pass through for display.
"""

import tensorflow as tf
import tensorflow_transform as tft

from modules.transform import preprocessing, vocabulary
from nfrec import contracts

MIN_TITLES_PER_TOKEN = 2  # a word seen once teaches nothing about other titles


def title_words(titles: tf.Tensor) -> tf.RaggedTensor:
  """Lower-case words (letters and digits) of each title."""
  text = tf.strings.regex_replace(tf.strings.lower(titles), r"[^a-z0-9]+", " ")
  return tf.strings.split(tf.strings.strip(text))


def catalog_preprocessing_fn(inputs):
  """tf.Transform callback for the movies: content features of the movie tower."""
  titles = preprocessing.dense(inputs[contracts.TITLE], default="")
  years = preprocessing.dense(inputs[contracts.YEAR], default=0)
  known_year = years > 0
  bucket = tft.bucketize(
    tf.cast(years, tf.float32), contracts.YEAR_BUCKETS, weights=tf.cast(known_year, tf.float32)
  )
  return {
    contracts.CATALOG_MOVIE_ID: vocabulary.id_to_string(
      preprocessing.dense(inputs[contracts.MOVIE_ID])
    ),
    contracts.TITLE_TOKENS: tft.compute_and_apply_vocabulary(
      title_words(titles).to_sparse(),
      frequency_threshold=MIN_TITLES_PER_TOKEN,
      num_oov_buckets=vocabulary.NUM_OOV_BUCKETS,
      vocab_filename=contracts.TITLE_TOKEN_VOCABULARY,
    ),
    contracts.YEAR_BUCKET: tf.where(known_year, tf.cast(bucket, tf.int64) + 1, 0),
    contracts.TITLE: titles,
    contracts.YEAR: tf.cast(years, tf.int64),
  }
