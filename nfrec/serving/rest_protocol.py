"""TF Serving's REST predict protocol: JSON request -> input arrays, outputs -> JSON.

Follows tensorflow_serving/util/json_tensor.cc, so a request that TF Serving
accepts gives the same answer here and one it rejects gets the same kind of
error: `{"error": "..."}` with TF Serving's HTTP status for the error code.

- Row format: `{"signature_name": S, "instances": [...]}`; each instance is an
  object with every input of the signature (or a bare value when the signature
  has one input); all instances of an input have the same shape; the answer is
  `{"predictions": [...]}`, one object per row (a bare value for one output).
- Columnar format: `{"inputs": {name: value, ...}}` (or a bare value for one
  input); the answer is `{"outputs": {name: value}}` (a bare value for one output).
- Strings may be sent as `{"b64": "..."}`; outputs whose name ends in `_bytes`
  are written that way. Floats are written at their own (float32) precision.

Pure Python and NumPy: the server (nfrec/serving/model_server.py) turns the
arrays into tensors and calls the signature.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json

import numpy as np

INSTANCES = "instances"
INPUTS = "inputs"
PREDICTIONS = "predictions"
OUTPUTS = "outputs"
SIGNATURE_NAME = "signature_name"
B64 = "b64"
BYTES_SUFFIX = "_bytes"
DEFAULT_SIGNATURE = "serving_default"
ROW, COLUMNAR = "row", "columnar"

# TF Serving's HTTP status of each error code (its ToHTTPStatusCode).
HTTP_STATUS = {
  "INVALID_ARGUMENT": 400,
  "FAILED_PRECONDITION": 400,
  "OUT_OF_RANGE": 400,
  "NOT_FOUND": 404,
  "RESOURCE_EXHAUSTED": 429,
  "UNIMPLEMENTED": 501,
  "UNAVAILABLE": 503,
  "INTERNAL": 500,
}


class ServingError(Exception):
  """An error answered as TF Serving answers it: a code and a message."""

  def __init__(self, code: str, message: str, http_status: int | None = None):
    super().__init__(message)
    self.code = code
    self.message = message
    self.http_status = http_status or HTTP_STATUS.get(code, 500)

  def body(self) -> bytes:
    return json.dumps({"error": self.message}).encode()


def invalid(message: str) -> ServingError:
  return ServingError("INVALID_ARGUMENT", message)


@dataclasses.dataclass(frozen=True)
class InputSpec:
  """What a signature accepts for one input: a NumPy dtype (np.object_ for strings),
  TF's dtype name for messages, and the shape (None: any rank; a None dim: any size)."""

  dtype: np.dtype
  tf_name: str
  shape: tuple | None = None


# ---------------------------------------------------------------------------
# Requests.


@dataclasses.dataclass(frozen=True)
class PredictRequest:
  signature_name: str
  inputs: dict  # name -> np.ndarray
  format: str  # ROW or COLUMNAR


def parse_json(body: bytes) -> dict:
  if not body:
    raise invalid("JSON Parse error: The document is empty")
  try:
    document = json.loads(body)
  except UnicodeDecodeError as error:
    raise invalid(f"JSON Parse error: Invalid encoding in string ({error.reason})") from None
  except json.JSONDecodeError as error:
    raise invalid(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
  if not isinstance(document, dict):
    raise invalid(f"JSON Value: {_short(document)} Is not object")
  return document


def signature_name_of(document: dict) -> str:
  name = document.get(SIGNATURE_NAME, "")
  if not isinstance(name, str):
    raise invalid(
      f"JSON Value: {_short(document)} not formatted correctly. "
      "'signature_name' key must be a string value."
    )
  return name or DEFAULT_SIGNATURE


def predict_request(document: dict, input_specs: dict[str, InputSpec]) -> PredictRequest:
  """The input arrays of a predict request, checked against the signature's inputs."""
  signature_name = signature_name_of(document)
  if INSTANCES in document and INPUTS in document:
    raise invalid(
      f"JSON Value: {_short(document)} Not formatted correctly expecting only one of "
      "'inputs' or 'instances' keys to exist"
    )
  if INSTANCES in document:
    inputs, request_format = _from_instances(document[INSTANCES], input_specs), ROW
  elif INPUTS in document:
    inputs, request_format = _from_inputs(document[INPUTS], input_specs), COLUMNAR
  else:
    raise invalid("Missing 'inputs' or 'instances' key")
  for name, array in inputs.items():
    _check_shape(name, array.shape, input_specs[name].shape)
  return PredictRequest(signature_name, inputs, request_format)


def _check_shape(name: str, shape: tuple, expected: tuple | None) -> None:
  if expected is None:
    return
  if len(shape) != len(expected) or any(
    want is not None and want != got for got, want in zip(shape, expected, strict=True)
  ):
    wanted = "[" + ",".join("-1" if d is None else str(d) for d in expected) + "]"
    raise invalid(
      f"input {name} has shape {list(shape)}, which does not match the signature's {wanted}"
    )


def _from_instances(instances, specs: dict[str, InputSpec]) -> dict:
  if not isinstance(instances, list):
    raise invalid("Excepting 'instances' to be an list/array")
  if not instances:
    raise invalid("No values in 'instances' array")
  objects = _is_named_object(instances[0])
  if not objects and len(specs) > 1:
    raise invalid(
      "instances is a plain list, but expecting list of objects as multiple input tensors "
      "required as per tensorinfo_map"
    )
  names = sorted(specs)
  rows: dict[str, list] = {name: [] for name in names}
  shapes: dict[str, tuple] = {}
  for index, instance in enumerate(instances):
    if objects != _is_named_object(instance):
      kind = "object but got list" if objects else "value/list but got object"
      raise invalid(f"Expecting {kind} at item {index} of input list")
    items = instance if objects else {names[0]: instance}
    if objects and sorted(items) != names:
      raise invalid(
        f"Failed to process element: {index} of 'instances' list. JSON object: "
        f"{_short(instance)} keys must be equal to: {','.join(names)}"
      )
    for name, value in items.items():
      try:
        array = _array(value, specs[name])
      except ServingError as error:
        key = f" key: {name}" if objects else ""
        raise invalid(
          f"Failed to process element: {index}{key} of 'instances' list. Error: {error.message}"
        ) from None
      if shapes.setdefault(name, array.shape) != array.shape:
        raise invalid(f"Expecting shape {list(shapes[name])} but got: {list(array.shape)}")
      rows[name].append(array)
  return {name: np.stack(arrays) for name, arrays in rows.items()}


def _from_inputs(inputs, specs: dict[str, InputSpec]) -> dict:
  if not _is_named_object(inputs):
    if len(specs) > 1:
      raise invalid(
        "inputs is a plain value/list, but expecting an object as multiple input tensors "
        "required as per tensorinfo_map"
      )
    (name,) = specs
    return {name: _array(inputs, specs[name])}
  arrays = {}
  for name in sorted(specs):
    if name not in inputs:
      raise invalid(f"Missing named input: {name} in 'inputs' object.")
    arrays[name] = _array(inputs[name], specs[name])
  return arrays


def _is_named_object(value) -> bool:
  return isinstance(value, dict) and not _is_b64(value)


def _is_b64(value) -> bool:
  return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64), str)


def _shape(value) -> list[int]:
  """The dense shape a nested list claims (its first elements' lengths)."""
  shape = []
  while isinstance(value, list):
    shape.append(len(value))
    if not value:
      break
    value = value[0]
  return shape


def _array(value, spec: InputSpec) -> np.ndarray:
  """A dense array of the spec's dtype from a JSON value; ragged lists and values
  of the wrong JSON type are errors, as in TF Serving."""
  shape = _shape(value)
  flat: list = []
  _flatten(value, 0, shape, spec, flat)
  return np.array(flat, dtype=spec.dtype).reshape(shape)


def _flatten(value, level: int, shape: list[int], spec: InputSpec, out: list) -> None:
  if not isinstance(value, list):
    if level != len(shape):
      raise invalid(
        f"JSON Value: {_short(value)} found at incorrect level: {level + 1} in the JSON DOM. "
        f"Expected at level: {len(shape)}"
      )
    out.append(_scalar(value, spec))
    return
  if level >= len(shape):
    raise invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
  if len(value) != shape[level]:
    raise invalid(
      f"Encountered list at unexpected size: {len(value)} at level: {level} "
      f"expected size: {shape[level]}"
    )
  for item in value:
    _flatten(item, level + 1, shape, spec, out)


def _scalar(value, spec: InputSpec):
  kind = spec.dtype.kind
  if kind == "O":  # string
    if isinstance(value, str):
      return value.encode()
    if _is_b64(value):
      try:
        return base64.b64decode(value[B64], validate=True)
      except (binascii.Error, ValueError):
        raise invalid("Unable to base64 decode") from None
    if isinstance(value, dict):
      raise invalid(f"JSON Value: {_short(value)} not formatted correctly for base64 data")
  elif kind == "f":
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      if abs(value) > np.finfo(spec.dtype).max and np.isfinite(value):
        raise invalid(
          f"Cannot convert JSON value: {_short(value)} to {spec.tf_name} without loss of precision."
        )
      return value
  elif kind in "iu":
    if isinstance(value, int) and not isinstance(value, bool):
      info = np.iinfo(spec.dtype)
      if info.min <= value <= info.max:
        return value
  elif kind == "b":
    if isinstance(value, bool):
      return value
  raise invalid(
    f"JSON Value: {_short(value)} Type: {_json_type(value)} is not of expected type: {spec.tf_name}"
  )


def _json_type(value) -> str:
  if value is None:
    return "Null"
  if isinstance(value, bool):
    return "True" if value else "False"
  if isinstance(value, (int, float)):
    return "Number"
  if isinstance(value, str):
    return "String"
  return "Array" if isinstance(value, list) else "Object"


def _short(value, limit: int = 200) -> str:
  text = json.dumps(value)
  return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------
# Responses.


def predict_response(outputs: dict, request_format: str) -> bytes:
  """{"predictions": rows} or {"outputs": columns}, as TF Serving writes them."""
  names = sorted(outputs)
  values = {name: _json_values(np.asarray(outputs[name]), name) for name in names}
  if request_format == COLUMNAR:
    body = values if len(names) > 1 else values[names[0]]
    return _dumps({OUTPUTS: body})
  for name in names:
    if np.ndim(outputs[name]) == 0:
      raise invalid(f"Tensor name: {name} has no shape information")
  batch_sizes = {np.shape(outputs[name])[0] for name in names}
  if len(batch_sizes) > 1:
    raise invalid(f"Output tensors have inconsistent batch sizes: {sorted(batch_sizes)}")
  (batch_size,) = batch_sizes
  if len(names) == 1:
    rows = values[names[0]]
  else:
    rows = [{name: values[name][row] for name in names} for row in range(batch_size)]
  return _dumps({PREDICTIONS: rows})


def _json_values(array: np.ndarray, name: str):
  """Nested lists of JSON values: strings decoded (or b64 for `*_bytes` outputs),
  float32 at its shortest round-trip form (0.2, not 0.20000000298023224)."""
  if array.dtype.kind in "OSU":
    if name.endswith(BYTES_SUFFIX):
      convert = lambda b: {B64: base64.b64encode(_bytes(b)).decode()}  # noqa: E731
    else:
      convert = lambda b: _bytes(b).decode("utf-8", errors="replace")  # noqa: E731
    flat = [convert(item) for item in array.reshape(-1).tolist()]
    return _nest(flat, array.shape)
  if array.dtype == np.float32 or array.dtype == np.float16:
    flat = [float(text) for text in array.reshape(-1).astype(str).tolist()]
    return _nest(flat, array.shape)
  return array.tolist()


def _bytes(item) -> bytes:
  return item if isinstance(item, bytes) else str(item).encode()


def _nest(flat: list, shape: tuple):
  """A flat list of JSON values as nested lists of the given shape."""
  array = np.empty(len(flat), dtype=object)
  array[:] = flat
  return array.reshape(shape).tolist()


def _dumps(document) -> bytes:
  # NaN and +-Infinity are written bare, as TF Serving writes them.
  return json.dumps(document, separators=(",", ":"), allow_nan=True).encode()
