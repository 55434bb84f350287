"""The Trainer's epoch records: readable lines with their fields attached."""

import logging

import numpy as np
import tensorflow as tf

from modules.trainer import progress
from nfrec import contracts


def test_each_epoch_is_one_record_with_time_rate_metrics_and_what_is_left(caplog):
  model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
  model.compile(optimizer="sgd", loss="mse")
  x, y = np.ones((64, 3), np.float32), np.ones((64, 1), np.float32)
  callback = progress.TrainingProgress(
    progress.SELECTION, epochs=3, steps_per_epoch=4, batch_size=16
  )
  with caplog.at_level(logging.INFO, logger=contracts.PROGRESS_LOGGER):
    model.fit(x, y, batch_size=16, epochs=3, callbacks=[callback], verbose=0)
  epochs = [r for r in caplog.records if r.levelno == logging.INFO]
  assert [r.progress["epoch"] for r in epochs] == [1, 2, 3]
  first, last = epochs[0].progress, epochs[-1].progress
  assert first["epochs"] == 3 and first["phase"] == progress.SELECTION
  assert first["examples_per_s"] == 4 * 16 / first["seconds"]
  assert first["left_s"] == 2 * first["seconds"]  # the mean epoch so far, twice
  assert last["left_s"] == 0
  assert set(first["metrics"]) == {"loss"}
  message = epochs[0].getMessage()
  assert message.startswith("Trainer selection fit: epoch 1/3 in ")
  assert "loss " in message and "this fit ends in at most" in message
  assert epochs[-1].getMessage().endswith("this fit is done")
  assert len(callback.epoch_seconds) == 3


def test_durations_read_as_a_person_would_say_them():
  assert progress._duration(42.4) == "42 s"
  assert progress._duration(192) == "3 min 12 s"
  assert progress._duration(2 * 3600 + 5 * 60 + 9) == "2 h 05 min"
