"""The pipeline: its definition, configuration, runners and curated schema."""

import modules  # noqa: F401  (Keras 2 for TFRS, chosen before TensorFlow loads)
