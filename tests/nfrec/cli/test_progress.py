"""What `nfrec run` prints while it runs, from the pipeline's log records."""

import io
import logging

import absl.logging

from nfrec import contracts
from nfrec.cli import progress


class FakeClock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def _absl(message: str):
  logging.getLogger("absl").info(message)


def test_one_line_per_event_when_not_a_terminal():
  clock, out = FakeClock(), io.StringIO()
  printer = progress.ProgressPrinter(
    out, live=False, rows_of=lambda c: "train 9 rows" if c == "StatisticsGen" else None, clock=clock
  )
  record = lambda message: logging.LogRecord("absl", logging.INFO, "", 0, message, (), None)  # noqa: E731
  printer.emit(record("Component StatisticsGen is running."))
  clock.now += 75
  printer.emit(record("Component StatisticsGen is finished."))
  printer.emit(record("Component Transform is running."))
  printer.emit(record("A cached execution 12 is used."))
  printer.emit(record("Component Transform is finished."))
  printer.emit(record("Some other TFX line."))
  assert out.getvalue().splitlines() == [
    "[00:00] StatisticsGen started",
    "[01:15] StatisticsGen done in 75.0 s: train 9 rows",
    "[01:15] Transform started",
    "[01:15] Transform cached",
  ]


def test_a_live_line_on_a_terminal_with_the_trainers_step():
  clock, out = FakeClock(), io.StringIO()
  printer = progress.ProgressPrinter(out, live=True, clock=clock)
  running = logging.LogRecord(
    "absl", logging.INFO, "", 0, "Component Trainer is running.", (), None
  )
  printer.emit(running)
  clock.now += 61
  step = logging.LogRecord(contracts.PROGRESS_LOGGER, logging.DEBUG, "", 0, "step", (), None)
  step.progress = {"phase": "selection fit", "epoch": 2, "epochs": 20, "step": 30, "steps": 400}
  printer.emit(step)
  frames = out.getvalue().split("\r")
  assert frames[-1] == "[01:01] Trainer running 01:01 | selection fit: epoch 2/20, step 30/400"
  assert "\n" not in out.getvalue()  # nothing permanent yet: the line is redrawn in place
  epoch = logging.LogRecord(
    contracts.PROGRESS_LOGGER, logging.INFO, "", 0, "epoch 2 line", (), None
  )
  epoch.progress = {"phase": "selection fit", "epoch": 2, "epochs": 20}
  printer.emit(epoch)
  assert "[01:01] epoch 2 line\n" in out.getvalue()  # an epoch is a line of its own
  printer.close()
  assert out.getvalue().endswith("\r")  # the live line is cleared at the end


def test_printing_reads_tfx_info_records_without_showing_them_on_the_console(capsys):
  console = logging.StreamHandler(io.StringIO())
  root = logging.getLogger()
  saved_level = root.level
  root.addHandler(console)
  root.setLevel(logging.WARNING)
  absl.logging.set_verbosity(absl.logging.WARNING)
  out = io.StringIO()
  try:
    with progress.printing(stream=out, live=False):
      _absl("Component Pusher is running.")
      _absl("Component Pusher is finished.")
      fields = {"phase": "refit", "epoch": 1, "epochs": 1}
      logging.getLogger(contracts.PROGRESS_LOGGER).info("an epoch", extra={"progress": fields})
    assert "Pusher started" in out.getvalue() and "Pusher done in" in out.getvalue()
    assert "an epoch" in out.getvalue()
    assert console.stream.getvalue() == ""  # the INFO records did not reach the console
    assert absl.logging.get_verbosity() == absl.logging.WARNING  # restored
  finally:
    root.removeHandler(console)
    root.setLevel(saved_level)
