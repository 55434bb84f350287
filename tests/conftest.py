"""Shared test setup."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads

import modules  # noqa: F401  (Keras 2 for TFRS, chosen before TensorFlow loads)
import pytest

from nfrec.data import sample as sample_data

TINY_SAMPLE = sample_data.SampleSpec(num_users=300, num_movies=120, mean_ratings_per_user=20.0,
                                     seed=7)


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
  """A small Netflix-layout data folder (ratings/ and movies/)."""
  root = tmp_path_factory.mktemp("tiny_data")
  sample_data.write(str(root), TINY_SAMPLE)
  return str(root)
