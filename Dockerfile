# The pipeline image for Kubeflow Pipelines / Vertex AI Pipelines: every component runs in it.
# Built on the TFX 1.16 image; this project is installed with the same pins as on a laptop.
#   docker build -t REGISTRY/nfrec-pipeline:TAG . && docker push REGISTRY/nfrec-pipeline:TAG
FROM tensorflow/tfx:1.16.0

# TFRS needs Keras 2; it must be set before TensorFlow is first imported, in every container
# (the TFX executor imports TensorFlow before any project code runs).
ENV TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONDONTWRITEBYTECODE=1

# The compiled spec names files by their path here (pipeline/kubeflow_runner.py,
# IMAGE_SCHEMA_FILE): keep WORKDIR and the COPY targets as they are.
WORKDIR /pipeline
COPY requirements.lock pyproject.toml README.md ./
COPY nfrec ./nfrec
COPY pipeline ./pipeline
COPY components ./components
COPY modules ./modules
COPY data/sample ./data/sample
# The lock is the exact set the tests ran with; installing with it as constraints keeps
# the image's TFX stack and ours identical. Not editable: the code is baked into the image.
# The check imports what the compiled spec names: every component and both module functions.
RUN python -m pip install --no-cache-dir -c requirements.lock . \
 && python -c "import pipeline.pipeline, modules.trainer.run, modules.transform.preprocessing"
