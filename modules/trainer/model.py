"""The TFRS multi-task model: a user tower and a movie tower for retrieval, a rating head.

User tower: the user's id embedding plus what the user rated, pooled: the mean
of the history embeddings of the user's last `history_window` ratings, the same
weighted by the centered rating, and the mean of the last `recent_window`
(docs/design.md, "The model"; `history_pooling_power` 0.5 divides the sums by the
square root of their counts instead), through a linear projection and, optionally, an MLP
beside it (`user_hidden_units`). In training the id is dropped for a share of the
examples, so the tower also describes a user it has no trained id for (a light
user, a user first seen after training, a person at request time) by their
ratings alone.

Movie tower: the movie's id embedding plus the mean of its title tokens'
embeddings and its year bucket's embedding (Transform's catalog vocabularies).
The id is dropped for a share of the examples, so a catalog movie with no
training ratings still gets a meaningful vector from its title and year.

Rating head: an MLP on the two towers' vectors (and optionally their dot
product) plus user, movie and global biases. In the rating stage (train.py) only
the head and the biases train, on the rating loss alone: the towers stay frozen.
With `rating_towers`, the stage instead trains a copy of the selected towers (the
`rating_` twins of their layers) that the head reads from then on: the towers'
vectors carry both, [retrieval | rating], and retrieval reads only the first part.

Retrieval: a softmax with the in-batch movies as candidates (TFRS's Retrieval
task), the whole catalog, or a sample of it (logQ-corrected: a step's cost does not
grow with the catalog); the last two are the task's loss with each positive's own
score beside the negatives (_softmax_loss), not a [B, B + N] score matrix whose
in-batch block the mask reduces to its diagonal. Loss = rating_weight * rating loss
+ retrieval_weight * retrieval loss. Every knob is an `HParams` field (a preset in
pipeline/config.py); the `seed` preset (ids only, in-batch softmax) is the original
notebook's model.

Indices are Transform's vocabulary indices, with the out-of-vocabulary row at
index = vocabulary size; ids that had no training rating are mapped to that row
too (`trained_*` masks), so an untrained embedding row is never used.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
from tensorflow.python.autograph.core import config as autograph_config
from tensorflow.python.autograph.core import config_lib as autograph_config_lib

from modules.trainer.hparams import HParams
from modules.trainer.optimizers import OPTIMIZERS
from nfrec import contracts


def leave_tf_keras_unconverted() -> None:
  """Has AutoGraph call tf_keras's code as it is, as it does Keras's.

  AutoGraph never transpiles the `keras` package (its CONVERSION_RULES), but Keras 2 lives
  in `tf_keras` since TF 2.16, which the rules do not name: the first trace of a training
  step transpiled about 1,400 tf_keras functions, 24 s of its 37 s on the sample (measured;
  the traced graph is the same either way: identical losses and weights). There is no
  public API for the rules; TF reads them at each conversion, so adding one takes effect.
  """
  if not any(
    isinstance(rule, autograph_config_lib.DoNotConvert) and rule.matches("tf_keras")
    for rule in autograph_config.CONVERSION_RULES
  ):
    autograph_config.CONVERSION_RULES += (autograph_config_lib.DoNotConvert("tf_keras"),)


leave_tf_keras_unconverted()


@dataclasses.dataclass(frozen=True)
class MovieFeatures:
  """Content features per movie vocabulary index (one extra row: the OOV movie).

  title_tokens: [M + 1, T] int64, title token indices (0 = padding; tokens are
  1 + Transform's index); year_bucket: [M + 1] int64 (0 = unknown year).
  """

  title_tokens: np.ndarray
  year_bucket: np.ndarray
  num_tokens: int  # rows of the token embedding (padding + vocabulary + OOV)
  num_year_buckets: int  # rows of the year embedding (unknown + buckets)

  @classmethod
  def empty(cls, num_movies: int) -> MovieFeatures:
    return cls(np.zeros((num_movies + 1, 1), np.int64), np.zeros(num_movies + 1, np.int64), 1, 1)

  @classmethod
  def for_vocabulary(cls, catalog, movie_vocabulary) -> MovieFeatures:
    """The catalog's features (examples.Catalog) in vocabulary order; a rated movie the
    catalog lacks, and the OOV row, get no tokens and an unknown year."""
    tokens, years = catalog.features_at(np.append(catalog.rows_of(movie_vocabulary), -1))
    return cls(tokens, years, catalog.num_tokens, catalog.num_year_buckets)


class HistorySums(NamedTuple):
  """Per example: sums of history embeddings over the pooled windows, and counts.

  Computed from padded histories (serving) or from a user-ordered batch
  (training); the user tower turns them into a vector the same way for both.
  """

  window: tf.Tensor  # [B, d] sum of the last history_window items
  weighted: tf.Tensor  # [B, d] the same, each item weighted by its centered rating
  count: tf.Tensor  # [B] items in the window
  recent: tf.Tensor  # [B, d] sum of the last recent_window items
  recent_count: tf.Tensor  # [B]


def embedding_l2(hparams: HParams, steps_per_epoch: int) -> float:
  """The L2 factor of the embedding tables, applied on every step.

  A table-wide regularizer acts once per step while a row's data gradient comes
  once per use, so the same factor regularizes 10x harder on 10x the data.
  `l2_per_epoch` keeps the strength per epoch constant (measured best at about
  0.012 on both MovieLens 100K and 1M, for the ids-only model of issue #5 and again
  for today's towers); a plain `l2` is used as given.
  """
  if hparams.l2_per_epoch:
    return hparams.l2_per_epoch / max(steps_per_epoch, 1)
  return hparams.l2


def _embedding(rows: int, width: int, l2: float, initializer="uniform", name=None):
  regularizer = tf.keras.regularizers.l2(l2) if l2 else None
  return tf.keras.layers.Embedding(
    rows,
    width,
    embeddings_initializer=initializer,
    embeddings_regularizer=regularizer,
    name=name,
  )


def _twin(layer):
  """A layer of `layer`'s configuration named rating_<its name>, its weights zeros: it
  draws no random numbers, so the towers start as they would without it."""

  def zeros(config):
    if isinstance(config, dict):
      return {
        key: "zeros" if key.endswith("_initializer") else zeros(value)
        for key, value in config.items()
      }
    return [zeros(value) for value in config] if isinstance(config, list) else config

  config = zeros(layer.get_config())
  config["name"] = RATING_PREFIX + config["name"]
  return type(layer).from_config(config)


def _constant(values, dtype, name):
  # Variables, not constants: they are exported with the model and stay out of
  # the graph proto (which is limited to 2 GB).
  return tf.Variable(tf.constant(values, dtype=dtype), trainable=False, name=name)


def _squeeze(values):
  return tf.squeeze(values, axis=1)


def _window_mask(length, width, window):
  """[B, L] True for the last `window` of the first `length` positions of each row."""
  position = tf.range(width, dtype=length.dtype)[tf.newaxis, :]
  length = length[:, tf.newaxis]
  return (position < length) & (position >= length - window)


def _prefix_scan(values, combine):
  """Inclusive prefix `combine` (e.g. tf.maximum; TF has no cummax) along axis 1 of a
  [rows, width, ...] tensor of static width, by doubling: log2(width) steps."""
  width, shift = values.shape[1], 1
  while shift < width:
    shifted = tf.pad(values[:, :-shift], [[0, 0], [shift, 0]] + [[0, 0]] * (values.shape.rank - 2))
    values = combine(values, shifted)
    shift *= 2
  return values


def _columns(values, start: int, width: int):
  """values[..., start:start + width]; the values themselves when that is all of them
  (a slice's gradient copies its whole input: 7 ms of a 30 ms training step)."""
  if start == 0 and values.shape[-1] == width:
    return values
  return values[..., start : start + width]


def _sum_over(values, mask):
  return tf.reduce_sum(values * tf.cast(mask, values.dtype)[..., tf.newaxis], axis=1)


# The rating towers' layers (rating_towers) are the towers' own, under this prefix.
RATING_PREFIX = "rating_"


class RecommenderModel(tfrs.Model):
  """Retrieval (user tower . movie tower) and rating regression, trained jointly."""

  # The layers retrieval reads: the towers' vectors and the retrieval bias. Everything
  # else (the rating head, the rating biases and factors) is the rating task's alone.
  TOWER_LAYERS = (
    "user_embedding",
    "movie_embedding",
    "history_embedding",
    "history_projection",
    "history_mlp",
    "token_embedding",
    "year_embedding",
    "movie_retrieval_bias",
  )

  def __init__(
    self,
    num_users: int,
    num_movies: int,
    hparams: HParams,
    movie_counts=None,
    global_mean: float = 0.0,
    steps_per_epoch: int = 1,
    features: MovieFeatures | None = None,
    trained_users=None,
    trained_movies=None,
    user_counts=None,
  ):
    """`movie_counts` (training ratings per movie index) drive the logQ correction of
    in-batch negatives; `trained_*` (bool per index) say which ids had training
    ratings (default: all)."""
    super().__init__()
    self.hparams = hparams
    self.num_users, self.num_movies = num_users, num_movies
    self.rating_stage = False  # see start_rating_stage
    dim = hparams.embedding_dim
    l2 = embedding_l2(hparams, steps_per_epoch)
    features = features or MovieFeatures.empty(num_movies)
    self.global_mean = float(global_mean)
    self.trained_users = _constant(
      np.ones(num_users, bool) if trained_users is None else trained_users, tf.bool, "trained_users"
    )
    self.trained_movies = _constant(
      np.ones(num_movies, bool) if trained_movies is None else trained_movies,
      tf.bool,
      "trained_movies",
    )
    user_l2 = 0.0 if hparams.sparse_user_l2 else l2
    if hparams.sparse_user_l2:
      # Each training example of a user carries 1/(its ratings) of the row's L2 for an
      # epoch (user_row_l2), so an epoch regularizes a row as the table-wide L2 does.
      if user_counts is None:
        raise ValueError("sparse_user_l2 needs user_counts (data.training_statistics).")
      weights = np.append(
        1.0 / np.maximum(np.asarray(user_counts), 1), 0.0
      )  # the OOV row: no own ratings
      self.user_l2_weights = _constant(weights, tf.float32, "user_l2_weights")
      self.user_l2_per_epoch = l2 * steps_per_epoch
    # +1 row for the out-of-vocabulary id Transform puts at the end.
    self.user_embedding = _embedding(num_users + 1, dim, user_l2, name="user_embedding")
    self.movie_embedding = _embedding(num_movies + 1, dim, l2, name="movie_embedding")
    if hparams.history_window:
      self.history_embedding = _embedding(num_movies + 1, dim, l2, name="history_embedding")
      self.history_projection = tf.keras.layers.Dense(
        dim, use_bias=False, name="history_projection"
      )
      self.history_bias = tf.keras.layers.Dense(1, use_bias=False, name="history_bias")
      if hparams.user_hidden_units:
        # Beside the linear projection, so the tower starts from it and the MLP adds
        # what a linear map of the pooled means cannot (YouTube DNN, Covington et al. 2016).
        self.history_mlp = tf.keras.Sequential(
          [tf.keras.layers.Dense(units, activation="relu") for units in hparams.user_hidden_units]
          + [tf.keras.layers.Dense(dim, use_bias=False)],
          name="history_mlp",
        )
    if hparams.content_features:
      self.title_tokens = _constant(features.title_tokens, tf.int64, "title_tokens")
      self.year_bucket = _constant(features.year_bucket, tf.int64, "year_bucket")
      self.token_embedding = _embedding(features.num_tokens, dim, l2, name="token_embedding")
      self.year_embedding = _embedding(features.num_year_buckets, dim, l2, name="year_embedding")
    if hparams.rating_dot_product:
      self.dot_scale = tf.Variable(0.0, name="dot_scale")  # learned: retrieval logits' scale
    if hparams.rating_factors:
      # SVD++-like factors of the rating's own: an id part and a part from the pooled
      # history, for the user; an id part for the movie.
      self.user_rating_factors = _embedding(
        num_users + 1, hparams.rating_factors, 0.0, name="user_rating_factors"
      )
      self.movie_rating_factors = _embedding(
        num_movies + 1, hparams.rating_factors, 0.0, name="movie_rating_factors"
      )
      if hparams.history_window:
        self.history_rating_factors = tf.keras.layers.Dense(
          hparams.rating_factors, use_bias=False, name="history_rating_factors"
        )
    layers = []
    for units in hparams.rating_hidden_units:
      layers.append(tf.keras.layers.Dense(units, activation="relu"))
      if hparams.rating_dropout:
        layers.append(tf.keras.layers.Dropout(hparams.rating_dropout))
    self.rating_head = tf.keras.Sequential(layers + [tf.keras.layers.Dense(1)], name="rating_head")
    # A per-movie retrieval bias (popularity the dot product alone cannot hold),
    # folded into the vectors: query [u, 1] . candidate [v, b] = u.v + b, so the
    # index stays one matrix product.
    if hparams.retrieval_bias:
      self.movie_retrieval_bias = _embedding(
        num_movies + 1, 1, 0.0, "zeros", name="movie_retrieval_bias"
      )
    if hparams.use_bias:
      self.user_bias = _embedding(num_users + 1, 1, user_l2, "zeros", name="user_bias")
      self.movie_bias = _embedding(num_movies + 1, 1, l2, "zeros", name="movie_bias")
      self.global_bias = tf.Variable(self.global_mean, name="global_bias")
    if hparams.trains_rating_towers:
      # Unused until the rating stage copies the selected towers into them; built now,
      # since a Keras model that is never called before training has no weights to list.
      for name in self.TOWER_LAYERS:
        if hasattr(self, name) and name != "movie_retrieval_bias":
          twin = _twin(getattr(self, name))
          with tf.name_scope(twin.name):  # as a call would name its variables
            twin.build((None, 3 * dim))  # the dense layers read the pooled history [B, 3d]
          twin.trainable = False
          setattr(self, RATING_PREFIX + name, twin)

    # Per-example losses, averaged in compute_loss over the global batch
    # (tf.nn.compute_average_loss): the same mean on one device, and the right scale
    # when a distribution strategy sums the replicas' gradients.
    self.rating_task = tfrs.tasks.Ranking(
      loss=tf.keras.losses.MeanSquaredError(reduction=tf.keras.losses.Reduction.NONE),
      metrics=[
        tf.keras.metrics.RootMeanSquaredError(contracts.RMSE),
        tf.keras.metrics.MeanAbsoluteError(contracts.MAE),
      ],
    )
    # TFRS sums the retrieval loss over the batch; with "mean" it is averaged, so it
    # no longer drowns the per-example rating MSE (docs/results.md). Per example here,
    # reduced in compute_loss.
    self.retrieval_task = tfrs.tasks.Retrieval(
      loss=tf.keras.losses.CategoricalCrossentropy(
        from_logits=True, reduction=tf.keras.losses.Reduction.NONE
      ),
      temperature=hparams.retrieval_temperature,
      remove_accidental_hits=hparams.remove_accidental_hits,
    )
    # In-batch negatives are drawn in proportion to popularity; without the logQ
    # correction the towers learn to *discount* popular movies (Yi et al., 2019).
    self.sampling_probability = None
    if hparams.sampling_correction and movie_counts is not None:
      counts = tf.cast(movie_counts, tf.float32)
      self.sampling_probability = tf.Variable(
        tf.concat([counts / tf.reduce_sum(counts), [1e-9]], axis=0),
        trainable=False,
        name="movie_sampling_probability",
      )  # the OOV row last, as in the vocabulary

    if hparams.retrieval_candidates == "sampled":
      counts = np.zeros(num_movies) if movie_counts is None else np.asarray(movie_counts)
      weights = (counts.astype(np.float64) + 1.0) ** hparams.negative_sampling_power
      self.negative_probability = _constant(
        weights / weights.sum(), tf.float32, "negative_sampling_probability"
      )

  def _trackable_children(self, save_type="checkpoint", **kwargs):
    """A SavedModel leaves the optimizer out: its state (Adam's two slots per weight,
    as large as the embedding tables twice over) only serves further training, and
    nothing trains an exported model (warm start begins a new optimizer). Training
    checkpoints ("checkpoint") keep it, to resume where they stopped."""
    children = super()._trackable_children(save_type, **kwargs)
    if save_type == "savedmodel":
      children.pop("optimizer", None)
    return children

  # ---------------------------------------------------------------------------
  # Ids: an id without training ratings (or dropped in training) uses the OOV row.

  def _known_or_oov(self, index, trained, size, dropout, training):
    index = tf.cast(index, tf.int64)
    known = (index < size) & tf.gather(trained, tf.minimum(index, size - 1))
    if training and dropout:
      known &= tf.random.uniform(tf.shape(index)) >= dropout
    return tf.where(known, index, tf.cast(size, tf.int64))

  def user_row(self, user_index, training=False):
    return self._known_or_oov(
      user_index, self.trained_users, self.num_users, self.hparams.user_id_dropout, training
    )

  def user_row_l2(self, user_index):
    """[B]: the L2 penalty of each example's own user rows (sparse_user_l2), scaled so
    that averaged over the batch and summed over an epoch it is the table-wide L2's."""
    row = tf.minimum(tf.cast(user_index, tf.int64), self.num_users)
    squares = tf.reduce_sum(tf.square(self.user_embedding(row)), axis=1)
    if self.hparams.use_bias:
      squares += _squeeze(tf.square(self.user_bias(row)))
    # compute_average_loss divides by the global batch, so each example takes it back.
    global_batch = tf.cast(tf.size(row), tf.float32) * float(
      tf.distribute.get_strategy().num_replicas_in_sync
    )
    weights = tf.gather(self.user_l2_weights, row)
    return self.user_l2_per_epoch * global_batch * weights * squares

  def movie_row(self, movie_index, training=False):
    return self._known_or_oov(
      movie_index, self.trained_movies, self.num_movies, self.hparams.movie_id_dropout, training
    )

  # ---------------------------------------------------------------------------
  # History pooling: the same sums from padded histories and from training batches.

  @property
  def query_window(self) -> int:
    """How many of a user's last ratings a query pools (training pools history_window;
    an ids-only model pools none)."""
    if not self.hparams.history_window:
      return 0
    return self.hparams.query_history_window or self.hparams.history_window

  @property
  def reads_rating_towers(self) -> bool:
    """Whether the rating head reads towers of its own (rating_towers, once the rating
    stage has copied them); before that it reads the retrieval towers, as without them."""
    return self.hparams.trains_rating_towers and self.rating_stage

  def _history_items(self, movies) -> list:
    """History embeddings [..., d], and with the rating towers read, theirs (summed apart,
    side by side in the sums: [..., 2d], split by _split_sums)."""
    rows = self.movie_row(movies)
    items = [self.history_embedding(rows)]
    if self.reads_rating_towers:
      items.append(self.rating_history_embedding(rows))
    return items

  def _centered(self, ratings):
    return tf.cast(ratings, tf.float32) - self.global_mean

  def history_sums(self, movies, ratings, length) -> HistorySums:
    """From padded histories: [B, L] movies and ratings, oldest first, the first
    `length` [B] of each row valid."""
    length = tf.cast(length, tf.int64)
    vectors = tf.concat(self._history_items(movies), axis=-1)
    weighted = vectors * self._centered(ratings)[..., tf.newaxis]
    width = tf.shape(movies, out_type=tf.int64)[1]
    window = _window_mask(length, width, self.query_window)
    recent = _window_mask(length, width, self.hparams.recent_window)
    return HistorySums(
      window=_sum_over(vectors, window),
      weighted=_sum_over(weighted, window),
      count=tf.reduce_sum(tf.cast(window, tf.float32), axis=1),
      recent=_sum_over(vectors, recent),
      recent_count=tf.reduce_sum(tf.cast(recent, tf.float32), axis=1),
    )

  def sequence_history_sums(self, users, movies, ratings, first_target: int = 0) -> HistorySums:
    """From a batch of chunks ([chunks, width], each a stretch of the epoch's
    user-ordered sequence, data.sequence_batches): the sums of each position from
    `first_target` on ([chunks, width - first_target, ...]) over the user's rows before
    it in its chunk, counted back from it.

    One batched matrix product of the targets' window masks and the chunk's history
    embeddings: 10 ms a training step (forward and gradient) where prefix sums over the
    whole chunk took 40 ms (the sample, 2 CPU cores, measured; with XLA, which lowers a
    cumsum to a quadratic reduce-window, 320 ms).
    """
    width = users.shape[1]
    position = tf.range(width, dtype=tf.int64)
    # A run is one user's rows within a chunk: it starts at column 0 or where the user changes.
    run_start = tf.concat([tf.ones_like(users[:, :1], tf.bool), users[:, 1:] != users[:, :-1]], 1)
    first = _prefix_scan(tf.where(run_start, position, tf.zeros_like(position)), tf.maximum)
    target, first = position[first_target:], first[:, first_target:]

    def window_mask(window):  # [chunks, targets, width]: the target's rows to sum
      start = tf.maximum(first, target - window)[:, :, tf.newaxis]
      column = position[tf.newaxis, tf.newaxis, :]
      return tf.cast((column >= start) & (column < target[:, tf.newaxis]), tf.float32)

    window = window_mask(self.hparams.history_window)
    recent = window_mask(self.hparams.recent_window)
    weighted = window * self._centered(ratings)[:, tf.newaxis, :]
    masks = tf.concat([window, weighted, recent], axis=1)
    # A product per tower (the rating towers' part on its own): its rounding depends on
    # its width, so retrieval's sums stay the same to the bit when the rating stage adds
    # the rating part; and the frozen towers' part has no gradient to carry (one product
    # of the items side by side took 24 ms of the stage's 50 ms step on the sample).
    sums = tf.concat([tf.matmul(masks, items) for items in self._history_items(movies)], axis=-1)
    sums = tf.split(sums, 3, axis=1)
    count, recent_count = tf.reduce_sum(window, axis=2), tf.reduce_sum(recent, axis=2)
    return HistorySums(sums[0], sums[1], count, sums[2], recent_count)

  # ---------------------------------------------------------------------------
  # The towers and the rating head.

  def _split_sums(self, sums: HistorySums):
    """(the towers' history sums, the rating towers' or None): see _history_items."""
    if not self.reads_rating_towers:
      return sums, None
    dim = self.hparams.embedding_dim

    def part(columns):
      return sums._replace(
        window=sums.window[:, columns],
        weighted=sums.weighted[:, columns],
        recent=sums.recent[:, columns],
      )

    return part(slice(None, dim)), part(slice(dim, None))

  def pooled_history(self, sums: HistorySums):
    """[B, 3d]: the window, the rating-weighted window and the recent items, each summed and
    divided by its count ** history_pooling_power (1: their means)."""
    power = self.hparams.history_pooling_power

    def pool(total, count):
      return total / tf.maximum(count, 1.0)[:, tf.newaxis] ** power

    return tf.concat(
      [
        pool(sums.window, sums.count),
        pool(sums.weighted, sums.count),
        pool(sums.recent, sums.recent_count),
      ],
      axis=1,
    )

  def _user_vector(self, row, pooled, prefix=""):
    """[B, d] from the user's row and pooled history, by the layers named prefix + name."""
    vector = getattr(self, prefix + "user_embedding")(row)
    if pooled is not None:
      vector += getattr(self, prefix + "history_projection")(pooled)
      if self.hparams.user_hidden_units:
        vector += getattr(self, prefix + "history_mlp")(pooled)
    return vector

  # The towers and the rating head have no tensor-dependent Python control flow, so
  # AutoGraph has nothing to convert in them; left to it, it transpiles every Keras
  # layer function they call on the first step (seconds on 2 cores).
  @tf.autograph.experimental.do_not_convert
  def user_tower(self, user_index, sums: HistorySums | None = None, training=False):
    """(vector [B, d] ([B, 2d] once the rating towers are read), rating bias [B]) of
    users, from their id and history sums."""
    row = self.user_row(user_index, training)
    pooled = rating_pooled = None
    if self.hparams.history_window and sums is not None:
      sums, rating_sums = self._split_sums(sums)
      pooled = self.pooled_history(sums)
      if rating_sums is not None:
        rating_pooled = self.pooled_history(rating_sums)
    vector = self._user_vector(row, pooled)
    bias = _squeeze(self.user_bias(row)) if self.hparams.use_bias else tf.zeros_like(vector[:, 0])
    if pooled is not None:
      bias += _squeeze(self.history_bias(pooled))
    if self.reads_rating_towers:
      vector = tf.concat([vector, self._user_vector(row, rating_pooled, RATING_PREFIX)], axis=1)
    if self.hparams.rating_factors:
      factors = self.user_rating_factors(row)
      if pooled is not None:
        factors += self.history_rating_factors(pooled)
      vector = tf.concat([vector, factors], axis=1)
    return vector, bias

  def _movie_vector(self, row, title_tokens, year_bucket, prefix=""):
    """[B, d] from the movie's row and content, by the layers named prefix + name."""
    vector = getattr(self, prefix + "movie_embedding")(row)
    if self.hparams.content_features:
      present = tf.cast(title_tokens > 0, tf.float32)
      tokens = getattr(self, prefix + "token_embedding")(title_tokens)
      tokens = tf.reduce_sum(tokens * present[..., tf.newaxis], axis=1)
      vector += tokens / tf.maximum(tf.reduce_sum(present, axis=1), 1.0)[:, tf.newaxis]
      vector += getattr(self, prefix + "year_embedding")(year_bucket)
    return vector

  @tf.autograph.experimental.do_not_convert
  def movie_tower(self, movie_index, title_tokens=None, year_bucket=None, training=False):
    """(vector [B, d] ([B, 2d] once the rating towers are read), rating bias [B], retrieval
    bias [B]) of movies. Without content features given, those of the vocabulary movie
    `movie_index` are used."""
    row = self.movie_row(movie_index, training)
    if self.hparams.content_features and title_tokens is None:
      feature_row = tf.minimum(tf.cast(movie_index, tf.int64), self.num_movies)
      title_tokens = tf.gather(self.title_tokens, feature_row)
      year_bucket = tf.gather(self.year_bucket, feature_row)
    vector = self._movie_vector(row, title_tokens, year_bucket)
    if self.reads_rating_towers:
      rating = self._movie_vector(row, title_tokens, year_bucket, RATING_PREFIX)
      vector = tf.concat([vector, rating], axis=1)
    zeros = tf.zeros_like(vector[:, 0])
    if self.hparams.rating_factors:
      vector = tf.concat([vector, self.movie_rating_factors(row)], axis=1)
    rating_bias = _squeeze(self.movie_bias(row)) if self.hparams.use_bias else zeros
    retrieval_bias = (
      _squeeze(self.movie_retrieval_bias(row)) if self.hparams.retrieval_bias else zeros
    )
    return vector, rating_bias, retrieval_bias

  @tf.autograph.experimental.do_not_convert
  def rate(self, user_vector, user_bias, movie_vector, movie_bias, training=False):
    """Unclipped predicted ratings [B] from the towers' outputs."""
    dim, start = self.hparams.embedding_dim, self.rating_part_start
    user, movie = _columns(user_vector, start, dim), _columns(movie_vector, start, dim)
    rating = _squeeze(self.rating_head(tf.concat([user, movie], axis=1), training=training))
    if self.hparams.rating_dot_product:
      # A matrix-factorization term beside the MLP (NeuMF): an MLP alone learns the
      # user-movie interaction poorly (Rendle et al., 2020); scaled, since the towers'
      # vectors are on the retrieval logits' scale.
      rating += self.dot_scale * tf.reduce_sum(user * movie, axis=1)
    if self.hparams.rating_factors:
      factors = start + dim
      rating += tf.reduce_sum(user_vector[:, factors:] * movie_vector[:, factors:], axis=1)
    if self.hparams.use_bias:
      rating += user_bias + movie_bias + self.global_bias
    return rating

  @property
  def rating_part_start(self) -> int:
    """Where the rating head's part of a tower's vector starts: after the retrieval part
    once the rating towers are read, else it is the retrieval part (the rating factors
    follow it)."""
    return self.hparams.embedding_dim if self.reads_rating_towers else 0

  def query(self, user_vector):
    """The retrieval query: [u, 1] with the folded retrieval bias, else u (a tower's
    vector may carry the rating factors after u: they are not part of it)."""
    user = _columns(user_vector, 0, self.hparams.embedding_dim)
    if self.hparams.retrieval_bias:
      return tf.concat([user, tf.ones_like(user[:, :1])], axis=1)
    return user

  def candidate(self, movie_vector, retrieval_bias):
    movie = _columns(movie_vector, 0, self.hparams.embedding_dim)
    if self.hparams.retrieval_bias:
      return tf.concat([movie, retrieval_bias[:, tf.newaxis]], axis=1)
    return movie

  def build_variables(self) -> RecommenderModel:
    """Creates every variable (Keras layers build on their first call) without
    training: one call of each tower and of the rating head."""
    index = tf.zeros([1], tf.int64)
    sums = None
    if self.hparams.history_window:
      sums = self.history_sums(tf.zeros([1, 1], tf.int64), tf.zeros([1, 1]), tf.ones([1], tf.int64))
    user_vector, user_bias = self.user_tower(index, sums)
    movie_vector, movie_bias, _ = self.movie_tower(index)
    self.rate(user_vector, user_bias, movie_vector, movie_bias)
    return self

  def candidates(self):
    """Retrieval vectors of every vocabulary movie [M, d(+1)] (the full candidate set)."""
    vector, _, retrieval_bias = self.movie_tower(tf.range(self.num_movies, dtype=tf.int64))
    return self.candidate(vector, retrieval_bias)

  # ---------------------------------------------------------------------------
  # Training.

  def _targets(self, inputs):
    """(users, movies, ratings, history sums, chunk of each row) of a batch's targets.

    An ids-only model trains on flat batches (data.shuffled_batches); a history-
    reading one on chunks (data.sequence_batches), whose last columns are targets
    and whose first `history_window` columns are their history.
    """
    users, movies = inputs[contracts.USER_INDEX], inputs[contracts.MOVIE_INDEX]
    ratings = inputs[contracts.RATING_LABEL]
    if not self.hparams.history_window:
      return users, movies, ratings, None, None
    start = self.hparams.history_window
    sums = self.sequence_history_sums(users, movies, ratings, first_target=start)

    def flat(values):  # [chunks, targets, ...] -> [chunks * targets, ...]
      return tf.reshape(values, tf.concat([[-1], tf.shape(values)[2:]], 0))

    chunk = tf.repeat(tf.range(tf.shape(users)[0]), tf.shape(users)[1] - start)
    return (
      flat(users[:, start:]),
      flat(movies[:, start:]),
      flat(ratings[:, start:]),
      HistorySums(*(flat(values) for values in sums)),
      (chunk, users, movies),
    )

  def call(self, inputs, training=None):
    """(queries, candidates, ratings) of a batch's targets (see _targets)."""
    users, movies, _, sums, _ = self._targets(inputs)
    user_vector, user_bias = self.user_tower(users, sums, training)
    movie_vector, movie_bias, retrieval_bias = self.movie_tower(movies, training=training)
    ratings = self.rate(user_vector, user_bias, movie_vector, movie_bias, training)
    return self.query(user_vector), self.candidate(movie_vector, retrieval_bias), ratings

  def compute_loss(self, inputs, training=False):
    users, movies, labels, sums, chunks = self._targets(inputs)
    user_vector, user_bias = self.user_tower(users, sums, training)
    movie_vector, movie_bias, retrieval_bias = self.movie_tower(movies, training=training)
    ratings = self.rate(user_vector, user_bias, movie_vector, movie_bias, training)
    queries = self.query(user_vector)
    positives = self.candidate(movie_vector, retrieval_bias)
    # [B, 1]: Keras's MSE averages over the last axis, so each example gets its own loss.
    per_example = self.rating_task(labels=labels[:, tf.newaxis], predictions=ratings[:, tf.newaxis])
    if self.hparams.bias_l2:
      per_example += self.hparams.bias_l2 * (
        tf.reshape(tf.square(user_bias) + tf.square(movie_bias), [-1])
      )
    if self.hparams.rating_factors:
      factors = self.rating_part_start + self.hparams.embedding_dim
      per_example += self.hparams.rating_factor_l2 * (
        tf.reduce_sum(tf.square(user_vector[:, factors:]), 1)
        + tf.reduce_sum(tf.square(movie_vector[:, factors:]), 1)
      )
    if self.hparams.sparse_user_l2:
      per_example += self.user_row_l2(users)
    rating_loss = tf.nn.compute_average_loss(per_example)
    if self.rating_stage:
      return rating_loss
    if self.scores_whole_catalog:
      # Every movie is a negative, except the positive's own copy and the movies the
      # user rated in this batch's chunk: only unrated movies have to rank below.
      retrieval_per_example = self._softmax_loss(
        queries, positives, self.candidates(), self._unrated_in_chunk(users, movies, chunks)
      )
    elif self.hparams.retrieval_candidates == "sampled":
      # The catalog softmax estimated from a sample of it (Bengio & Senecal, 2008):
      # `retrieval_negatives` movies drawn for the whole batch, each negative's logit
      # lowered by log(its expected count), so a step costs the same whatever the
      # catalog's size; the positive's logit is not corrected. Movies the user rated
      # anywhere in the batch, history included, are no negatives ("all" looks only at
      # the row's chunk: a [B, M] scatter; here a search over the sample).
      sampled = self.sample_negatives()
      vector, _, retrieval_bias = self.movie_tower(sampled)
      expected_count = self.hparams.retrieval_negatives * tf.gather(
        self.negative_probability, sampled
      )
      # Folded in as one more dimension, query 1 . -log(count), since TFRS's own
      # correction clips probabilities to at most 1 (an expected count may exceed it).
      # Scaled by the temperature, which divides the whole logit.
      correction = -self.hparams.retrieval_temperature * tf.math.log(expected_count)
      retrieval_per_example = self._softmax_loss(
        tf.concat([queries, tf.ones_like(queries[:, :1])], axis=1),
        tf.concat([positives, tf.zeros_like(positives[:, :1])], axis=1),
        tf.concat([self.candidate(vector, retrieval_bias), correction[:, tf.newaxis]], axis=1),
        ~self._rated_in_batch(users, movies, chunks, sampled),
      )
    else:  # the in-batch softmax: TFRS's Retrieval task
      score_mask, sampling_probability = None, None
      if chunks is not None:  # the user's other rows in the batch are no negatives
        score_mask = tf.logical_or(users[:, tf.newaxis] != users, tf.eye(tf.size(users)) > 0)
      if self.sampling_probability is not None:
        sampling_probability = tf.gather(self.sampling_probability, movies)
      retrieval_per_example = self.retrieval_task(
        queries,
        positives,
        candidate_sampling_probability=sampling_probability,
        candidate_ids=movies if self.hparams.remove_accidental_hits else None,
        compute_metrics=False,
        score_mask=score_mask,
      )
    retrieval_loss = (
      tf.nn.compute_average_loss(retrieval_per_example)
      if self.hparams.retrieval_loss_reduction == "mean"
      else tf.reduce_sum(retrieval_per_example)
    )
    return self.hparams.rating_weight * rating_loss + self.hparams.retrieval_weight * retrieval_loss

  def start_rating_stage(self, learning_rate: float) -> None:
    """From here on only the rating head and the rating biases (and the rating towers,
    copied from the towers here) train, on the rating loss alone, with a fresh optimizer:
    the towers, and so retrieval, stay as they are."""
    for name in self.TOWER_LAYERS:
      if hasattr(self, name):
        getattr(self, name).trainable = False
    self.rating_stage = True
    if self.hparams.trains_rating_towers:
      for name in self.TOWER_LAYERS:
        twin = getattr(self, RATING_PREFIX + name, None)
        if twin is not None:
          twin.set_weights(getattr(self, name).get_weights())
          twin.trainable = True
    # Keras traces the training step on compile: the frozen layers and the flag take
    # effect from this compile on.
    compile_model(self, OPTIMIZERS[self.hparams.optimizer](learning_rate))

  @property
  def scores_whole_catalog(self) -> bool:
    """Whether training scores every catalog movie: "all", or "sampled" from a catalog no
    larger than the sample (exact, and no dearer than sampling)."""
    candidates, negatives = self.hparams.retrieval_candidates, self.hparams.retrieval_negatives
    return candidates == "all" or (candidates == "sampled" and self.num_movies <= negatives)

  def sample_negatives(self):
    """`retrieval_negatives` movie indices [S], drawn with replacement in proportion to
    (training ratings + 1) ** negative_sampling_power (0: uniform over the catalog)."""
    return tf.random.categorical(
      tf.math.log(self.negative_probability)[tf.newaxis],
      self.hparams.retrieval_negatives,
      dtype=tf.int64,
    )[0]

  def _softmax_loss(self, queries, positives, negatives, unrated):
    """Per-example softmax loss of each row's positive [B, D] against the `negatives`
    [N, D] its user has not rated (`unrated` [B, N]), logits divided by the temperature.

    TFRS's Retrieval task with the positives first among its candidates and a score mask
    (the diagonal, then `unrated`) computes the same loss, but from [B, B + N] scores of
    which the mask keeps one of each row's first B: here that block is its diagonal, the
    positives' own scores ([B, 1 + N]): on the sample's catalog, a third less to score.
    """
    positive = tf.reduce_sum(queries * positives, axis=1, keepdims=True)
    scores = tf.concat([positive, tf.matmul(queries, negatives, transpose_b=True)], axis=1)
    scores /= self.hparams.retrieval_temperature
    # Masked after the temperature, as the task does, so a mask value stays finite.
    keep = tf.concat([tf.ones_like(unrated[:, :1]), unrated], axis=1)
    scores = tf.where(keep, scores, tfrs.tasks.retrieval.MIN_FLOAT)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
      tf.zeros(tf.shape(scores)[:1], tf.int32), scores
    )

  def _unrated_in_chunk(self, users, movies, chunks):
    """[B, M]: every catalog movie but those the row's user rated in the row's chunk
    (or in the batch, without chunks)."""
    if chunks is None:
      chunk_of_row, chunk_users, chunk_movies = tf.zeros_like(users), users[None], movies[None]
    else:
      chunk_of_row, chunk_users, chunk_movies = chunks
    # The targets of one user in one chunk share what they exclude: counted once per such
    # group, by a bincount of group * (M + 1) + movie over the chunks' rows, then gathered
    # for each target (4 ms a step less on the sample than counting each target's whole
    # chunk: 139k cells, not 8.7k).
    stride = self.num_users + 1
    chunk_of_row = tf.cast(chunk_of_row, tf.int64)
    target_keys = chunk_of_row * stride + tf.cast(users, tf.int64)
    chunk_index = tf.range(tf.shape(chunk_users, out_type=tf.int64)[0])[:, tf.newaxis]
    row_keys = tf.reshape(chunk_index * stride + tf.cast(chunk_users, tf.int64), [-1])
    groups = tf.sort(tf.unique(target_keys)[0])
    group_of_row = tf.minimum(tf.searchsorted(groups, row_keys), tf.size(groups) - 1)
    in_a_group = tf.cast(tf.gather(groups, group_of_row) == row_keys, tf.int32)
    columns = self.num_movies + 1
    cells = tf.cast(group_of_row, tf.int32) * columns + tf.cast(
      tf.reshape(chunk_movies, [-1]), tf.int32
    )
    bins = tf.size(groups) * columns
    rated = tf.math.bincount(cells, weights=in_a_group, minlength=bins, maxlength=bins)
    rated = tf.gather(tf.reshape(rated, [-1, columns]), tf.searchsorted(groups, target_keys))
    return rated[:, : self.num_movies] == 0

  def _rated_in_batch(self, users, movies, chunks, sampled):
    """[B, S]: True where the row's user rated movie `sampled[s]` in the batch (its
    chunks' rows, history included). A sorted search of (user, movie) keys of the
    batch's distinct users: no [B, M] tensor."""
    all_users, all_movies = (users, movies) if chunks is None else chunks[1:]
    stride = self.num_movies + 1
    rated = tf.sort(tf.reshape(all_users * stride + all_movies, [1, -1]))
    distinct, row_user = tf.unique(users)
    wanted = tf.reshape(distinct[:, tf.newaxis] * stride + sampled[tf.newaxis, :], [1, -1])
    found = tf.minimum(tf.searchsorted(rated, wanted), tf.size(rated) - 1)
    hits = tf.reshape(tf.gather(rated[0], found[0]) == wanted[0], [-1, tf.size(sampled)])
    return tf.gather(hits, row_user)


def build_model(
  num_users: int,
  num_movies: int,
  hparams: HParams,
  movie_counts=None,
  global_mean: float = 0.0,
  steps_per_epoch: int | None = None,
  features: MovieFeatures | None = None,
  trained_users=None,
  trained_movies=None,
  user_counts=None,
) -> RecommenderModel:
  """Builds and compiles the model with the preset's optimizer. `steps_per_epoch` (the
  training data's) is needed by a per-epoch learning-rate decay."""
  tf.keras.utils.set_random_seed(hparams.seed)
  model = RecommenderModel(
    num_users,
    num_movies,
    hparams,
    movie_counts,
    global_mean,
    steps_per_epoch or 1,
    features,
    trained_users,
    trained_movies,
    user_counts,
  )
  compile_model(model, OPTIMIZERS[hparams.optimizer](learning_rate(hparams, steps_per_epoch)))
  return model


def compile_model(model: RecommenderModel, optimizer) -> None:
  """Compiles `model` with `optimizer`, its variables and the optimizer's slots created.

  XLA (jit_compile) fuses each training step into one compiled program (about 1.7x the
  examples/s of the ids-only model on 2 CPU cores); several steps per call cut Python
  overhead. Variables made before the first step: a tf.function that creates variables
  on its first call is traced twice (6 s of the sample's first epoch, measured).
  """
  model.compile(
    optimizer=optimizer,
    jit_compile=model.hparams.jit_compile,
    steps_per_execution=model.hparams.steps_per_execution,
  )
  model.build_variables()
  model.optimizer.build(model.trainable_variables)


def learning_rate(hparams: HParams, steps_per_epoch: int | None):
  """The preset's rate: constant, lowered by `learning_rate_decay` after each epoch (per
  epoch, not per step, so the refit's longer epochs see the same rates), or smoothly by
  that factor every `learning_rate_decay_examples` training examples; never below
  `learning_rate_floor`."""
  if hparams.learning_rate_decay == 1.0:
    return hparams.learning_rate
  by_examples = hparams.learning_rate_decay_examples > 0
  if not by_examples and not steps_per_epoch:
    # Without it every step would count as an epoch.
    raise ValueError("learning_rate_decay per epoch needs the model's steps_per_epoch.")
  return FlooredExponentialDecay(
    hparams.learning_rate,
    decay_steps=(
      hparams.learning_rate_decay_examples / hparams.batch_size if by_examples else steps_per_epoch
    ),
    decay_rate=hparams.learning_rate_decay,
    staircase=not by_examples,
    floor=hparams.learning_rate_floor,
  )


class FlooredExponentialDecay(tf.keras.optimizers.schedules.ExponentialDecay):
  """Keras's exponential decay, held at `floor` once it reaches it."""

  def __init__(self, *args, floor: float = 0.0, **kwargs):
    super().__init__(*args, **kwargs)
    self.floor = floor

  def __call__(self, step):
    return tf.maximum(super().__call__(step), self.floor)

  def get_config(self):
    return {**super().get_config(), "floor": self.floor}


def user_and_candidate_vectors(model: RecommenderModel, user_index, sums=None):
  """Retrieval queries of users and the full candidate matrix (for exact top-K)."""
  user_vector, _ = model.user_tower(user_index, sums)
  return model.query(user_vector), model.candidates()
