"""The model's hyperparameters: every knob, with no default of its own.

The presets in pipeline/config.py are the only place values come from, so a
preset states every knob and nothing is quietly filled in: an unknown or
missing knob, or a value outside its choices, fails when the preset or an
override is made, before any component runs.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

OPTIMIZERS = ("adagrad", "adam", "lazy_adam")
LOSS_REDUCTIONS = ("sum", "mean")
RETRIEVAL_CANDIDATES = ("in_batch", "all", "sampled")


@dataclasses.dataclass(frozen=True)
class HParams:
  # Shape of the model.
  embedding_dim: int
  history_window: int  # the user tower pools the user's last N ratings (0: ids only)
  recent_window: int  # ...and, apart, the last N of them (data with time)
  history_chunk: int  # training targets per stretch of one user's sequence (data.sequence_batches)
  # A query (validation, serving, a new user's given ratings) pools the user's last N
  # ratings; 0: history_window, as in training.
  query_history_window: int
  # Hidden layers (ReLU) of an MLP on the pooled history, added to its linear projection
  # in the user tower (empty: the projection alone).
  user_hidden_units: tuple[int, ...]
  # The pooled history is its sum divided by count ** this: 1.0 the mean, 0.5 the sum over
  # sqrt(count) (FISM, Mult-VAE), whose norm does not shrink as a history grows.
  history_pooling_power: float
  content_features: bool  # the movie tower reads title tokens and the year
  rating_hidden_units: tuple[int, ...]  # the rating MLP's hidden layers
  rating_dropout: float  # dropout after each hidden layer of the rating MLP
  use_bias: bool  # user, movie and global rating biases
  rating_dot_product: bool  # a learned-scale user . movie term beside the MLP
  rating_factors: int  # SVD++-like factors of the rating's own (0: none)
  rating_factor_l2: float  # on the rating factors each batch uses (per example)
  retrieval_bias: bool  # a per-movie retrieval bias folded into the movie vectors
  # Regularization: `l2_per_epoch` (divided over an epoch's steps) wins over `l2` when set.
  l2: float
  l2_per_epoch: float
  bias_l2: float  # on the rating biases each batch uses (per example, as SVD does)
  # The user tables' share of that L2 as a penalty on the rows each batch uses, with the
  # same strength per epoch: their gradient stays sparse, so LazyAdam can skip the rest.
  sparse_user_l2: bool
  # Ids dropped (to the out-of-vocabulary row) for this share of the training
  # examples, so the towers also serve users and movies from history and content alone.
  user_id_dropout: float
  movie_id_dropout: float
  # The two tasks and how their losses add up.
  rating_weight: float
  retrieval_weight: float
  retrieval_loss_reduction: str  # "sum" over the batch (TFRS) or "mean"
  retrieval_candidates: str  # "in_batch" movies, "all" the catalog, or "sampled" from it
  retrieval_negatives: int  # movies sampled per batch ("sampled"; all of a smaller catalog)
  negative_sampling_power: float  # drawn in proportion to (training ratings + 1) ** power
  retrieval_temperature: float  # the softmax's logits are divided by it
  sampling_correction: bool  # logQ correction of the in-batch negatives
  remove_accidental_hits: bool  # a batch's other rows of the same movie are no negatives
  # Optimization.
  optimizer: str
  learning_rate: float
  # Epoch k trains at learning_rate * learning_rate_decay ** k (1.0: constant); with
  # learning_rate_decay_examples, the rate falls smoothly by that factor every so many
  # training examples instead (the same schedule whatever the data's size).
  learning_rate_decay: float
  learning_rate_decay_examples: int  # 0: once per epoch
  # The decayed rate never goes below this (0: no floor); decaying by examples would
  # otherwise bring the rate to almost nothing within one epoch of a large data set.
  learning_rate_floor: float
  batch_size: int
  epochs: int
  early_stopping_patience: int  # 0: no early stopping
  early_stopping_monitor: str  # a Keras log name, e.g. "val_rmse"
  early_stopping_min_delta: float
  # After selecting the epochs on validation, train a fresh model on train and
  # validation for that many epochs (the served model knows the latest period).
  refit_on_validation: bool
  # Then a rating stage: the towers frozen (retrieval stays as selected), the rating head
  # and biases train on the rating loss alone for up to this many epochs (0: none), the
  # epochs selected on validation RMSE; the two tasks peak at different epochs.
  rating_stage_epochs: int
  rating_stage_learning_rate: float
  # The rating stage trains a copy of the selected towers on the rating loss alone, which
  # the rating head then reads, instead of freezing the rating head's input: retrieval keeps
  # the towers it was selected with, the rating gets towers of its own (twice the tables).
  # Only with a rating stage to train them (see trains_rating_towers).
  rating_towers: bool
  seed: int
  # Execution (how, not what, it learns).
  jit_compile: bool
  steps_per_execution: int

  def __post_init__(self):
    problems = [
      f"{name} must be {kind.__name__}, got {value!r}"
      for name, kind in _field_types(type(self)).items()
      if not _is_a(value := getattr(self, name), kind)
    ]
    if problems:  # the range checks below assume the types
      raise ValueError("Invalid hyperparameters: " + "; ".join(problems) + ".")
    if self.optimizer not in OPTIMIZERS:
      problems.append(f"optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
    if self.retrieval_loss_reduction not in LOSS_REDUCTIONS:
      problems.append(
        f"retrieval_loss_reduction {self.retrieval_loss_reduction!r} "
        f"is not one of {LOSS_REDUCTIONS}"
      )
    for name in (
      "embedding_dim",
      "batch_size",
      "steps_per_execution",
      "retrieval_negatives",
      "history_chunk",
    ):
      if getattr(self, name) < 1:
        problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
    for name in (
      "epochs",
      "early_stopping_patience",
      "l2",
      "l2_per_epoch",
      "bias_l2",
      "rating_factors",
      "rating_factor_l2",
      "learning_rate_decay_examples",
      "learning_rate_floor",
      "rating_stage_epochs",
    ):
      if getattr(self, name) < 0:
        problems.append(f"{name} must not be negative, got {getattr(self, name)}")
    for name in _TUPLES:
      if any(units < 1 for units in getattr(self, name)):
        problems.append(f"{name} must be at least 1 each, got {getattr(self, name)}")
    if self.retrieval_candidates not in RETRIEVAL_CANDIDATES:
      problems.append(
        f"retrieval_candidates {self.retrieval_candidates!r} is not one of {RETRIEVAL_CANDIDATES}"
      )
    for name in ("user_id_dropout", "movie_id_dropout", "rating_dropout"):
      if not 0 <= getattr(self, name) < 1:
        problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
    for name in ("history_window", "recent_window", "query_history_window"):
      if getattr(self, name) < 0:
        problems.append(f"{name} must not be negative, got {getattr(self, name)}")
    if not 0 < self.learning_rate_decay <= 1:
      problems.append(f"learning_rate_decay must be in (0, 1], got {self.learning_rate_decay}")
    if self.learning_rate_floor > self.learning_rate:
      # A floor above the start would hold the rate at the floor from the first step.
      problems.append(
        f"learning_rate_floor ({self.learning_rate_floor}) must not exceed learning_rate"
        f" ({self.learning_rate}); lower both together"
      )
    if self.rating_stage_learning_rate <= 0:
      problems.append(
        f"rating_stage_learning_rate must be positive, got {self.rating_stage_learning_rate}"
      )
    if not 0 <= self.history_pooling_power <= 1:
      problems.append(f"history_pooling_power must be in [0, 1], got {self.history_pooling_power}")
    if self.retrieval_temperature <= 0:
      problems.append(f"retrieval_temperature must be positive, got {self.retrieval_temperature}")
    if problems:
      raise ValueError("Invalid hyperparameters: " + "; ".join(problems) + ".")

  @classmethod
  def from_dict(cls, values: dict[str, Any]) -> HParams:
    """From a JSON-like dict (the Trainer's custom_config): every knob, nothing else."""
    names = {field.name for field in dataclasses.fields(cls)}
    unknown, missing = sorted(set(values) - names), sorted(names - set(values))
    parts = ([f"unknown {unknown}"] if unknown else []) + (
      [f"missing {missing}"] if missing else []
    )
    if parts:
      raise ValueError("Hyperparameters do not match the model's: " + "; ".join(parts) + ".")
    return cls(**{**values, **{name: tuple(values[name]) for name in _TUPLES}})

  def to_dict(self) -> dict[str, Any]:
    return {**dataclasses.asdict(self), **{name: list(getattr(self, name)) for name in _TUPLES}}

  def tuned(self, values: dict[str, Any]) -> HParams:
    """A copy with the values the Tuner chose (its best_hyperparameters' "values"); a tuple
    knob arrives as JSON text, as `tuning_choices` gave it to KerasTuner."""
    return self.replace(
      **{
        name: json.loads(value) if name in _TUPLES and isinstance(value, str) else value
        for name, value in values.items()
      }
    )

  @property
  def trains_rating_towers(self) -> bool:
    """Whether the model has rating towers: rating_towers with a rating stage to train
    them. Without one (the seed preset, the Tuner's trials, `rating_stage_epochs=0`)
    there is nothing to copy them into, and the model is the one without them."""
    return self.rating_towers and self.rating_stage_epochs > 0

  def replace(self, **overrides) -> HParams:
    """A copy with some knobs changed; an unknown knob is an error that lists the known ones."""
    names = sorted(field.name for field in dataclasses.fields(self))
    for name in overrides:
      if name not in names:
        raise ValueError(f"Unknown hyperparameter {name!r}; known: {names}.")
    for name in _TUPLES:
      if name in overrides:
        overrides[name] = tuple(overrides[name])
    return dataclasses.replace(self, **overrides)


def tuning_choices(name: str, values) -> list:
  """A knob's values as KerasTuner's Choice holds them: scalars, so a tuple knob's values
  (hidden units) as JSON text, "[256]"; `HParams.tuned` reads them back."""
  return [json.dumps(list(value)) if name in _TUPLES else value for value in values]


def _field_types(cls) -> dict[str, type]:
  hints = typing.get_type_hints(cls)
  return {
    field.name: tuple if typing.get_origin(hints[field.name]) is tuple else hints[field.name]
    for field in dataclasses.fields(cls)
  }


def _is_a(value, kind: type) -> bool:
  if kind is float:  # an integer is a fine float (--set l2=0)
    return isinstance(value, (int, float)) and not isinstance(value, bool)
  if kind is int:
    return isinstance(value, int) and not isinstance(value, bool)
  if kind is tuple:
    return isinstance(value, tuple) and all(_is_a(item, int) for item in value)
  return isinstance(value, kind)


# The tuple knobs (hidden units), lists in JSON; derived so a new one needs no entry here.
_TUPLES = tuple(name for name, kind in _field_types(HParams).items() if kind is tuple)
