"""`nfrec bench trainer` runs both loops end to end (on a small MovieLens-shaped file)."""

import numpy as np

from benchmarks import trainer_bench


def test_both_training_loops_run_and_the_table_is_printed(tmp_path, capsys):
  rng = np.random.default_rng(0)
  rows = np.column_stack(
    [
      rng.integers(1, 60, 3_000),
      rng.integers(1, 80, 3_000),
      rng.integers(1, 6, 3_000),
      np.arange(3_000),
    ]
  )
  path = tmp_path / "u.data"
  np.savetxt(path, rows, fmt="%d", delimiter="\t")
  assert trainer_bench.main(["--data", str(path), "--epochs", "1", "--no-doc"]) == 0
  table = capsys.readouterr().out
  assert "original notebook loop" in table and "project Trainer" in table
