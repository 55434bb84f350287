"""The layering rule of the README, enforced on every import of the project's code.

Lower rooms never import higher ones:

  nfrec.contracts <- modules <- components <- pipeline <- nfrec.{data,reporting,serving}
  <- nfrec.cli

and a component never imports another component (shared code lives in modules/).
"""

import os

import pytest

from pipeline import fingerprint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = [
  ("nfrec", "nfrec.contracts"),
  ("modules",),
  ("components",),
  ("pipeline",),
  ("nfrec.data", "nfrec.reporting", "nfrec.serving", "nfrec.sample_data"),
  ("nfrec.cli", "nfrec.__main__"),
]


def _layer(module: str) -> int:
  """Index of the room a module belongs to (the longest matching prefix)."""
  best, length = None, -1
  for index, rooms in enumerate(LAYERS):
    for room in rooms:
      if (module == room or module.startswith(room + ".")) and len(room) > length:
        best, length = index, len(room)
  assert best is not None, f"{module} is in no room of the layering rule"
  return best


def _project_modules():
  for package in fingerprint.PROJECT_PACKAGES:
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
      for name in sorted(files):
        if name.endswith(".py"):
          path = os.path.join(folder, name)
          module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
          yield module.removesuffix(".__init__"), path


MODULES = sorted(_project_modules())


def test_every_room_is_found():
  rooms = {_layer(module) for module, _ in MODULES}
  assert rooms == set(range(len(LAYERS)))


@pytest.mark.parametrize("module, path", MODULES, ids=[module for module, _ in MODULES])
def test_no_module_imports_a_higher_room(module, path):
  imported = {
    name for name in fingerprint.project_imports(path, module) if fingerprint.source_file(name)
  }
  higher = sorted(name for name in imported if _layer(name) > _layer(module))
  assert not higher, f"{module} (room {_layer(module)}) imports higher rooms: {higher}"
  if module.startswith("components."):
    own = ".".join(module.split(".")[:2])
    others = sorted(
      name for name in imported if name.startswith("components.") and not name.startswith(own)
    )
    assert not others, f"{module} imports another component's code: {others}"


def test_the_rule_catches_a_violation(tmp_path):
  """The check above can fail: a module of modules/ importing the pipeline is caught."""
  bad = tmp_path / "bad.py"
  bad.write_text("from pipeline import config\nimport numpy\n")
  imported = fingerprint.project_imports(str(bad), "modules.bad")
  assert sorted(name for name in imported if _layer(name) > _layer("modules.bad")) == [
    "pipeline",
    "pipeline.config",
  ]
