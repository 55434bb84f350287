"""The names every layer shares, each defined once.

Column names of the data folder, the features Transform writes, the vocabulary
(and asset) names, the serving signatures and their inputs and outputs, the
metric names and K's, the files one step writes for another, and the rule by
which a server picks the model version. Pure Python with no project or
TensorFlow import, so a process that stands in for TF Serving can use it too.
"""

from __future__ import annotations

import os

# TFRS needs Keras 2 (tf-keras); TensorFlow reads this variable when it is first
# imported (modules/__init__.py sets it).
LEGACY_KERAS_ENV = "TF_USE_LEGACY_KERAS"


def tf_only_environment(environ=None) -> dict:
  """The environment for a process that stands in for TF Serving: the Keras 2 switch
  explicitly off (so project imports there cannot turn it on), so a model that needed
  Keras or project code would fail there as it would in the server."""
  return {**(os.environ if environ is None else environ), LEGACY_KERAS_ENV: "0"}


# ---------------------------------------------------------------------------
# The data folder: `nfrec prepare` and the sample generator write it, the
# pipeline reads it (one CSV folder each, since CsvExampleGen reads a whole folder).

RATINGS_FOLDER = "ratings"
MOVIES_FOLDER = "movies"
DATASET_FILE = "dataset.json"  # the rating scale and the counts of `nfrec prepare`
DATA_SCHEMA_FILE = "schema.pbtxt"  # the curated schema of a prepared data folder
REJECTS_FILE = "rejects.csv"

# Columns of the Kaggle Netflix layout (Netflix_Dataset_Rating.csv / _Movie.csv).
USER_ID = "User_ID"
RATING = "Rating"
MOVIE_ID = "Movie_ID"
YEAR = "Year"
TITLE = "Name"
RATINGS_COLUMNS = (USER_ID, RATING, MOVIE_ID)
MOVIES_COLUMNS = (MOVIE_ID, YEAR, TITLE)
# When the source has it (MovieLens, Netflix Prize), the rating time: a fourth ratings
# column, seconds since 1970-01-01 UTC.
TIMESTAMP = "Timestamp"

# The pipeline's splits of the ratings (docs/metrics.md): the model is fitted on train,
# selected on validation; eval (the future) and new_users (users held out of training
# entirely) are read only by the evaluators and the push gate.
TRAIN = "train"
VALIDATION = "validation"
EVAL = "eval"
NEW_USERS = "new_users"
SPLITS = (TRAIN, VALIDATION, EVAL, NEW_USERS)
# With spans, RatingsExampleGen also writes the newest span alone (all its ratings,
# whatever their split): what the drift check compares with the last approved span.
NEWEST_SPAN = "newest_span"
# On RatingsExampleGen's output: the protocol applied (user_time, global_time, random).
SPLIT_PROTOCOL_PROPERTY = "split_protocol"

# ---------------------------------------------------------------------------
# Transform's output, the Trainer's input.

USER_INDEX = "user_index"
MOVIE_INDEX = "movie_index"
RATING_LABEL = "rating"
RATING_TIME = "rating_time"  # the Timestamp column, 0 when the data has no time

# The catalog Transform's output (the movie tower's content features).
CATALOG_MOVIE_ID = "movie_id"  # the catalog's Movie_ID as a string
TITLE_TOKENS = "title_tokens"  # vocabulary indices of the title's words
YEAR_BUCKET = "year_bucket"  # 0: unknown year, else 1 + a quantile bucket of the year
YEAR_BUCKETS = 12  # quantile buckets of the catalog's known years

# Vocabulary names (tft.TFTransformOutput.vocabulary_file_by_name); the same
# names are the asset files of the exported models.
USER_VOCABULARY = "user_id"
MOVIE_VOCABULARY = "movie_id"
TITLE_TOKEN_VOCABULARY = "title_token"

# ---------------------------------------------------------------------------
# The serving contract (docs/design.md): signature, input and output names.

SIGNATURE_DEFAULT = "serving_default"
SIGNATURE_RECOMMEND = "recommend"
SIGNATURE_PREDICT_RATING = "predict_rating"
SIGNATURE_RECOMMEND_FROM_RATINGS = "recommend_from_ratings"
SIGNATURE_PREDICT_RATING_FROM_RATINGS = "predict_rating_from_ratings"
SIGNATURE_EXAMPLES = "serving_examples"

INPUT_USER_ID = "user_id"
INPUT_MOVIE_ID = "movie_id"
INPUT_EXAMPLES = "examples"
# A person the model does not know, described at request time: [batch, n] movie ids
# and their ratings, oldest first, "" padding a row.
INPUT_MOVIE_IDS = "movie_ids"
INPUT_RATINGS = "ratings"

OUTPUT_MOVIE_IDS = "movie_ids"
OUTPUT_TITLES = "titles"
OUTPUT_YEARS = "years"
OUTPUT_SCORES = "scores"
OUTPUT_POPULAR_FALLBACK = "popular_fallback"
OUTPUT_RATING = "rating"
OUTPUT_FALLBACK = "fallback"

# The retrieval index inside the serving model: "brute_force" is exact and uses stock
# TF ops; "scann" is approximate and needs the ScaNN ops wherever it is loaded.
INDEX_TYPES = ("brute_force", "scann")

# The Trainer's tf.distribute strategies: one device, all local devices, or the
# workers named in TF_CONFIG.
DISTRIBUTION_STRATEGIES = ("default", "mirrored", "multi_worker_mirrored")

# ---------------------------------------------------------------------------
# Metrics (docs/metrics.md): the K's evaluated everywhere, and the names and
# labels every table and report uses, in the order they are shown.

RETRIEVAL_KS = (10, 100)
RMSE = "rmse"
MAE = "mae"


def top_k_accuracy(k: int) -> str:
  return f"top_{k}_accuracy"


def recall_at(k: int) -> str:
  return f"recall_at_{k}"


def ndcg_at(k: int) -> str:
  return f"ndcg_at_{k}"


METRIC_LABELS = {
  RMSE: "RMSE",
  MAE: "MAE",
  **{top_k_accuracy(k): f"top-{k} acc." for k in RETRIEVAL_KS},
  **{recall_at(k): f"Recall@{k}" for k in RETRIEVAL_KS},
  **{ndcg_at(k): f"NDCG@{k}" for k in RETRIEVAL_KS},
}
RETRIEVAL_METRICS = tuple(name for name in METRIC_LABELS if name not in (RMSE, MAE))

# TFMA's names for the rating metrics of the Evaluator.
TFMA_RMSE = "root_mean_squared_error"
TFMA_MAE = "mean_absolute_error"

# ---------------------------------------------------------------------------
# Files one step writes and another reads.

TRAINER_METRICS_FILE = "metrics.json"  # in the Trainer's model_run
# The logger of the Trainer's epochs, which `nfrec run` draws as progress.
PROGRESS_LOGGER = "nfrec.progress"
# Where RecommenderTrainer's executor tells run_fn the catalog is (custom_config keys).
CATALOG_FILES = "catalog_files"
CATALOG_TRANSFORM_OUTPUT = "catalog_transform_output"
RETRIEVAL_EVALUATION_FILE = "retrieval_evaluation.json"  # RetrievalEvaluator's evaluation
GATE_FILE = "gate.json"  # RetrievalEvaluator's blessing: verdict and reasons

# ---------------------------------------------------------------------------
# Model versions on disk: TF Serving serves the highest integer-named folder.
# The model's name in TF Serving (its REST paths) and the Pusher's folder:
MODEL_NAME = "netflix_recommender"
REST_PORT = 8501  # TF Serving's REST port (and `nfrec serve`'s)


def asset_path(saved_model_dir: str, name: str) -> str:
  """A file among a SavedModel's assets (e.g. the user vocabulary, USER_VOCABULARY)."""
  return os.path.join(saved_model_dir, "assets", name)


def latest_version(model_base_path: str) -> str | None:
  """Name of the newest version folder holding a saved_model.pb, or None.

  A folder is a version only once it holds its saved_model.pb: the Pusher's
  staging folders (hidden names) and half-copied versions never count.
  """
  if not os.path.isdir(model_base_path):
    return None
  versions = [
    name
    for name in os.listdir(model_base_path)
    if name.isdigit() and os.path.exists(os.path.join(model_base_path, name, "saved_model.pb"))
  ]
  return max(versions, key=int) if versions else None
