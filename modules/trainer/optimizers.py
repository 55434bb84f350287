"""The optimizers a preset may name, and LazyAdam.

Keras's Adam, given a sparse gradient (an embedding lookup's), still decays the
moments of every row and moves every row of the table on every step: its cost
per step grows with the table, not the batch. At Netflix's size (hundreds of
thousands of users, 128 dimensions) that is most of a training step.
LazyAdam (as TensorFlow Addons' LazyAdam and PyTorch's SparseAdam) updates only
the rows a batch touched: a row's moments advance when it is used. Dense
gradients get Keras's Adam unchanged.
"""

from __future__ import annotations

import tensorflow as tf


class LazyAdam(tf.keras.optimizers.Adam):
  """Adam whose sparse updates touch only the gradient's rows (see the module)."""

  def update_step(self, gradient, variable):
    if not isinstance(gradient, tf.IndexedSlices):
      return super().update_step(gradient, variable)
    # Keras has summed duplicate indices already (Optimizer._deduplicate_sparse_grad).
    dtype = variable.dtype
    step = tf.cast(self.iterations + 1, dtype)
    beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
    alpha = (
      tf.cast(self.learning_rate, dtype)
      * tf.sqrt(1 - tf.pow(beta_2, step))
      / (1 - tf.pow(beta_1, step))
    )
    key = self._index_dict[self._var_key(variable)]
    m, v = self._momentums[key], self._velocities[key]
    rows, values = gradient.indices, gradient.values
    m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * values
    v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(values)
    m.scatter_update(tf.IndexedSlices(m_rows, rows))
    v.scatter_update(tf.IndexedSlices(v_rows, rows))
    variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))


# By HParams.optimizer name (hparams.OPTIMIZERS).
OPTIMIZERS = {
  "adagrad": tf.keras.optimizers.Adagrad,
  "adam": tf.keras.optimizers.Adam,
  "lazy_adam": LazyAdam,
}
