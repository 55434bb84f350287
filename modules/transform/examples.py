"""Reading Transform's output into memory: one reader for the Trainer and the components.

Transformed examples are small (three numbers per rating), so every consumer
reads the splits it needs once, as numpy columns, instead of parsing records
again and again.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.utils import io_utils

from nfrec import contracts

READ_BATCH_SIZE = 65_536


def split_pattern(examples_artifact, split: str) -> str:
  """The file pattern of one split of an Examples artifact."""
  return io_utils.all_files_pattern(artifact_utils.get_split_uri([examples_artifact], split))


def read_columns(file_patterns, feature_spec: dict) -> dict[str, np.ndarray]:
  """{feature: values} of every example in the (gzipped TFRecord) files, in file order.

  `feature_spec` is Transform's `transformed_feature_spec()`; files are read in
  sorted order, so the same split always gives the same column order.
  """
  patterns = [file_patterns] if isinstance(file_patterns, str) else list(file_patterns)
  files = [path for pattern in patterns for path in sorted(tf.io.gfile.glob(pattern))]
  dataset = (
    tf.data.TFRecordDataset(files, compression_type="GZIP")
    .batch(READ_BATCH_SIZE)
    .map(lambda records: tf.io.parse_example(records, feature_spec))
  )
  parts = {name: [] for name in feature_spec}
  for batch in dataset.as_numpy_iterator():
    for name in feature_spec:
      parts[name].append(batch[name])
  return {
    name: np.concatenate(values) if values else np.zeros(0, feature_spec[name].dtype.as_numpy_dtype)
    for name, values in parts.items()
  }


def read_interactions(examples_artifact, split: str, feature_spec: dict) -> tuple:
  """(user index, movie index, rating) numpy arrays of one split of Transform's output."""
  columns = read_columns(split_pattern(examples_artifact, split), feature_spec)
  return (
    columns[contracts.USER_INDEX],
    columns[contracts.MOVIE_INDEX],
    columns[contracts.RATING_LABEL],
  )
