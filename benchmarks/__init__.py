"""`nfrec bench`: benchmarks run from the repository (not part of the installed package)."""

import modules  # noqa: F401  (Keras 2 for TFRS, chosen before TensorFlow loads)
