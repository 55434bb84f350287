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

from components.ratings_example_gen import splits
from nfrec import contracts


def ratings_example_gen_floor(
  ratings_csv: str, output_dir: str, config: splits.SplitConfig
) -> dict:
  """RatingsExampleGen's work on one CSV file: read it, assign each rating a split by the
  pipeline's protocol (`config`; splits.split_all, numpy in one process), encode
  tf.Examples and write them as gzipped TFRecords, one file per split. Seconds per stage
  and in all."""
  import tensorflow as tf
  from tfx_bsl.coders import example_coder

  start = time.perf_counter()
  table = pacsv.read_csv(ratings_csv)
  read = time.perf_counter()
  has_time = contracts.TIMESTAMP in table.column_names
  config = splits.resolve(config, has_time)
  times = table.column(contracts.TIMESTAMP) if has_time else pa.array(np.zeros(table.num_rows))
  split = splits.split_all(
    table.column(contracts.USER_ID).to_numpy(),
    table.column(contracts.MOVIE_ID).to_numpy(),
    times.to_numpy(),
    config,
  )
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
  for name in contracts.SPLITS:
    path = os.path.join(output_dir, f"split-{name}.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
      for index in np.flatnonzero(split == name):
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
