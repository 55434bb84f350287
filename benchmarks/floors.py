"""The floor of a Beam step: the same work in one process with pyarrow, numpy and
tfx_bsl's batch encoder, no Beam. A component's time beside its floor says what the
runner and per-element Python cost (docs/performance.md).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from nfrec import contracts


def _split_by_user_time(users, times, eval_share=0.1, validation_share=0.1):
  """0 train, 1 validation, 2 eval: each user's latest ratings last (user_time)."""
  order = np.lexsort((times, users))
  sorted_users = users[order]
  starts = np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1]
  counts = np.diff(np.r_[starts, len(users)])
  rank = np.arange(len(users)) - np.repeat(starts, counts)
  share = rank / np.repeat(counts, counts)
  split = np.zeros(len(users), np.int8)
  split[order] = np.where(
    share >= 1 - eval_share, 2, np.where(share >= 1 - eval_share - validation_share, 1, 0)
  )
  return split


def ratings_example_gen_floor(ratings_csv: str, output_dir: str) -> dict:
  """RatingsExampleGen's work on one CSV file: read it, assign each rating a split (by user
  and time when there is a Timestamp column, else by row), encode tf.Examples and write
  them as gzipped TFRecords, one file per split. Seconds per stage and in all."""
  import tensorflow as tf
  from tfx_bsl.coders import example_coder

  start = time.perf_counter()
  table = pacsv.read_csv(ratings_csv)
  read = time.perf_counter()
  users = table.column(contracts.USER_ID).to_numpy()
  if contracts.TIMESTAMP in table.column_names:
    split = _split_by_user_time(users, table.column(contracts.TIMESTAMP).to_numpy())
  else:  # 80/10/10 by row number: the same work as a hash split
    decile = np.arange(len(users)) % 10
    split = (decile >= 8).astype(np.int8) + (decile >= 9)
  assigned = time.perf_counter()
  # tf.Examples hold lists: each column becomes a list array of one value per row.
  offsets = pa.array(np.arange(table.num_rows + 1, dtype=np.int32))
  batch = pa.RecordBatch.from_arrays(
    [pa.ListArray.from_arrays(offsets, column.combine_chunks()) for column in table.columns],
    table.column_names,
  )
  examples = example_coder.RecordBatchToExamplesEncoder().encode(batch)
  encoded = time.perf_counter()
  os.makedirs(output_dir, exist_ok=True)
  written = 0
  for part in range(3):
    path = os.path.join(output_dir, f"split-{part}.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
      for index in np.flatnonzero(split == part):
        writer.write(examples[index])
        written += 1
  done = time.perf_counter()
  return {
    "rows": table.num_rows,
    "written": written,
    "read_s": read - start,
    "split_s": assigned - read,
    "encode_s": encoded - assigned,
    "write_s": done - encoded,
    "total_s": done - start,
  }
