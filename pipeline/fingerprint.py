"""Code fingerprints: part of each custom step's cache key.

Module code is referenced by import path, so TFX does not see its source: a
fingerprint of the source is passed to the step as a parameter, so that
editing the code a step runs re-runs that step (and what depends on it) and
nothing else. The fingerprint covers exactly the project files the step's
entry module imports, directly or through other project modules, found by
reading their import statements (nothing is executed), so it cannot go stale
when a module moves or gains a helper.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os

PROJECT_PACKAGES = ("nfrec", "modules", "components", "pipeline")


def source_file(module: str) -> str | None:
  """The file of a project module, or None when `module` names no file (e.g. a function).

  Found on disk from the top-level package's folder, without importing anything.
  """
  top, *rest = module.split(".")
  if top not in PROJECT_PACKAGES:
    return None
  spec = importlib.util.find_spec(top)
  folder = os.path.join(os.path.dirname(spec.origin), *rest)
  for path in (os.path.join(folder, "__init__.py"), folder + ".py"):
    if os.path.isfile(path):
      return path
  return None


def project_imports(path: str, module: str) -> set[str]:
  """Project modules named by the import statements of one source file."""
  with open(path, "rb") as f:
    tree = ast.parse(f.read(), filename=path)
  package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # relative: from . import x
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
      found.add(base)
      # `from package import module` names a module; `from module import name` does not.
      found.update(f"{base}.{alias.name}" for alias in node.names)
  return {name for name in found if name.split(".")[0] in PROJECT_PACKAGES}


def source_files(*entry_modules: str) -> dict[str, str]:
  """{module: file} of the entry modules and every project module they import."""
  files, pending = {}, list(entry_modules)
  while pending:
    module = pending.pop()
    if module in files:
      continue
    path = source_file(module)
    if path is None:  # a function or class: its module counts
      if "." in module:
        pending.append(module.rpartition(".")[0])
      continue
    files[module] = path
    # A module's parent packages run first (their __init__ counts too).
    parents = [module.rsplit(".", depth)[0] for depth in range(1, module.count(".") + 1)]
    pending += parents + sorted(project_imports(path, module))
  return files


def code_fingerprint(*entry_modules: str) -> str:
  """Hash of the source of the entry modules and of every project module they import."""
  digest = hashlib.sha256()
  for module, path in sorted(source_files(*entry_modules).items()):
    digest.update(module.encode())
    with open(path, "rb") as f:
      digest.update(f.read())
  return digest.hexdigest()[:16]
