"""Reading Transform's output into memory: one reader for the Trainer and the components.

Transformed examples are small (three numbers per rating), so every consumer
reads the splits it needs once, as numpy columns, instead of parsing records
again and again.
"""

from __future__ import annotations

import dataclasses

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
  sorted order, so the same split always gives the same column order. A
  variable-length feature comes as [N, longest] padded with PADDING.
  """
  patterns = [file_patterns] if isinstance(file_patterns, str) else list(file_patterns)
  files = [path for pattern in patterns for path in sorted(tf.io.gfile.glob(pattern))]

  def parse(records):
    parsed = tf.io.parse_example(records, feature_spec)
    return {
      name: tf.sparse.to_dense(values, default_value=_padding(values.dtype))
      if isinstance(values, tf.SparseTensor)
      else values
      for name, values in parsed.items()
    }

  dataset = (
    tf.data.TFRecordDataset(files, compression_type="GZIP").batch(READ_BATCH_SIZE).map(parse)
  )
  parts = {name: [] for name in feature_spec}
  for batch in dataset.as_numpy_iterator():
    for name in feature_spec:
      parts[name].append(batch[name])
  return {name: _concatenate(values, feature_spec[name]) for name, values in parts.items()}


PADDING = -1  # of variable-length integer features (strings: b"")


def _padding(dtype):
  return b"" if dtype == tf.string else tf.cast(PADDING, dtype)


def _concatenate(batches: list, spec) -> np.ndarray:
  dtype = spec.dtype.as_numpy_dtype if spec.dtype != tf.string else object
  if not batches:
    return np.zeros((0,) if not isinstance(spec, tf.io.VarLenFeature) else (0, 0), dtype)
  if isinstance(spec, tf.io.VarLenFeature):  # batches of different widths
    width = max(batch.shape[1] for batch in batches)
    fill = b"" if spec.dtype == tf.string else PADDING
    batches = [np.pad(b, [(0, 0), (0, width - b.shape[1])], constant_values=fill) for b in batches]
  return np.concatenate(batches)


def read_interactions(examples_artifact, split: str, feature_spec: dict) -> tuple:
  """(user index, movie index, rating) numpy arrays of one split of Transform's output."""
  columns = read_columns(split_pattern(examples_artifact, split), feature_spec)
  return (
    columns[contracts.USER_INDEX],
    columns[contracts.MOVIE_INDEX],
    columns[contracts.RATING_LABEL],
  )


@dataclasses.dataclass(frozen=True)
class Catalog:
  """The catalog Transform's output, one row per movie (modules/transform/catalog.py)."""

  movie_ids: np.ndarray  # [N] str
  title_tokens: np.ndarray  # [N, T] int64: 1 + the token's index, 0 = padding
  year_bucket: np.ndarray  # [N] int64: 0 = unknown year
  titles: np.ndarray  # [N] str
  years: np.ndarray  # [N] int64 (0 = unknown)
  num_tokens: int  # rows of a token embedding: padding + vocabulary + OOV
  num_year_buckets: int  # rows of a year embedding: unknown + buckets

  def rows_of(self, movie_ids) -> np.ndarray:
    """The catalog row of each movie id, -1 for an id the catalog lacks."""
    row_of = {movie_id: row for row, movie_id in enumerate(self.movie_ids.tolist())}
    return np.array([row_of.get(movie_id, -1) for movie_id in movie_ids], np.int64)

  def features_at(self, rows) -> tuple[np.ndarray, np.ndarray]:
    """(title tokens [N, T], year buckets [N]) of catalog rows; row -1 gets no tokens
    and an unknown year."""
    rows = np.asarray(rows, np.int64)
    found = rows >= 0
    tokens = np.zeros((len(rows), max(self.title_tokens.shape[1], 1)), np.int64)
    tokens[found, : self.title_tokens.shape[1]] = self.title_tokens[rows[found]]
    years = np.zeros(len(rows), np.int64)
    years[found] = self.year_bucket[rows[found]]
    return tokens, years


def read_catalog(file_patterns, tf_transform_output) -> Catalog:
  """The transformed catalog; `tf_transform_output` is the catalog Transform's."""
  columns = read_columns(file_patterns, tf_transform_output.transformed_feature_spec())
  tokens = columns[contracts.TITLE_TOKENS]
  decode = np.vectorize(lambda value: value.decode("utf-8"), otypes=[object])
  return Catalog(
    movie_ids=decode(columns[contracts.CATALOG_MOVIE_ID]) if len(tokens) else np.zeros(0, object),
    title_tokens=np.where(tokens == PADDING, 0, tokens + 1).astype(np.int64),
    year_bucket=columns[contracts.YEAR_BUCKET].astype(np.int64),
    titles=decode(columns[contracts.TITLE]) if len(tokens) else np.zeros(0, object),
    years=columns[contracts.YEAR].astype(np.int64),
    num_tokens=tf_transform_output.vocabulary_size_by_name(contracts.TITLE_TOKEN_VOCABULARY) + 2,
    num_year_buckets=contracts.YEAR_BUCKETS + 1,
  )
