"""Module code of the pipeline's steps: Transform, Trainer and the serving model."""

import os

from nfrec import contracts

# TFRS needs Keras 2, and TensorFlow picks its Keras when it is first imported: so it
# is chosen here, before any project code imports TensorFlow. `components` and
# `pipeline` import this package first for the same reason; the Kubeflow image sets it
# in its environment (Dockerfile), since TFX imports TensorFlow before our code there.
os.environ.setdefault(contracts.LEGACY_KERAS_ENV, "1")
