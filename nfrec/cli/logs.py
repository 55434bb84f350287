"""What users see of the logs: warnings and errors, minus this stack's known noise.

The patterns below are harmless messages of TFX 1.16 / TF 2.16 / Beam 2.59
(docs/design.md, "Known quirks"). Only those exact messages are dropped; every
other warning and every error is shown. `--verbose` shows everything.
"""

from __future__ import annotations

import logging
import re
import warnings

KNOWN_NOISE = re.compile(
  "|".join(
    [
      r"ArtifactQuery\.property_predicate is not supported",
      r"Tables initialized inside a tf\.function",
      r"Examples artifact does not have payload_format custom property",
      r"Couldn't find python-snappy",
      r"SavedModel saved prior to TF 2\.5",
      r"is not a valid tf\.function parameter name",
      r"Found untraced functions such as",
      r"You are using a non-supported Python version",
      r"Compiled the loaded model, but the compiled metrics have yet to be built",
      r"No training configuration found in save file",
      r"Falling back to FORMAT_TF_EXAMPLE",
      r"Skipping full serialization of (TF-)?Keras layer",
      r"Function `.*` contains input name\(s\)",
      r"is deprecated and will be removed in a future version",
      r"arguments contain non-serializable objects",
      r"Please customize component directly",
      # A failed component: the CLI reports the exception itself in one line.
      r"^Execution \d+ failed\.$",
    ]
  )
)


class _DropKnownNoise(logging.Filter):
  def filter(self, record: logging.LogRecord) -> bool:
    return not KNOWN_NOISE.search(record.getMessage())


def configure(verbose: bool) -> None:
  """INFO and everything when verbose; otherwise warnings and errors without known noise."""
  import absl.logging

  # Own the root handler (a later logging.basicConfig by a library is then a no-op), so
  # the noise filter below sees every record that reaches the console.
  logging.basicConfig(format="%(levelname)s:%(name)s:%(message)s")
  absl.logging.set_verbosity(absl.logging.INFO if verbose else absl.logging.WARNING)
  logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
  if verbose:
    return
  noise_filter = _DropKnownNoise()
  for handler in logging.getLogger().handlers + [absl.logging.get_absl_handler()]:
    handler.addFilter(noise_filter)
  for name in ("absl", "tensorflow", "apache_beam"):
    logging.getLogger(name).addFilter(noise_filter)
  warnings.filterwarnings("ignore", category=DeprecationWarning)
  warnings.filterwarnings("ignore", category=FutureWarning)
