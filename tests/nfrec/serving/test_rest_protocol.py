"""TF Serving's REST predict protocol (json_tensor.cc's rules), without a model."""

import base64
import json

import numpy as np
import pytest

from nfrec.serving import rest_protocol
from nfrec.serving.rest_protocol import InputSpec, ServingError

STRING = InputSpec(np.dtype(object), "string")
FLOAT = InputSpec(np.dtype(np.float32), "float")
INT64 = InputSpec(np.dtype(np.int64), "int64")
RATINGS = {"movie_ids": STRING, "ratings": FLOAT}


def _request(document, specs):
  return rest_protocol.predict_request(document, specs)


def _error(document, specs) -> ServingError:
  with pytest.raises(ServingError) as caught:
    _request(document, specs)
  assert caught.value.http_status == 400
  return caught.value


def test_row_format_stacks_the_instances_of_each_input():
  request = _request(
    {
      "signature_name": "recommend_from_ratings",
      "instances": [
        {"movie_ids": ["1", "2"], "ratings": [5, 4.5]},
        {"movie_ids": ["3", ""], "ratings": [1.0, 0.0]},
      ],
    },
    RATINGS,
  )
  assert request.signature_name == "recommend_from_ratings"
  assert request.format == rest_protocol.ROW
  assert request.inputs["movie_ids"].tolist() == [[b"1", b"2"], [b"3", b""]]
  assert request.inputs["ratings"].dtype == np.float32
  assert request.inputs["ratings"].tolist() == [[5.0, 4.5], [1.0, 0.0]]


def test_columnar_format_takes_each_input_whole():
  request = _request({"inputs": {"movie_ids": [["1"]], "ratings": [[3]]}}, RATINGS)
  assert request.format == rest_protocol.COLUMNAR
  assert request.signature_name == "serving_default"
  assert request.inputs["movie_ids"].shape == (1, 1)


def test_a_signature_with_one_input_takes_bare_values_and_b64_strings():
  encoded = base64.b64encode("Amélie".encode()).decode()
  rows = _request({"instances": ["10", {"b64": encoded}]}, {"user_id": STRING})
  assert rows.inputs["user_id"].tolist() == [b"10", "Amélie".encode()]
  columns = _request({"inputs": ["10", "20"]}, {"user_id": STRING})
  assert columns.inputs["user_id"].tolist() == [b"10", b"20"]


@pytest.mark.parametrize(
  "document, message",
  [
    ({"instances": [{"movie_ids": ["1"], "rating": [5.0]}]}, "keys must be equal to"),
    ({"inputs": {"movie_ids": [["1"]]}}, "Missing named input: ratings"),
    ({"instances": [{"movie_ids": ["1"], "ratings": ["5"]}]}, "is not of expected type: float"),
    ({"inputs": {"movie_ids": [[1]], "ratings": [[5.0]]}}, "is not of expected type: string"),
    ({"inputs": {"movie_ids": [["1", "2"], ["3"]], "ratings": [[1, 2], [3]]}}, "unexpected size"),
    (
      {
        "instances": [
          {"movie_ids": ["1"], "ratings": [1]},
          {"movie_ids": ["1", "2"], "ratings": [1, 2]},
        ]
      },
      "Expecting shape",
    ),
    ({"instances": [], "signature_name": "x"}, "No values in 'instances'"),
    ({"instances": ["1"]}, "instances is a plain list"),
    ({"inputs": {}, "instances": []}, "only one of 'inputs' or 'instances'"),
    ({"signature_name": "recommend"}, "Missing 'inputs' or 'instances' key"),
    ({"signature_name": 3, "inputs": {}}, "'signature_name' key must be a string"),
    ({"inputs": {"movie_ids": [[{"b64": "%%%"}]], "ratings": [[1]]}}, "Unable to base64 decode"),
    ({"inputs": {"movie_ids": [["1"]], "ratings": [[True]]}}, "Type: True is not of expected"),
    ({"inputs": {"movie_ids": [["1"]], "ratings": [[1e300]]}}, "without loss of precision"),
  ],
)
def test_requests_tf_serving_rejects_are_rejected_with_its_message(document, message):
  assert message in _error(document, RATINGS).message


def test_integers_out_of_range_are_rejected():
  assert "is not of expected type: int64" in _error({"inputs": [2**70]}, {"x": INT64}).message


@pytest.mark.parametrize(
  "body, message",
  [
    (b"", "The document is empty"),
    (b'{"instances": [', "JSON Parse error"),
    (b"[1, 2]", "Is not object"),
    (b'{"a": "\xff"}', "JSON Parse error"),
  ],
)
def test_malformed_json_is_an_invalid_argument(body, message):
  with pytest.raises(ServingError) as caught:
    rest_protocol.parse_json(body)
  assert caught.value.code == "INVALID_ARGUMENT" and message in caught.value.message
  assert json.loads(caught.value.body()) == {"error": caught.value.message}


OUTPUTS = {
  "movie_ids": np.array([[b"1", b""], [b"3", b"4"]], dtype=object),
  "scores": np.array([[0.2, -np.inf], [1.0, 0.5]], dtype=np.float32),
  "popular_fallback": np.array([False, True]),
  "years": np.array([[1995, 0], [2001, 1999]], dtype=np.int64),
}


def test_row_answers_are_one_object_per_row_with_float32_at_its_own_precision():
  text = rest_protocol.predict_response(OUTPUTS, rest_protocol.ROW).decode()
  assert '"scores":[0.2,-Infinity]' in text  # not 0.20000000298023224; -inf bare, as TF Serving
  assert json.loads(text)["predictions"] == [
    {
      "movie_ids": ["1", ""],
      "popular_fallback": False,
      "scores": [0.2, -np.inf],
      "years": [1995, 0],
    },
    {
      "movie_ids": ["3", "4"],
      "popular_fallback": True,
      "scores": [1.0, 0.5],
      "years": [2001, 1999],
    },
  ]


def test_columnar_answers_keep_each_output_whole_and_one_output_is_bare():
  outputs = json.loads(rest_protocol.predict_response(OUTPUTS, rest_protocol.COLUMNAR))["outputs"]
  assert outputs["movie_ids"] == [["1", ""], ["3", "4"]]
  assert outputs["popular_fallback"] == [False, True]
  one = {"rating": np.array([3.5, 4.25], np.float32)}
  assert json.loads(rest_protocol.predict_response(one, rest_protocol.COLUMNAR)) == {
    "outputs": [3.5, 4.25]
  }
  assert json.loads(rest_protocol.predict_response(one, rest_protocol.ROW)) == {
    "predictions": [3.5, 4.25]
  }


def test_outputs_named_bytes_are_base64_and_empty_dimensions_survive():
  outputs = {"image_bytes": np.array([b"\x00\xff"], dtype=object), "empty": np.zeros((1, 0))}
  rows = json.loads(rest_protocol.predict_response(outputs, rest_protocol.ROW))["predictions"]
  assert rows == [{"image_bytes": {"b64": base64.b64encode(b"\x00\xff").decode()}, "empty": []}]
