"""A bounded local load test of `nfrec serve` (the TF Serving REST API on localhost).

  nfrec bench rest [--clients 1 4 16] [--seconds 10]
  nfrec bench rest --model outputs/serving_model/netflix_recommender   # a pushed model

Starts `nfrec serve` on a free localhost port, then for each client count runs
that many concurrent clients (threads, one keep-alive connection each) for a
fixed time; each client alternates the two requests a page or an app sends:
`recommend` for a random known user (row format) and `recommend_from_ratings`
for 10 random movies with random ratings (columnar format). Prints, per client
count, requests/s, errors, and p50/p99 latency of each request kind, and
rewrites its section of docs/performance.md. Localhost only; it stops by itself
(the clients at the deadline, the server after the last client count).

Without --model it serves a Netflix-sized serving model (17,770 movies, 50,000
users; the one `nfrec bench serving` builds: real model code, untrained weights).
The clients run in this process and share the machine's cores with the server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time

import benchmarks
from benchmarks import markdown
from nfrec import contracts

RATINGS_PER_REQUEST = 10


def _vocabulary(version_dir: str, name: str) -> list[str]:
  with open(contracts.asset_path(version_dir, name)) as f:
    return [line.strip() for line in f if line.strip()]


def _requests(users: list[str], movies: list[str], rng: random.Random):
  """An endless alternation of (kind, body) of the two request kinds."""
  while True:
    body = {"signature_name": contracts.SIGNATURE_RECOMMEND, "instances": [rng.choice(users)]}
    yield contracts.SIGNATURE_RECOMMEND, json.dumps(body)
    given = rng.sample(movies, min(RATINGS_PER_REQUEST, len(movies)))
    body = {
      "signature_name": contracts.SIGNATURE_RECOMMEND_FROM_RATINGS,
      "inputs": {
        contracts.INPUT_MOVIE_IDS: [given],
        contracts.INPUT_RATINGS: [[float(rng.randint(1, 5)) for _ in given]],
      },
    }
    yield contracts.SIGNATURE_RECOMMEND_FROM_RATINGS, json.dumps(body)


def run_clients(port: int, clients: int, seconds: float, users, movies) -> dict:
  """`clients` threads sending requests until the deadline; latencies per kind."""
  path = f"/v1/models/{contracts.MODEL_NAME}:predict"
  latencies: dict[str, list[float]] = {}
  errors: list[str] = []
  lock = threading.Lock()
  deadline = time.perf_counter() + seconds

  def client(seed: int):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    mine: dict[str, list[float]] = {}
    failures = []
    for kind, body in _requests(users, movies, random.Random(seed)):
      if time.perf_counter() >= deadline:
        break
      start = time.perf_counter()
      try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        reply = connection.getresponse()
        answer = reply.read()
        if reply.status != 200:
          failures.append(f"{reply.status}: {answer[:200]!r}")
          continue
      except (OSError, http.client.HTTPException) as error:
        failures.append(f"{type(error).__name__}: {error}")
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        continue
      mine.setdefault(kind, []).append(time.perf_counter() - start)
    connection.close()
    with lock:
      for kind, values in mine.items():
        latencies.setdefault(kind, []).extend(values)
      errors.extend(failures)

  threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
  start = time.perf_counter()
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  elapsed = time.perf_counter() - start
  return {
    "clients": clients,
    "seconds": elapsed,
    "requests": sum(len(v) for v in latencies.values()),
    "errors": len(errors),
    "first_errors": errors[:3],
    "latency_ms": {kind: _percentiles(values) for kind, values in latencies.items()},
  }


def _percentiles(values: list[float]) -> tuple[float, float]:
  ordered = sorted(values)

  def at(q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

  return at(0.50), at(0.99)


def start_server(model_base_path: str, port: int) -> subprocess.Popen:
  server = subprocess.Popen(
    [sys.executable, "-m", "nfrec", "serve", "--model", model_base_path, "--port", str(port)],
    cwd=benchmarks.REPO_ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )
  deadline = time.time() + 300
  while True:
    if server.poll() is not None:
      raise RuntimeError(f"nfrec serve exited: {server.stdout.read()[-2000:]}")
    try:
      connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
      connection.request("GET", f"/v1/models/{contracts.MODEL_NAME}")
      if connection.getresponse().status == 200:
        return server
    except OSError:
      pass
    if time.time() > deadline:
      server.kill()
      raise RuntimeError("nfrec serve did not answer within 300 s")
    time.sleep(0.5)


def render(results: list[dict], model: str, seconds: float) -> str:
  kinds = (contracts.SIGNATURE_RECOMMEND, contracts.SIGNATURE_RECOMMEND_FROM_RATINGS)
  header = ["clients", "requests", "req/s", "errors"]
  for kind in kinds:
    header += [f"`{kind}` p50 ms", "p99 ms"]
  rows = []
  for r in results:
    row = [r["clients"], f"{r['requests']:,}", f"{r['requests'] / r['seconds']:,.0f}", r["errors"]]
    for kind in kinds:
      p50, p99 = r["latency_ms"].get(kind, (float("nan"), float("nan")))
      row += [f"{p50:.1f}", f"{p99:.1f}"]
    rows.append(row)
  return (
    f"Measured on {markdown.machine()} by `nfrec bench rest`: `nfrec serve` (uvicorn, one "
    f"process) on localhost serving {model}; N concurrent clients (threads of the benchmark "
    f"process, one keep-alive connection each, on the same 2 cores as the server) for "
    f"{seconds:.0f} s each, alternating `recommend` for a random known user (row format) and "
    f"`recommend_from_ratings` for {RATINGS_PER_REQUEST} random movies (columnar format). "
    "Latency is the client's: request sent to answer read.\n\n" + markdown.table(header, rows)
  )


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="nfrec bench rest",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument("--clients", nargs="+", type=int, default=[1, 4, 16])
  parser.add_argument("--seconds", type=float, default=10.0)
  parser.add_argument("--model", help="serve this model base path instead of a synthetic one")
  parser.add_argument("--port", type=int, default=8599)
  parser.add_argument("--work-dir", default="/tmp/nfrec-bench")
  parser.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
  args = parser.parse_args(argv)

  if args.model:
    base, described = args.model, f"the model in `{args.model}`"
  else:
    from benchmarks import serving_bench

    version_dir = serving_bench.build(args.work_dir, 17_770, 50_000, "brute_force")
    base = os.path.dirname(version_dir)
    described = "a 17,770-movie, 50,000-user serving model (brute force, default preset)"
  version = contracts.latest_version(base)
  if version is None:
    print(f"{base}: no model version here", file=sys.stderr)
    return 2
  version_dir = os.path.join(base, version)
  users = _vocabulary(version_dir, contracts.USER_VOCABULARY)
  movies = _vocabulary(version_dir, contracts.MOVIE_VOCABULARY)

  server = start_server(base, args.port)
  results = []
  try:
    for clients in args.clients:
      result = run_clients(args.port, clients, args.seconds, users, movies)
      print(json.dumps(result), flush=True)
      results.append(result)
  finally:
    server.terminate()
    server.wait(timeout=30)
  text = render(results, described, args.seconds)
  print(text)
  if not args.no_doc:
    markdown.update_section("rest", text)
  return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
  sys.exit(main())
