"""`nfrec serve`'s app on a real localhost port, in a thread of the test process."""

import contextlib
import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import uvicorn

from nfrec import contracts
from nfrec.serving import model_server


def free_port() -> int:
  with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(model_base_path: str, port: int | None = None, **options):
  """Serves the model base path on localhost; yields (base URL, watcher)."""
  watcher = model_server.ModelWatcher(model_base_path, options.pop("poll_seconds", 0.2))
  watcher.start()
  app = model_server.create_app(model_server.ModelServer(contracts.MODEL_NAME, watcher), **options)
  port = port or free_port()
  server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
  thread = threading.Thread(target=server.run, daemon=True)
  thread.start()
  deadline = time.time() + 30
  while not server.started:
    assert thread.is_alive() and time.time() < deadline, "the server did not start"
    time.sleep(0.05)
  try:
    yield f"http://127.0.0.1:{port}", watcher
  finally:
    server.should_exit = True
    thread.join(timeout=30)
    watcher.stop()


def http_call(url: str, body: bytes | dict | None = None, method: str | None = None):
  """(status, parsed JSON or text) of one real HTTP request."""
  data = json.dumps(body).encode() if isinstance(body, dict) else body
  request = urllib.request.Request(url, data=data, method=method)
  try:
    with urllib.request.urlopen(request, timeout=60) as reply:
      status, text = reply.status, reply.read().decode()
  except urllib.error.HTTPError as error:
    status, text = error.code, error.read().decode()
  try:
    return status, json.loads(text)
  except json.JSONDecodeError:
    return status, text


@pytest.fixture(scope="session")
def served_base_path(saved_model_dir, tmp_path_factory):
  """A model base path holding the tiny serving model as version 1."""
  base = tmp_path_factory.mktemp("served")
  shutil.copytree(saved_model_dir, base / "1")
  return str(base)


def assert_same_answer(answer: dict, outputs: dict, rows: bool) -> None:
  """A predict answer (row or columnar format) holds exactly the signature's outputs,
  strings decoded."""
  if rows:
    columns = {name: [row[name] for row in answer["predictions"]] for name in outputs}
  else:
    columns = answer["outputs"]
  assert set(columns) == set(outputs), answer
  for name, tensor in outputs.items():
    expected = tensor.numpy()
    if expected.dtype == object:
      expected = np.vectorize(bytes.decode, otypes=[object])(expected)
    np.testing.assert_array_equal(np.array(columns[name], dtype=expected.dtype), expected, name)
