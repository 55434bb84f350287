"""`nfrec bench`: benchmarks, run from a checkout of the repository (not installed)."""

import os

import modules  # noqa: F401  (Keras 2 for TFRS, chosen before TensorFlow loads)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS_DIR = os.path.join(REPO_ROOT, "docs")
# Real public rating data beside the repository (read only, never copied into it).
SHARED_DATA = os.path.join(REPO_ROOT, "..", "shared", "data")
