"""The local runner's own behaviour (the full runs are in tests/test_end_to_end.py)."""

import os
import tempfile

import pytest

from pipeline import local_runner


def test_a_runs_temporary_files_are_removed_at_its_end_even_when_it_fails():
  before = tempfile.gettempdir()
  with pytest.raises(RuntimeError, match="component failed"):
    with local_runner.temporary_files_removed_at_the_end() as folder:
      package_dir = tempfile.mkdtemp()  # as TFX's ephemeral package build does
      assert os.path.dirname(package_dir) == folder
      raise RuntimeError("component failed")
  assert not os.path.exists(folder)
  assert tempfile.gettempdir() == before
