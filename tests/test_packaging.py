"""What a wheel and the Kubeflow image hold: the project's packages, nothing else."""

import importlib.resources
import os
import re

import tomli

from nfrec.data import sample
from pipeline import config as config_lib
from pipeline import kubeflow_runner, schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGED_TREES = ("nfrec", "pipeline", "components", "modules")


def _pyproject():
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    return tomli.load(f)


def _packages_on_disk():
  found = set()
  for tree in PACKAGED_TREES:
    for folder, _, files in os.walk(os.path.join(ROOT, tree)):
      if "__init__.py" in files:
        found.add(os.path.relpath(folder, ROOT).replace(os.sep, "."))
  return found


def test_the_wheel_lists_every_package_of_the_project_and_nothing_else():
  setuptools = _pyproject()["tool"]["setuptools"]
  listed = set(setuptools["packages"])
  assert listed == _packages_on_disk() | {"nfrec.sample_data"}
  assert not any(name.split(".")[0] in ("benchmarks", "tests") for name in listed)
  assert setuptools["package-dir"] == {"nfrec.sample_data": "data/sample"}


def test_package_data_is_found_through_the_package():
  assert os.path.isfile(schema.DEFAULT_SCHEMA_FILE)
  sample_dir = sample.embedded_sample_dir()
  for folder, name in (("ratings", sample.RATINGS_FILE), ("movies", sample.MOVIES_FILE)):
    assert os.path.isfile(os.path.join(sample_dir, folder, name))
  page = importlib.resources.files("nfrec.serving").joinpath("page/index.html")
  assert "recommend_from_ratings" in page.read_text()  # nfrec serve's page


def test_the_image_holds_what_the_compiled_spec_names():
  with open(os.path.join(ROOT, "Dockerfile")) as f:
    dockerfile = f.read()
  assert "ENV TF_USE_LEGACY_KERAS=1" in dockerfile
  workdir = re.search(r"^WORKDIR (\S+)$", dockerfile, re.M).group(1)
  copied = dict(re.findall(r"^COPY (\S+) \./(\S+)$", dockerfile, re.M))
  for tree in PACKAGED_TREES:
    assert copied.get(tree) == tree, f"the image does not copy {tree}/"
  assert copied.get("data/sample") == "data/sample"  # nfrec.sample_data's source
  # The schema file the compiled spec points at is the copied package's.
  assert kubeflow_runner.IMAGE_SCHEMA_FILE == os.path.join(
    workdir, os.path.relpath(schema.DEFAULT_SCHEMA_FILE, ROOT)
  )
  # Both module functions are imported by the image's build check.
  check = dockerfile[dockerfile.index('python -c "') :]
  for function in (config_lib.RUN_FN, config_lib.PREPROCESSING_FN):
    assert function.rpartition(".")[0] in check
