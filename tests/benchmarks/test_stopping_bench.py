"""`nfrec bench stopping` replays Keras's EarlyStopping rule on recorded validation curves."""

import json
import os

import pytest
import tensorflow as tf

from benchmarks import stopping_bench

CURVES = [
  [0.14, 0.17, 0.18, 0.20, 0.21, 0.213, 0.207, 0.198, 0.191, 0.190],  # best 6
  [0.142, 0.167, 0.184, 0.191, 0.1985, 0.2018, 0.1987, 0.1969, 0.2009, 0.2047, 0.19],
  [0.4943, 0.4782, 0.4206, 0.4124, 0.4229],  # best first
  [0.30, 0.30, 0.30, 0.30],  # no improvement after the first
  [0.10, 0.11, 0.12],  # still improving when the epochs run out
]


def _keras(curve, patience, min_delta, mode):
  """What tf.keras's own EarlyStopping does with the same curve."""
  stopping = tf.keras.callbacks.EarlyStopping(
    monitor="m", mode=mode, patience=patience, min_delta=min_delta
  )
  model = tf.keras.Sequential()
  stopping.set_model(model)
  stopping.on_train_begin()
  ran = 0
  for epoch, value in enumerate(curve):
    ran = epoch + 1
    stopping.on_epoch_end(epoch, {"m": value})
    if model.stop_training:
      break
  return stopping.best_epoch + 1, ran


@pytest.mark.parametrize("patience", [1, 2, 4])
@pytest.mark.parametrize("min_delta", [0.0, 0.005])
@pytest.mark.parametrize("mode", ["max", "min"])
def test_the_replay_selects_and_stops_as_keras_does(patience, min_delta, mode):
  for curve in CURVES:
    assert stopping_bench.replay(curve, patience, min_delta, mode) == _keras(
      curve, patience, min_delta, mode
    )


def test_rules_are_compared_with_a_reference_rule():
  rows = stopping_bench.compare(dict(enumerate(CURVES[:3])), reference=(4, 0.0))
  by_rule = {(row[0], row[1]): row[2:] for row in rows}
  # Patience 4 selects epochs 6, 10 and 1 after 10, 11 and 5 epochs; patience 2 selects
  # epoch 6 on the second curve too (its later best comes after a two-epoch dip).
  assert by_rule[(4, 0.0)] == ["3 of 3", "0.3040", "26 (+0)"]
  assert by_rule[(2, 0.0)] == ["2 of 3", "0.3030", "19 (-7)"]
  assert len(rows) == len(stopping_bench.PATIENCES) * len(stopping_bench.MIN_DELTAS)


def test_the_curves_are_read_from_the_trainer_runs_of_pipeline_outputs(tmp_path, capsys):
  for number, curve in enumerate(CURVES[:3]):
    run_dir = tmp_path / "out" / "pipeline" / "Trainer" / "model_run" / str(number)
    os.makedirs(run_dir)
    (run_dir / "metrics.json").write_text(json.dumps({"history": {"val_recall_at_10": curve}}))
  curves = stopping_bench.recorded_curves([str(tmp_path / "out")], "val_recall_at_10")
  assert sorted(curves.values()) == sorted(CURVES[:3])
  assert stopping_bench.main([str(tmp_path / "out"), "--no-doc"]) == 0
  table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
  assert len(table) == 1 + len(stopping_bench.PATIENCES) * len(stopping_bench.MIN_DELTAS)


def test_no_recorded_runs_is_a_clear_error(tmp_path):
  with pytest.raises(SystemExit, match="no Trainer metrics.json with a val_recall_at_10 history"):
    stopping_bench.main([str(tmp_path), "--no-doc"])
