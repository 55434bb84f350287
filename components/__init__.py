"""Custom TFX components of the pipeline."""

import modules  # noqa: F401  (Keras 2 for TFRS, chosen before TensorFlow loads)
