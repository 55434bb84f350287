"""The id <-> index mapping of Transform's vocabularies, for training and serving alike.

A vocabulary file lists the ids (as strings) most frequent first; an id's index
is its line number, and every id not in the file maps to the one
out-of-vocabulary index at the END (index = vocabulary size), as
`tft.compute_and_apply_vocabulary(num_oov_buckets=1)` does. (Keras's
StringLookup puts it at 0 instead; nothing here uses that.)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

NUM_OOV_BUCKETS = 1


def id_to_string(ids: tf.Tensor) -> tf.Tensor:
  """Canonical string form of an id column (INT64 from CSV, or already string)."""
  if ids.dtype == tf.string:
    return ids
  return tf.strings.as_string(ids)


def lookup_table(vocabulary_file: str) -> tf.lookup.StaticVocabularyTable:
  """String id -> index, with every unknown id at index = vocabulary size."""
  initializer = tf.lookup.TextFileInitializer(
    vocabulary_file,
    tf.string,
    tf.lookup.TextFileIndex.WHOLE_LINE,
    tf.int64,
    tf.lookup.TextFileIndex.LINE_NUMBER,
  )
  return tf.lookup.StaticVocabularyTable(initializer, num_oov_buckets=NUM_OOV_BUCKETS)


def is_known(index, vocabulary_size):
  """True where an index is a vocabulary entry, False at the out-of-vocabulary index."""
  return index < vocabulary_size


def ids_of(vocabulary: np.ndarray, index: np.ndarray) -> np.ndarray:
  """Raw ids (bytes) of indices; the out-of-vocabulary index gets b"" (unknown anywhere)."""
  padded = np.append(vocabulary, b"").astype(object)
  return padded[np.minimum(index, len(vocabulary))]


def read_vocabulary(path: str) -> np.ndarray:
  """A vocabulary file (or the same file among a SavedModel's assets) as an array of bytes."""
  with tf.io.gfile.GFile(path, "rb") as f:
    return np.array([line.rstrip(b"\n") for line in f], dtype=object)
