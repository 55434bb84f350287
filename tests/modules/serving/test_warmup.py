"""TF Serving warmup records: one request per signature, each one answerable."""

import shutil

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from modules.serving import warmup
from tests.conftest import MOVIES, USERS


def test_every_signature_gets_warmup_requests_the_model_answers(saved_model_dir, tmp_path):
  export_dir = str(tmp_path / "1")
  shutil.copytree(saved_model_dir, export_dir)
  path = warmup.write(export_dir, "netflix_recommender", USERS[0], MOVIES[:3])
  assert path.endswith("assets.extra/tf_serving_warmup_requests")
  model = tf.saved_model.load(export_dir)
  seen = {}
  for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
    request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
    assert request.model_spec.name == "netflix_recommender"
    inputs = {name: tf.constant(tf.make_ndarray(t)) for name, t in request.inputs.items()}
    outputs = model.signatures[request.model_spec.signature_name](**inputs)
    rows = next(iter(outputs.values())).shape[0]
    seen.setdefault(request.model_spec.signature_name, []).append(rows)
  assert set(seen) == set(model.signatures)
  assert all(sorted(sizes) == list(warmup.BATCH_SIZES) for sizes in seen.values())
