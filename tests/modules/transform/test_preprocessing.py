import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from modules.transform import preprocessing
from nfrec import contracts

RAW_SPEC = {name: tf.io.FixedLenFeature([], tf.int64) for name in contracts.RATINGS_COLUMNS}


def _row(user, movie, rating):
  return {contracts.USER_ID: user, contracts.MOVIE_ID: movie, contracts.RATING: rating}


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
  """Analyze on `train`, apply to `train` and to `unseen` (ids not in train)."""
  train = [_row(7, 100, 5), _row(7, 200, 3), _row(8, 100, 4), _row(9, 100, 1), _row(7, 300, 2)]
  unseen = [_row(12345, 100, 4), _row(8, 999, 2)]
  metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
  output_dir = str(tmp_path_factory.mktemp("transform_fn"))
  with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft_tmp")), force_tf_compat_v1=False):
    (train_out, _), transform_fn = (train, metadata) | tft_beam.AnalyzeAndTransformDataset(
      preprocessing.preprocessing_fn
    )
    unseen_out, _ = ((unseen, metadata), transform_fn) | tft_beam.TransformDataset()
    _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
  return train_out, unseen_out, tft.TFTransformOutput(output_dir)


def test_vocabularies_are_string_ids_most_frequent_first(transformed):
  _, _, output = transformed
  assert output.vocabulary_by_name(contracts.USER_VOCABULARY)[0] == b"7"
  assert output.vocabulary_by_name(contracts.MOVIE_VOCABULARY)[0] == b"100"
  assert output.vocabulary_size_by_name(contracts.USER_VOCABULARY) == 3
  assert output.vocabulary_size_by_name(contracts.MOVIE_VOCABULARY) == 3


def test_ids_become_their_vocabulary_index_and_rating_a_float(transformed):
  train_out, _, output = transformed
  users = [token.decode() for token in output.vocabulary_by_name(contracts.USER_VOCABULARY)]
  movies = [token.decode() for token in output.vocabulary_by_name(contracts.MOVIE_VOCABULARY)]
  first = train_out[0]  # user 7, movie 100, rating 5
  assert users[first[contracts.USER_INDEX]] == "7"
  assert movies[first[contracts.MOVIE_INDEX]] == "100"
  assert first[contracts.RATING_LABEL] == pytest.approx(5.0)
  spec = output.transformed_feature_spec()
  assert spec[contracts.RATING_LABEL].dtype == tf.float32
  assert spec[contracts.USER_INDEX].dtype == spec[contracts.MOVIE_INDEX].dtype == tf.int64


def test_unknown_ids_map_to_the_oov_index_at_the_end(transformed):
  _, unseen_out, _ = transformed
  assert unseen_out[0][contracts.USER_INDEX] == 3  # user 12345 unseen: index = vocab size
  assert unseen_out[1][contracts.MOVIE_INDEX] == 3  # movie 999 unseen
