"""TF Serving warmup: `assets.extra/tf_serving_warmup_requests` in the SavedModel.

TF Serving replays these PredictionLog records when it loads a version, before
it reports the version AVAILABLE, so the first real request does not pay for
graph initialization (tensorflow.org/tfx/serving/saved_model_warmup). One
request per signature, with real ids of the model, in both batch shapes a
client sends most (1 and 16 rows).
"""

from __future__ import annotations

import os

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from nfrec import contracts

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
BATCH_SIZES = (1, 16)


def _example(user_id: str, movie_id: str) -> bytes:
  def int64(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

  features = {contracts.USER_ID: int64(user_id), contracts.MOVIE_ID: int64(movie_id)}
  return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def requests(
  model_name: str, user_id: str, movie_ids: list[str]
) -> list[predict_pb2.PredictRequest]:
  """Warmup requests for every signature of the serving contract."""
  given = movie_ids[:2]
  inputs_of = {
    contracts.SIGNATURE_DEFAULT: lambda n: {contracts.INPUT_USER_ID: [user_id] * n},
    contracts.SIGNATURE_RECOMMEND: lambda n: {contracts.INPUT_USER_ID: [user_id] * n},
    contracts.SIGNATURE_RECOMMEND_FROM_RATINGS: lambda n: {
      contracts.INPUT_MOVIE_IDS: [given] * n,
      contracts.INPUT_RATINGS: [[4.0] * len(given)] * n,
    },
    contracts.SIGNATURE_PREDICT_RATING: lambda n: {
      contracts.INPUT_USER_ID: [user_id] * n,
      contracts.INPUT_MOVIE_ID: [movie_ids[-1]] * n,
    },
    contracts.SIGNATURE_PREDICT_RATING_FROM_RATINGS: lambda n: {
      contracts.INPUT_MOVIE_IDS: [given] * n,
      contracts.INPUT_RATINGS: [[4.0] * len(given)] * n,
      contracts.INPUT_MOVIE_ID: [movie_ids[-1]] * n,
    },
  }
  if user_id.isdigit() and movie_ids[-1].isdigit():  # the raw columns are integers
    inputs_of[contracts.SIGNATURE_EXAMPLES] = lambda n: {
      contracts.INPUT_EXAMPLES: [_example(user_id, movie_ids[-1])] * n
    }
  result = []
  for signature, inputs in inputs_of.items():
    for size in BATCH_SIZES:
      request = predict_pb2.PredictRequest()
      request.model_spec.name = model_name
      request.model_spec.signature_name = signature
      for name, values in inputs(size).items():
        dtype = tf.float32 if name == contracts.INPUT_RATINGS else tf.string
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=dtype))
      result.append(request)
  return result


def write(export_dir: str, model_name: str, user_id: str, movie_ids: list[str]) -> str:
  """Writes the warmup records into a saved serving model; returns the file."""
  path = os.path.join(export_dir, WARMUP_FILE)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:
    for request in requests(model_name, user_id, movie_ids):
      log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
      )
      writer.write(log.SerializeToString())
  return path
