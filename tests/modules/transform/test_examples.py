"""The one reader of Transform's output (modules/transform/examples.py)."""

import numpy as np
import tensorflow as tf

from modules.transform import examples
from nfrec import contracts

SPEC = {
  contracts.USER_INDEX: tf.io.FixedLenFeature([], tf.int64),
  contracts.MOVIE_INDEX: tf.io.FixedLenFeature([], tf.int64),
  contracts.RATING_LABEL: tf.io.FixedLenFeature([], tf.float32),
}


def _write(path, rows):
  with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
    for user, movie, rating in rows:
      feature = {
        contracts.USER_INDEX: tf.train.Feature(int64_list=tf.train.Int64List(value=[user])),
        contracts.MOVIE_INDEX: tf.train.Feature(int64_list=tf.train.Int64List(value=[movie])),
        contracts.RATING_LABEL: tf.train.Feature(float_list=tf.train.FloatList(value=[rating])),
      }
      writer.write(
        tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
      )


def test_reads_every_file_of_the_pattern_in_sorted_order(tmp_path):
  _write(tmp_path / "part-00001.gz", [(3, 30, 1.0)])
  _write(tmp_path / "part-00000.gz", [(1, 10, 5.0), (2, 20, 4.0)])
  columns = examples.read_columns(str(tmp_path / "part-*"), SPEC)
  assert columns[contracts.USER_INDEX].tolist() == [1, 2, 3]
  assert columns[contracts.MOVIE_INDEX].tolist() == [10, 20, 30]
  np.testing.assert_allclose(columns[contracts.RATING_LABEL], [5.0, 4.0, 1.0])


def test_no_files_give_empty_typed_columns(tmp_path):
  columns = examples.read_columns([str(tmp_path / "none-*")], SPEC)
  assert columns[contracts.USER_INDEX].dtype == np.int64 and columns[contracts.USER_INDEX].size == 0
  assert columns[contracts.RATING_LABEL].dtype == np.float32
