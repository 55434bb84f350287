"""The test suite; its layout mirrors the project's (a test file per module it tests)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads: no C++ log noise

import modules  # noqa: E402, F401  (Keras 2 for TFRS, chosen before TensorFlow loads)
