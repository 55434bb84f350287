"""`nfrec serve`: the TF Serving REST API for laptops, tests and demos, and a page.

Production serves the pushed model with `tensorflow_model_server`; this answers
the same REST requests (nfrec/serving/rest_protocol.py) where that binary is not
available (no PyPI or Debian package, no Apple-silicon build, no Docker):

  GET  /v1/models/{name}[/versions/{v}]            version status
  GET  /v1/models/{name}[/versions/{v}]/metadata   signature defs
  POST /v1/models/{name}[/versions/{v}]:predict    row or columnar format

Like TF Serving it serves the newest version folder of the model base path and
picks up a newly pushed one without a restart (a thread polls the folder, loads
the new version beside the old and swaps them; a version that fails to load is
logged and the old one stays). Models are loaded with TensorFlow alone.

The page at `/` (nfrec/serving/page/) calls the predict API like any client,
plus two read-only lookups in the served model's own catalog and record:
  GET /api/movies?q=TITLE   catalog movies whose title contains TITLE
  GET /api/users/{id}       the movies the model knows this user rated
Starlette (ASGI) under uvicorn; the TensorFlow calls run in its thread pool.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import itertools
import logging
import os
import re
import threading

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import error_codes_pb2, saved_model_pb2

from nfrec import contracts
from nfrec.serving import rest_protocol
from nfrec.serving.rest_protocol import ServingError, invalid

log = logging.getLogger("nfrec.serve")

DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
DEFAULT_POLL_SECONDS = 1.0  # TF Serving's --file_system_poll_wait_seconds
PREDICT_PATH = re.compile(r"(?i)/v1/models/([^/:]+)(?:/versions/(\d+))?:(classify|regress|predict)")
STATUS_PATH = re.compile(r"(?i)/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata)?")
PREDICT_METHOD = "tensorflow/serving/predict"


@dataclasses.dataclass
class LoadedVersion:
  """One loaded model version: its signatures, their input specs, its metadata,
  and the catalog and record the page reads."""

  version: int
  path: str
  model: object
  signatures: dict
  input_specs: dict  # signature -> {input name: rest_protocol.InputSpec}
  signature_defs: dict  # signature -> SignatureDef as TF Serving's metadata JSON
  catalog: dict  # movie_ids, titles, years, training_ratings, folded titles
  user_rows: dict  # User_ID -> row of the model's record


def load_version(path: str) -> LoadedVersion:
  saved_model = _saved_model_proto(path)
  if _uses_scann(saved_model):
    # A ScaNN index (`nfrec run --index scann`): its ops are registered by importing
    # ScaNN, as only a ScaNN-enabled TF Serving build could load it.
    import scann  # noqa: F401
  model = tf.saved_model.load(path)
  signatures = dict(model.signatures)
  input_specs = {
    name: {key: _input_spec(spec) for key, spec in function.structured_input_signature[1].items()}
    for name, function in signatures.items()
  }
  catalog = {
    "movie_ids": [m.decode() for m in model.movie_ids.numpy()],
    "titles": [t.decode() for t in model.titles.numpy()],
    "years": model.years.numpy().tolist(),
    "training_ratings": model.movie_training_ratings.numpy().tolist(),
  }
  catalog["folded"] = [title.casefold() for title in catalog["titles"]]
  with open(contracts.asset_path(path, contracts.USER_VOCABULARY), "rb") as f:
    user_rows = {line.rstrip(b"\n").decode(): row for row, line in enumerate(f)}
  return LoadedVersion(
    version=int(os.path.basename(os.path.normpath(path))),
    path=path,
    model=model,
    signatures=signatures,
    input_specs=input_specs,
    signature_defs=_signature_defs(saved_model),
    catalog=catalog,
    user_rows=user_rows,
  )


def _input_spec(spec: tf.TensorSpec) -> rest_protocol.InputSpec:
  numpy_dtype = np.dtype(object) if spec.dtype == tf.string else np.dtype(spec.dtype.as_numpy_dtype)
  # TF's own type name (DT_FLOAT -> "float"), as TF Serving's messages give it.
  tf_name = types_pb2.DataType.Name(spec.dtype.as_datatype_enum)[len("DT_") :].lower()
  shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
  return rest_protocol.InputSpec(numpy_dtype, tf_name, shape)


def _saved_model_proto(path: str) -> saved_model_pb2.SavedModel:
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    saved_model.ParseFromString(f.read())
  return saved_model


def _uses_scann(saved_model: saved_model_pb2.SavedModel) -> bool:
  ops = saved_model.meta_graphs[0].meta_info_def.stripped_op_list.op
  return any(op.name.startswith("Scann") for op in ops)


def _signature_defs(saved_model: saved_model_pb2.SavedModel) -> dict:
  return {
    name: json_format.MessageToDict(
      signature, preserving_proto_field_name=True, including_default_value_fields=True
    )
    for name, signature in saved_model.meta_graphs[0].signature_def.items()
  }


class ModelWatcher:
  """The served version of one model base path, swapped when a newer one appears."""

  def __init__(self, base_path: str, poll_seconds: float = DEFAULT_POLL_SECONDS):
    self.base_path = base_path
    self.poll_seconds = poll_seconds
    self.current: LoadedVersion | None = None
    self._failed: set[str] = set()
    self._stop = threading.Event()
    self._thread: threading.Thread | None = None

  def refresh(self) -> None:
    """Loads the newest version if it is newer than the served one."""
    newest = contracts.latest_version(self.base_path)
    if newest is None or newest in self._failed:
      return
    if self.current is not None and int(newest) <= self.current.version:
      return
    path = os.path.join(self.base_path, newest)
    try:
      loaded = load_version(path)
    except Exception:  # a broken version must not take down the one being served
      log.exception("%s: failed to load; still serving the previous version", path)
      self._failed.add(newest)
      return
    self.current = loaded  # one reference swap: requests see the old or the new version
    log.info("serving version %s from %s", newest, path)

  def start(self) -> None:
    self.refresh()
    self._thread = threading.Thread(target=self._poll, name="model-watcher", daemon=True)
    self._thread.start()

  def stop(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout=30)

  def _poll(self) -> None:
    while not self._stop.wait(self.poll_seconds):
      self.refresh()


class ModelServer:
  """The request handlers, independent of the HTTP framework."""

  def __init__(self, model_name: str, watcher: ModelWatcher):
    self.model_name = model_name
    self.watcher = watcher

  def _version(self, name: str, version: str | None, for_predict: bool) -> LoadedVersion:
    current = self.watcher.current
    served = name == self.model_name and current is not None
    if served and (version is None or int(version) == current.version):
      return current
    if for_predict:
      spec = f"Specific({name}, {version})" if version else f"Latest({name})"
      raise ServingError("NOT_FOUND", f"Servable not found for request: {spec}")
    if served:  # the model is served, at another version
      raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}")
    raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")

  def status(self, name: str, version: str | None) -> dict:
    loaded = self._version(name, version, for_predict=False)
    return {
      "model_version_status": [
        {
          "version": str(loaded.version),
          "state": "AVAILABLE",
          "status": {"error_code": "OK", "error_message": ""},
        }
      ]
    }

  def metadata(self, name: str, version: str | None) -> dict:
    loaded = self._version(name, version, for_predict=False)
    return {
      "model_spec": {"name": name, "signature_name": "", "version": str(loaded.version)},
      "metadata": {"signature_def": {"signature_def": loaded.signature_defs}},
    }

  def predict(self, name: str, version: str | None, method: str, body: bytes) -> bytes:
    loaded = self._version(name, version, for_predict=True)
    document = rest_protocol.parse_json(body)
    signature_name = rest_protocol.signature_name_of(document)
    if signature_name not in loaded.signatures:
      raise invalid(f'Serving signature name: "{signature_name}" not found in signature def')
    if method != "predict":
      raise invalid(
        f"Expected {method} signature method_name to be tensorflow/serving/{method}. "
        f"Was: {PREDICT_METHOD}"
      )
    request = rest_protocol.predict_request(document, loaded.input_specs[signature_name])
    function = loaded.signatures[signature_name]
    try:
      outputs = function(**{key: tf.constant(value) for key, value in request.inputs.items()})
    except tf.errors.OpError as error:  # e.g. inputs whose batch sizes differ
      raise ServingError(_code_name(error.error_code), error.message) from None
    return rest_protocol.predict_response(
      {key: value.numpy() for key, value in outputs.items()}, request.format
    )

  # -- The page's lookups ------------------------------------------------------

  def search_movies(self, query: str, limit: int) -> list[dict]:
    """Catalog movies whose title contains the query (case-insensitive): exact
    titles first, then titles starting with it, then the most rated."""
    loaded = self._version(self.model_name, None, for_predict=False)
    catalog, wanted = loaded.catalog, query.strip().casefold()
    if not wanted:
      return []
    hits = [row for row, title in enumerate(catalog["folded"]) if wanted in title]
    hits.sort(
      key=lambda row: (
        catalog["folded"][row] != wanted,
        not catalog["folded"][row].startswith(wanted),
        -catalog["training_ratings"][row],
        catalog["titles"][row],
      )
    )
    return [_movie(catalog, row) for row in hits[:limit]]

  def user_history(self, user_id: str) -> dict:
    """The movies the served model knows this user rated (its training record)."""
    loaded = self._version(self.model_name, None, for_predict=False)
    row = loaded.user_rows.get(user_id)
    if row is None or row >= loaded.model.rated_row_splits.shape[0] - 1:
      return {"user_id": user_id, "known": False, "history": []}
    splits = loaded.model.rated_row_splits
    rated = loaded.model.rated_movies[int(splits[row]) : int(splits[row + 1])].numpy()
    return {
      "user_id": user_id,
      "known": True,
      "history": [_movie(loaded.catalog, int(candidate)) for candidate in rated],
    }

  def example_users(self, limit: int) -> list[str]:
    """The most active known users (the user vocabulary is sorted by rating count)."""
    loaded = self._version(self.model_name, None, for_predict=False)
    return list(itertools.islice(loaded.user_rows, limit))


def _movie(catalog: dict, row: int) -> dict:
  return {
    "movie_id": catalog["movie_ids"][row],
    "title": catalog["titles"][row],
    "year": catalog["years"][row],
    "training_ratings": catalog["training_ratings"][row],
  }


def _code_name(code: int) -> str:
  return error_codes_pb2.Code.Name(code)


# ---------------------------------------------------------------------------
# HTTP (Starlette).


def _error(error: ServingError) -> Response:
  return Response(error.body(), status_code=error.http_status, media_type="application/json")


def _json(document) -> Response:
  return JSONResponse(document)


async def _body(request: Request, limit: int) -> bytes:
  """The request body, refused beyond `limit` bytes without reading the rest."""
  declared = request.headers.get("content-length")
  if declared is not None and declared.isdigit() and int(declared) > limit:
    raise _too_large(int(declared), limit)
  chunks, size = [], 0
  async for chunk in request.stream():
    size += len(chunk)
    if size > limit:
      raise _too_large(size, limit)
    chunks.append(chunk)
  return b"".join(chunks)


def _too_large(size: int, limit: int) -> ServingError:
  return ServingError(
    "RESOURCE_EXHAUSTED",
    f"Request body of {size} bytes is larger than this server's limit of {limit} bytes "
    "(nfrec serve --max-request-mb)",
    http_status=413,  # Payload Too Large: the body was not read
  )


def create_app(server: ModelServer, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES):
  """The ASGI app: TF Serving's REST paths, the page and its two lookups."""
  from starlette.concurrency import run_in_threadpool

  async def v1(request: Request) -> Response:
    path, method = request.url.path, request.method
    try:
      match = PREDICT_PATH.fullmatch(path)
      if method == "POST" and match:
        body = await _body(request, max_request_bytes)
        name, version, verb = match.groups()
        answer = await run_in_threadpool(server.predict, name, version, verb, body)
        return Response(answer, media_type="application/json")
      match = STATUS_PATH.fullmatch(path)
      if method == "GET" and match:
        name, version, metadata = match.groups()
        handler = server.metadata if metadata else server.status
        return _json(handler(name, version))
      raise invalid(f"Malformed request: {method} {path}")
    except ServingError as error:
      return _error(error)
    except Exception as error:  # never a traceback to the client; the log has it
      log.exception("%s %s failed", method, path)
      return _error(ServingError("INTERNAL", f"{type(error).__name__}: {error}"))

  page_html = importlib.resources.files("nfrec.serving").joinpath("page/index.html").read_text()
  page_html = page_html.replace("{{MODEL_NAME}}", server.model_name)

  def page(request: Request) -> Response:
    return HTMLResponse(page_html)

  def lookup(handler):
    def endpoint(request: Request) -> Response:
      try:
        return _json(handler(request))
      except ServingError as error:
        return _error(error)

    return endpoint

  def movies(request: Request):
    limit = request.query_params.get("limit") or "20"
    if not limit.isdigit():
      raise invalid(f"limit must be a whole number, got {limit!r}")
    limit = min(int(limit), 100)
    return {"movies": server.search_movies(request.query_params.get("q", ""), limit)}

  def user(request: Request):
    return server.user_history(request.path_params["user_id"])

  def users(request: Request):
    return {"users": server.example_users(limit=5)}

  routes = [
    Route("/", page),
    Route("/api/movies", lookup(movies)),
    Route("/api/users", lookup(users)),
    Route("/api/users/{user_id}", lookup(user)),
    Route("/v1/{rest:path}", v1, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
  ]
  return Starlette(routes=routes)


def serve(
  model_base_path: str,
  model_name: str = contracts.MODEL_NAME,
  host: str = "127.0.0.1",
  port: int = contracts.REST_PORT,
  poll_seconds: float = DEFAULT_POLL_SECONDS,
  max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> None:
  """Serves until interrupted."""
  import uvicorn

  if not os.path.isdir(model_base_path):
    raise FileNotFoundError(
      f"{model_base_path}: no such model directory (run `nfrec run` first, or give --model)"
    )
  watcher = ModelWatcher(model_base_path, poll_seconds)
  watcher.start()
  if watcher.current is None:
    log.warning("%s holds no model version yet: waiting for one", model_base_path)
  else:
    print(
      f"Serving {model_name} version {watcher.current.version} from {model_base_path}\n"
      f"  REST: http://{host}:{port}/v1/models/{model_name}\n"
      f"  page: http://{host}:{port}/",
      flush=True,
    )
  app = create_app(ModelServer(model_name, watcher), max_request_bytes)
  try:
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
  finally:
    watcher.stop()
