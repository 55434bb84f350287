"""LazyAdam (modules/trainer/optimizers.py): sparse updates touch only the batch's rows."""

import numpy as np
import tensorflow as tf

from modules.trainer import optimizers


def _sparse_step(optimizer, table, rows, values):
  gradient = tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(rows, tf.int64))
  optimizer.apply_gradients([(gradient, table)])


def _adam_reference(gradients, learning_rate=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
  """Adam in numpy for one row that receives `gradients`, one per step it is used."""
  value, m, v = 0.0, 0.0, 0.0
  for step, gradient in enumerate(gradients, start=1):
    m = beta_1 * m + (1 - beta_1) * gradient
    v = beta_2 * v + (1 - beta_2) * gradient**2
    alpha = learning_rate * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
    value -= alpha * m / (np.sqrt(v) + epsilon)
  return value


def test_a_row_moves_only_on_the_steps_that_use_it():
  lazy = tf.Variable(tf.zeros([4, 2]))
  keras = tf.Variable(tf.zeros([4, 2]))
  lazy_adam = optimizers.LazyAdam(0.1)
  adam = tf.keras.optimizers.Adam(0.1)
  for optimizer, table in ((lazy_adam, lazy), (adam, keras)):
    _sparse_step(optimizer, table, [0], [[1.0, -2.0]])
    _sparse_step(optimizer, table, [1], [[0.5, 0.5]])
  # Keras's Adam moves row 0 again on step 2 (its decayed momentum); LazyAdam does not.
  np.testing.assert_allclose(lazy[0], [_adam_reference([1.0]), _adam_reference([-2.0])], rtol=1e-5)
  assert not np.allclose(keras[0], lazy[0])
  np.testing.assert_array_equal(lazy[2:], np.zeros([2, 2]))
  # Row 1's first use is step 2: its update is Adam's, bias-corrected for step 2.
  assert 0 < -lazy[1, 0] < 0.1 + 1e-6


def test_duplicate_rows_in_a_gradient_are_summed():
  table = tf.Variable(tf.zeros([3, 1]))
  _sparse_step(optimizers.LazyAdam(0.1), table, [2, 2], [[1.0], [3.0]])
  np.testing.assert_allclose(table[2], [_adam_reference([4.0])], rtol=1e-5)
  np.testing.assert_array_equal(table[:2], np.zeros([2, 1]))


def test_dense_gradients_get_keras_adam_unchanged():
  lazy, keras = tf.Variable([1.0, 2.0]), tf.Variable([1.0, 2.0])
  lazy_adam, adam = optimizers.LazyAdam(0.1), tf.keras.optimizers.Adam(0.1)
  for gradient in ([0.5, -1.0], [0.2, 0.3]):
    lazy_adam.apply_gradients([(tf.constant(gradient), lazy)])
    adam.apply_gradients([(tf.constant(gradient), keras)])
  np.testing.assert_allclose(lazy.numpy(), keras.numpy(), rtol=1e-6)


def test_a_learning_rate_schedule_is_followed_on_sparse_steps():
  # The decayed rate of step 2 must reach the sparse update (model.learning_rate's schedule).
  schedule = tf.keras.optimizers.schedules.ExponentialDecay(0.1, 1, 0.5, staircase=True)
  table = tf.Variable(tf.zeros([1, 1]))
  optimizer = optimizers.LazyAdam(schedule)
  _sparse_step(optimizer, table, [0], [[1.0]])
  first = float(table[0, 0])
  _sparse_step(optimizer, table, [0], [[1.0]])
  # Same gradient, so Adam's normalized step is 1 both times: the move is the rate.
  np.testing.assert_allclose(first, -0.1, rtol=1e-5)
  np.testing.assert_allclose(float(table[0, 0]) - first, -0.05, rtol=1e-5)
