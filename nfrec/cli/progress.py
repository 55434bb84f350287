"""What `nfrec run` prints while the pipeline runs.

Each component as it starts and ends (elapsed; CACHED when TFX served it from
the cache; rows for the statistics steps), and the Trainer's epochs (time,
examples/s, metrics, what is left). On a terminal the events under way are one
live line, redrawn every second; otherwise (CI, a log file) each event is one
line. Written to stderr: stdout keeps the summary.

The events come from log records: TFX's LocalDagRunner logs "Component X is
running." / "is finished." and its launcher "A cached execution N is used." at
INFO on the absl logger; the Trainer logs its epochs on contracts.PROGRESS_LOGGER
(modules/trainer/progress.py). The console handlers stay at WARNING, so the
records are read here without being shown.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time

import absl.logging

from nfrec import contracts

COMPONENT_RUNNING = re.compile(r"^Component (\S+) is running\.$")
COMPONENT_FINISHED = re.compile(r"^Component (\S+) is finished\.$")
CACHED_EXECUTION = re.compile(r"^A cached execution \d+ is used\.$")


def _clock(seconds: float) -> str:
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


class ProgressPrinter(logging.Handler):
  """Turns the pipeline's log records into progress lines."""

  def __init__(self, stream=None, live: bool | None = None, rows_of=None, clock=time.monotonic):
    super().__init__(level=logging.DEBUG)
    self.stream = stream or sys.stderr
    self.live = self.stream.isatty() if live is None else live
    self.rows_of = rows_of  # component id -> "rows" text, or None
    self.clock = clock
    self.started = clock()
    self.component: str | None = None
    self.component_started = 0.0
    self.cached = False
    self.training = ""  # the Trainer's latest epoch or step, for the live line
    self._lock = threading.RLock()
    self._live_width = 0

  # -- Events --------------------------------------------------------------

  def emit(self, record: logging.LogRecord) -> None:
    try:
      fields = getattr(record, "progress", None)
      if fields is not None:
        self._training(record, fields)
        return
      message = record.getMessage()
      if match := COMPONENT_RUNNING.match(message):
        self._start(match.group(1))
      elif match := COMPONENT_FINISHED.match(message):
        self._finish(match.group(1))
      elif CACHED_EXECUTION.match(message):
        self.cached = True
    except Exception:  # progress must never break a run
      self.handleError(record)

  def _start(self, component: str) -> None:
    with self._lock:
      self.component, self.component_started, self.cached = component, self.clock(), False
      self.training = ""
      if not self.live:
        self._line(f"{component} started")
      self._redraw()

  def _finish(self, component: str) -> None:
    with self._lock:
      seconds = self.clock() - self.component_started
      state = "cached" if self.cached else f"done in {seconds:.1f} s"
      rows = self.rows_of(component) if self.rows_of and not self.cached else None
      self._line(f"{component} {state}" + (f": {rows}" if rows else ""))
      self.component, self.training = None, ""
      self._redraw()

  def _training(self, record: logging.LogRecord, fields: dict) -> None:
    with self._lock:
      if record.levelno >= logging.INFO:  # an epoch ended: a line of its own
        self._line(record.getMessage())
        self.training = f"{fields['phase']}: epoch {fields['epoch']}/{fields['epochs']} done"
      else:
        self.training = (
          f"{fields['phase']}: epoch {fields['epoch']}/{fields['epochs']}, "
          f"step {fields['step']}/{fields['steps']}"
        )
      self._redraw()

  # -- Output --------------------------------------------------------------

  def _line(self, text: str) -> None:
    """A permanent line (the live line, if any, is cleared first and redrawn after)."""
    self._clear()
    self.stream.write(f"[{_clock(self.clock() - self.started)}] {text}\n")
    self.stream.flush()

  def _redraw(self) -> None:
    if not self.live or self.component is None:
      return
    running = self.clock() - self.component_started
    text = f"[{_clock(self.clock() - self.started)}] {self.component} running {_clock(running)}"
    if self.training:
      text += f" | {self.training}"
    self._clear()
    self.stream.write(text)
    self.stream.flush()
    self._live_width = len(text)

  def _clear(self) -> None:
    if self.live and self._live_width:
      self.stream.write("\r" + " " * self._live_width + "\r")
      self._live_width = 0

  def clear_for_other_output(self) -> None:
    """Called before another handler writes a line: the live line makes room."""
    with self._lock:
      self._clear()
      self.stream.flush()

  def tick(self) -> None:
    with self._lock:
      self._redraw()

  def close(self) -> None:
    with self._lock:
      self._clear()
      self.stream.flush()
    super().close()


class _MakeRoom(logging.Filter):
  """On a console handler, after its other filters: clears the live line before the
  handler writes (a filter only runs for records the handler will show)."""

  def __init__(self, printer: ProgressPrinter):
    super().__init__()
    self.printer = printer

  def filter(self, record: logging.LogRecord) -> bool:
    self.printer.clear_for_other_output()
    return True


@contextlib.contextmanager
def printing(stream=None, live: bool | None = None, rows_of=None):
  """Prints the progress of what runs inside (a pipeline run in this process)."""
  printer = ProgressPrinter(stream, live, rows_of)
  absl_logger = logging.getLogger("absl")
  trainer_logger = logging.getLogger(contracts.PROGRESS_LOGGER)
  # The printer needs TFX's INFO records; unless --verbose asked for them, the console
  # handlers keep showing warnings only.
  quiet = logging.getLogger().getEffectiveLevel() >= logging.WARNING
  consoles = [(h, h.level) for h in logging.getLogger().handlers] if quiet else []
  for handler, level in consoles:
    handler.setLevel(max(level, logging.WARNING))
  make_room = _MakeRoom(printer)
  for handler in logging.getLogger().handlers:
    handler.addFilter(make_room)
  saved = (absl.logging.get_verbosity(), trainer_logger.level, trainer_logger.propagate)
  # Through absl's flag, not the logger: TensorFlow saves and restores that flag while
  # it saves a model, which would put a logger level set directly back to WARNING.
  absl.logging.set_verbosity(max(saved[0], absl.logging.INFO))
  trainer_logger.setLevel(logging.DEBUG)
  trainer_logger.propagate = False  # the printer shows the epochs; no second copy
  absl_logger.addHandler(printer)
  trainer_logger.addHandler(printer)
  stop = threading.Event()

  def redraw_every_second():  # the live line's clocks move between events
    while not stop.wait(1.0):
      printer.tick()

  ticker = threading.Thread(target=redraw_every_second, name="progress-ticker", daemon=True)
  if printer.live:
    ticker.start()
  try:
    yield printer
  finally:
    stop.set()
    if ticker.is_alive():
      ticker.join(timeout=5)
    absl_logger.removeHandler(printer)
    trainer_logger.removeHandler(printer)
    absl.logging.set_verbosity(saved[0])
    trainer_logger.setLevel(saved[1])
    trainer_logger.propagate = saved[2]
    for handler, level in consoles:
      handler.setLevel(level)
    for handler in logging.getLogger().handlers:
      handler.removeFilter(make_room)
    printer.close()
