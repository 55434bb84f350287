"""Recommendations for every known user, in batch, from a serving model.

Calls the model's `recommend` signature on the user vocabulary in batches (never
one user per call) and streams the rows to Parquet and CSV
(`user_id, rank, movie_id, score, title`), so memory stays bounded by one batch
whatever the number of users. Files are written under temporary names and
renamed when complete: a reader never sees half a file. Stock TensorFlow and
pyarrow only: runs wherever the serving model loads.
"""

from __future__ import annotations

import csv
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf

from nfrec import contracts

PARQUET_FILE = "recommendations.parquet"
CSV_FILE = "recommendations.csv"
COLUMNS = ("user_id", "rank", "movie_id", "score", "title")
SCHEMA = pa.schema(
  [
    ("user_id", pa.string()),
    ("rank", pa.int32()),
    ("movie_id", pa.string()),
    ("score", pa.float32()),
    ("title", pa.string()),
  ]
)
USERS_PER_CALL = 2048


def known_users(model_dir: str) -> list[str]:
  """The model's user vocabulary (most active first)."""
  with tf.io.gfile.GFile(contracts.asset_path(model_dir, contracts.USER_VOCABULARY), "rb") as f:
    return [line.strip().decode() for line in f if line.strip()]


def _rows(users: list[str], out: dict) -> pa.Table:
  """The recommend outputs of a batch as rows, the padding ("" movie ids) left out."""
  movie_ids = out[contracts.OUTPUT_MOVIE_IDS].numpy()
  k = movie_ids.shape[1]
  keep = (movie_ids != b"").reshape(-1)

  def flat(name):
    return out[name].numpy().reshape(-1)[keep]

  return pa.table(
    {
      "user_id": np.repeat(np.array(users, dtype=object), k)[keep],
      "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(users))[keep],
      "movie_id": [m.decode() for m in movie_ids.reshape(-1)[keep]],
      "score": flat(contracts.OUTPUT_SCORES).astype(np.float32),
      "title": [t.decode() for t in flat(contracts.OUTPUT_TITLES)],
    },
    schema=SCHEMA,
  )


def write_recommendations(
  model_dir: str, output_dir: str, users: list[str] | None = None, batch: int = USERS_PER_CALL
) -> dict:
  """Writes PARQUET_FILE and CSV_FILE into `output_dir`; returns counts and timings."""
  started = time.time()
  model = tf.saved_model.load(model_dir)
  recommend = model.signatures[contracts.SIGNATURE_RECOMMEND]
  users = known_users(model_dir) if users is None else users
  tf.io.gfile.makedirs(output_dir)
  parquet_path, csv_path = (os.path.join(output_dir, name) for name in (PARQUET_FILE, CSV_FILE))
  rows = 0
  with (
    pq.ParquetWriter(parquet_path + ".partial", SCHEMA) as parquet,
    open(csv_path + ".partial", "w", newline="", encoding="utf-8") as csv_file,
  ):
    writer = csv.writer(csv_file)
    writer.writerow(COLUMNS)
    for start in range(0, len(users), batch):
      chunk = users[start : start + batch]
      table = _rows(chunk, recommend(**{contracts.INPUT_USER_ID: tf.constant(chunk)}))
      parquet.write_table(table)
      writer.writerows(zip(*(table.column(name).to_pylist() for name in COLUMNS), strict=True))
      rows += table.num_rows
  os.replace(parquet_path + ".partial", parquet_path)
  os.replace(csv_path + ".partial", csv_path)
  seconds = time.time() - started
  return {
    "users": len(users),
    "rows": rows,
    "seconds": round(seconds, 1),
    "users_per_second": round(len(users) / max(seconds, 1e-9), 1),
  }
