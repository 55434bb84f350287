"""`nfrec serve` over real HTTP: TF Serving's REST paths, answers equal to direct
signature calls, TF Serving-style errors, and a newly pushed version picked up."""

import base64
import http.client
import json
import shutil

import pytest
import tensorflow as tf

from benchmarks import synthetic_model
from modules.serving import serving_model
from nfrec import contracts
from tests.conftest import CATALOG, KNOWN, MOVIES, TOP_K, USERS
from tests.nfrec.serving.conftest import assert_same_answer, http_call, running_server

MODEL = f"/v1/models/{contracts.MODEL_NAME}"


@pytest.fixture(scope="module")
def server(served_base_path):
  with running_server(served_base_path) as (url, _):
    yield url


@pytest.fixture(scope="module")
def signatures(served_base_path):
  return tf.saved_model.load(f"{served_base_path}/1").signatures


def test_status_and_metadata_describe_the_served_version(server, signatures):
  status, body = http_call(server + MODEL)
  assert status == 200
  assert body["model_version_status"] == [
    {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
  ]
  assert http_call(server + MODEL + "/versions/1")[0] == 200
  status, body = http_call(server + MODEL + "/metadata")
  assert status == 200 and body["model_spec"]["version"] == "1"
  defs = body["metadata"]["signature_def"]["signature_def"]
  assert set(signatures) <= set(defs)
  ratings = defs[contracts.SIGNATURE_RECOMMEND_FROM_RATINGS]
  assert ratings["method_name"] == "tensorflow/serving/predict"
  assert ratings["inputs"][contracts.INPUT_RATINGS]["dtype"] == "DT_FLOAT"
  assert ratings["inputs"][contracts.INPUT_MOVIE_IDS]["tensor_shape"]["dim"] == [
    {"size": "-1", "name": ""},
    {"size": "-1", "name": ""},
  ]


def test_row_and_columnar_answers_equal_direct_signature_calls(server, signatures):
  users = [USERS[0], "no-such-user"]
  expected = signatures[contracts.SIGNATURE_RECOMMEND](user_id=tf.constant(users))
  for document, rows in (
    ({"signature_name": "recommend", "instances": users}, True),
    ({"signature_name": "recommend", "inputs": users}, False),
    ({"instances": users}, True),  # serving_default is recommend
  ):
    status, answer = http_call(server + MODEL + ":predict", document)
    assert status == 200, answer
    assert_same_answer(answer, expected, rows)
    assert len(answer["predictions"] if rows else answer["outputs"]["movie_ids"]) == 2

  given = [[MOVIES[0], MOVIES[2], ""]]
  ratings = [[5.0, 2.0, 0.0]]
  expected = signatures[contracts.SIGNATURE_RECOMMEND_FROM_RATINGS](
    movie_ids=tf.constant(given), ratings=tf.constant(ratings)
  )
  columnar = {
    "signature_name": "recommend_from_ratings",
    "inputs": {"movie_ids": given, "ratings": ratings},
  }
  rows = {
    "signature_name": "recommend_from_ratings",
    "instances": [{"movie_ids": given[0], "ratings": ratings[0]}],
  }
  assert_same_answer(http_call(server + MODEL + ":predict", columnar)[1], expected, rows=False)
  assert_same_answer(
    http_call(server + MODEL + "/versions/1:predict", rows)[1], expected, rows=True
  )
  # The given movies are never recommended back, through HTTP as in the signature.
  returned = http_call(server + MODEL + ":predict", columnar)[1]["outputs"]["movie_ids"][0]
  assert not {MOVIES[0], MOVIES[2]} & set(returned) and len(returned) == TOP_K


def test_b64_strings_are_decoded(server, signatures):
  encoded = {"b64": base64.b64encode(USERS[1].encode()).decode()}
  document = {
    "signature_name": "predict_rating",
    "instances": [{"user_id": encoded, "movie_id": MOVIES[0]}],
  }
  status, answer = http_call(server + MODEL + ":predict", document)
  expected = signatures[contracts.SIGNATURE_PREDICT_RATING](
    user_id=tf.constant([USERS[1]]), movie_id=tf.constant([MOVIES[0]])
  )
  assert status == 200
  assert_same_answer(answer, expected, rows=True)


@pytest.mark.parametrize(
  "path, body, status, message",
  [
    (":predict", {"signature_name": "nope", "instances": ["10"]}, 400, 'name: "nope" not found'),
    (
      ":predict",
      {"signature_name": "predict_rating", "instances": [{"user_id": "10", "movie": "100"}]},
      400,
      "keys must be equal to: movie_id,user_id",
    ),
    (
      ":predict",
      {
        "signature_name": "recommend_from_ratings",
        "inputs": {"movie_ids": [["1"]], "ratings": [["5"]]},
      },
      400,
      "is not of expected type: float",
    ),
    (
      ":predict",  # a rank the signature does not take
      {"signature_name": "recommend", "inputs": [["10"]]},
      400,
      "",
    ),
    (
      ":predict",  # inputs whose batch sizes differ: TensorFlow's own error, as a 400
      {
        "signature_name": "predict_rating",
        "inputs": {"user_id": ["10"], "movie_id": ["100", "200"]},
      },
      400,
      "",
    ),
    (":predict", b'{"instances": ["10"', 400, "JSON Parse error"),
    (":predict", b"", 400, "The document is empty"),
    (":classify", {"instances": ["10"]}, 400, "Expected classify signature"),
    ("/versions/7:predict", {"instances": ["10"]}, 404, "Specific(netflix_recommender, 7)"),
    ("/versions/7", None, 404, "Could not find version 7"),
    ("/labels/stable", None, 400, "Malformed request: GET"),
  ],
)
def test_bad_requests_get_tf_serving_errors(server, path, body, status, message):
  got, answer = http_call(server + MODEL + path, body)
  assert got == status
  assert isinstance(answer, dict) and set(answer) == {"error"}, answer
  assert message in answer["error"]
  assert "Traceback" not in answer["error"]


def test_an_unknown_model_is_not_found(server):
  status, answer = http_call(server + "/v1/models/other:predict", {"instances": ["10"]})
  assert (status, answer) == (404, {"error": "Servable not found for request: Latest(other)"})
  assert http_call(server + "/v1/models/other")[0] == 404


def test_a_10_mb_body_is_refused_before_it_is_read(server):
  # As curl sends a large body: headers first, the body once the server says continue.
  host, port = server.removeprefix("http://").split(":")
  connection = http.client.HTTPConnection(host, int(port), timeout=60)
  connection.putrequest("POST", MODEL + ":predict")
  connection.putheader("Content-Length", str(10 * 1024 * 1024))
  connection.putheader("Expect", "100-continue")
  connection.endheaders()
  reply = connection.getresponse()
  answer = json.loads(reply.read())
  assert reply.status == 413 and "larger than this server's limit" in answer["error"]
  connection.close()
  assert http_call(server + MODEL)[0] == 200  # and the server still answers


def test_the_page_lookups_read_the_models_catalog_and_record(server):
  status, answer = http_call(server + "/api/movies?q=hamlet")
  assert status == 200
  assert [(m["title"], m["year"]) for m in answer["movies"]] == [("Hamlet", 1948), ("Hamlet", 1996)]
  titles = [m["title"] for m in http_call(server + "/api/movies?q=HEAT")[1]["movies"]]
  assert titles == ["Heat", "Heat Returns"]  # the exact title first
  assert len(http_call(server + "/api/movies?q=h&limit=1")[1]["movies"]) == 1
  assert http_call(server + "/api/movies?q=h&limit=abc") == (
    400,
    {"error": "limit must be a whole number, got 'abc'"},
  )
  user = http_call(server + f"/api/users/{USERS[0]}")[1]
  rated = [MOVIES[m] for m in KNOWN.movie[KNOWN.user == 0]]
  assert user["known"] and [m["movie_id"] for m in user["history"]] == rated
  assert http_call(server + "/api/users/nobody")[1] == {
    "user_id": "nobody",
    "known": False,
    "history": [],
  }
  assert http_call(server + "/api/users")[1]["users"] == USERS
  status, page = http_call(server + "/")
  assert status == 200 and "recommend_from_ratings" in page and contracts.MODEL_NAME in page


def test_a_newly_pushed_version_is_served_without_a_restart(core, saved_model_dir, tmp_path):
  import time

  shutil.copytree(saved_model_dir, tmp_path / "1")
  with running_server(str(tmp_path), poll_seconds=0.1) as (url, watcher):
    first = http_call(url + MODEL + ":predict", {"instances": [USERS[0]]})[1]
    assert len(first["predictions"][0]["movie_ids"]) == TOP_K
    # A broken folder that looks like a version is logged and skipped, not served.
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / "saved_model.pb").write_bytes(b"not a model")
    time.sleep(1)
    assert http_call(url + MODEL)[1]["model_version_status"][0]["version"] == "1"
    # Version 3 recommends 2 movies instead of 4: the answer shows which one is served.
    model = synthetic_model.serving_model_from(core, len(USERS), MOVIES, CATALOG, KNOWN, top_k=2)
    staging = tmp_path / ".staging"
    serving_model.save(model, str(staging))
    staging.rename(tmp_path / "3")  # as the Pusher does: complete, then renamed
    deadline = time.time() + 60
    while http_call(url + MODEL)[1]["model_version_status"][0]["version"] != "3":
      assert time.time() < deadline, "version 3 was not picked up"
      time.sleep(0.1)
    answer = http_call(url + MODEL + ":predict", {"instances": [USERS[0]]})[1]
    assert len(answer["predictions"][0]["movie_ids"]) == 2
    assert http_call(url + MODEL + "/versions/1:predict", {"instances": ["10"]})[0] == 404
    assert watcher.current.version == 3


def test_a_chunked_body_over_the_limit_is_refused(served_base_path):
  """No Content-Length to check up front: the server counts while it reads."""
  with running_server(served_base_path, max_request_bytes=1_000) as (url, _):
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    chunks = iter([b'{"instances": [' + b'"10", ' * 300, b'"10"]}'])
    connection.request("POST", MODEL + ":predict", body=chunks, encode_chunked=True)
    reply = connection.getresponse()
    assert reply.status == 413 and "limit of 1000 bytes" in json.loads(reply.read())["error"]
    connection.close()


def test_an_unexpected_failure_is_a_500_without_a_traceback(served_base_path, monkeypatch):
  from nfrec.serving import model_server

  def broken(self, *args):
    raise RuntimeError("something went wrong inside")

  monkeypatch.setattr(model_server.ModelServer, "predict", broken)
  with running_server(served_base_path) as (url, _):
    status, answer = http_call(url + MODEL + ":predict", {"instances": ["10"]})
  assert status == 500
  assert answer == {"error": "RuntimeError: something went wrong inside"}


def test_a_scann_model_is_served_with_scanns_ops(core, tmp_path, served_base_path):
  from nfrec.serving import model_server
  from tests.conftest import tiny_serving_model

  serving_model.save(tiny_serving_model(core, index_type="scann"), str(tmp_path / "1"))
  # What makes the server import ScaNN: the model's ops (this process may have it already).
  assert model_server._uses_scann(model_server._saved_model_proto(str(tmp_path / "1")))
  assert not model_server._uses_scann(model_server._saved_model_proto(served_base_path + "/1"))
  with running_server(str(tmp_path)) as (url, _):
    status, answer = http_call(url + MODEL + ":predict", {"instances": [USERS[0]]})
  assert status == 200, answer
  assert len(answer["predictions"][0]["movie_ids"]) == TOP_K
