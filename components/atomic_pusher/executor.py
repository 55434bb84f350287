"""A Pusher executor that never shows a server a half-written or duplicate version.

TF Serving loads the highest integer version folder it finds. The stock Pusher
copies straight into `<base>/<version>/` (saved_model.pb last), so a crash
mid-copy leaves a partial version folder behind. This executor copies into a
hidden staging folder beside it and renames it into place: on a local or
POSIX filesystem (a PVC included) the version appears whole or not at all.
(Object stores such as GCS have no atomic rename; there the stock Pusher's
"saved_model.pb last" order is what protects the server.)

It also does not push a model whose content is already the newest version: a
re-evaluation of the same model (for instance against itself as the baseline,
on the run after its first push) must not create a new version.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from nfrec import contracts

STAGING_PREFIX = ".incoming-"


def model_fingerprint(saved_model_dir: str) -> bytes | None:
  """The SavedModel fingerprint TF writes beside saved_model.pb (None if absent)."""
  path = os.path.join(saved_model_dir, "fingerprint.pb")
  if not os.path.exists(path):
    return None
  with open(path, "rb") as f:
    return f.read()


def push_atomically(model_path: str, base_directory: str) -> tuple[str, bool]:
  """Copies `model_path` to a new version folder; returns (version folder, copied).

  If the newest version already holds this exact model, returns it unchanged.
  """
  newest = contracts.latest_version(base_directory)
  fingerprint = model_fingerprint(model_path)
  if (
    newest
    and fingerprint
    and fingerprint == model_fingerprint(os.path.join(base_directory, newest))
  ):
    return os.path.join(base_directory, newest), False
  version = str(max(int(time.time()), int(newest or 0) + 1))
  os.makedirs(base_directory, exist_ok=True)
  # Leftovers of a push that was killed mid-copy are never visible to a server.
  for name in os.listdir(base_directory):
    if name.startswith(STAGING_PREFIX):
      shutil.rmtree(os.path.join(base_directory, name), ignore_errors=True)
  staging = os.path.join(base_directory, STAGING_PREFIX + version)
  shutil.copytree(model_path, staging)
  destination = os.path.join(base_directory, version)
  os.rename(staging, destination)
  return destination, True


class Executor(pusher_executor.Executor):
  """Stock Pusher semantics (blessing check, archive copy), atomic local push."""

  def Do(
    self,
    input_dict: dict[str, list[types.Artifact]],
    output_dict: dict[str, list[types.Artifact]],
    exec_properties: dict[str, Any],
  ) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(
      output_dict[standard_component_specs.PUSHED_MODEL_KEY]
    )
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    push_destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
      exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], push_destination
    )
    base_directory = push_destination.filesystem.base_directory
    if "://" in base_directory:  # An object store: no atomic rename there.
      super().Do(input_dict, output_dict, exec_properties)
      return
    destination, copied = push_atomically(self.GetModelPath(input_dict), base_directory)
    logging.info("Model %s %s.", "pushed to" if copied else "already served as", destination)
    self._MarkPushed(
      model_push, pushed_destination=destination, pushed_version=os.path.basename(destination)
    )
