"""Code fingerprints follow the real import closure of each step."""

import importlib.util
import os
import shutil
import sys

import pytest

from pipeline import fingerprint


def test_a_step_covers_what_it_imports_and_nothing_else():
  trainer = fingerprint.source_files("modules.trainer.run.run_fn")
  # The Trainer runs its own module, the model, the core model it exports, the shared
  # readers, the contracts, and their packages' __init__ files...
  for module in (
    "modules.trainer.run",
    "modules.trainer.model",
    "modules.serving.core_model",
    "modules.transform.examples",
    "nfrec.contracts",
    "modules",
  ):
    assert module in trainer
  # ...but not the Transform callback, the serving model, a component or the CLI.
  for module in ("modules.transform.preprocessing", "modules.serving.serving_model"):
    assert module not in trainer
  assert not any(name.split(".")[0] in ("components", "pipeline") for name in trainer)
  assert not any(name.startswith("nfrec.cli") for name in trainer)


@pytest.fixture
def copied_tree(tmp_path, monkeypatch):
  """A copy of the project's packages, imported from the copy (so it can be edited)."""
  root = os.path.dirname(os.path.dirname(importlib.util.find_spec("modules").origin))
  for package in fingerprint.PROJECT_PACKAGES:
    shutil.copytree(
      os.path.join(root, package),
      tmp_path / package,
      ignore=shutil.ignore_patterns("__pycache__"),
    )
  monkeypatch.setattr(
    importlib.util,
    "find_spec",
    lambda name: type("Spec", (), {"origin": str(tmp_path / name / "__init__.py")})(),
  )
  return tmp_path


def test_editing_a_module_changes_exactly_the_steps_that_import_it(copied_tree):
  transform = "modules.transform.preprocessing.preprocessing_fn"
  trainer = "modules.trainer.run.run_fn"
  before = {step: fingerprint.code_fingerprint(step) for step in (transform, trainer)}
  with open(copied_tree / "modules" / "trainer" / "model.py", "a") as f:
    f.write("\n# an edit\n")
  assert fingerprint.code_fingerprint(transform) == before[transform]
  assert fingerprint.code_fingerprint(trainer) != before[trainer]
  with open(copied_tree / "nfrec" / "contracts.py", "a") as f:
    f.write("\n# an edit of a contract both depend on\n")
  assert fingerprint.code_fingerprint(transform) != before[transform]


def test_fingerprints_are_stable_within_and_across_processes():
  import subprocess

  step = "components.retrieval_evaluator.component"
  here = fingerprint.code_fingerprint(step)
  assert fingerprint.code_fingerprint(step) == here
  there = subprocess.run(
    [
      sys.executable,
      "-c",
      f"from pipeline import fingerprint; print(fingerprint.code_fingerprint({step!r}))",
    ],
    capture_output=True,
    text=True,
    check=True,
  ).stdout.split()[-1]
  assert there == here
