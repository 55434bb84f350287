"""The Trainer's export: the trained model as the core SavedModel (modules/trainer/export.py)."""

import numpy as np
import tensorflow as tf

from benchmarks import synthetic_model
from modules.trainer import export
from modules.trainer import train as trainer_lib
from pipeline import config as config_lib
from tests.modules.trainer.test_train import _signal


def test_the_export_holds_the_trained_weights_and_not_the_optimizer_state(tmp_path):
  hparams = config_lib.PRESETS["default"].replace(
    batch_size=64, epochs=1, refit_on_validation=False, rating_stage_epochs=0
  )
  trained = trainer_lib.fit(
    _signal(256, 20, 15, seed=0), _signal(64, 20, 15, seed=1), 20, 15, hparams
  )
  # Trained: Adam holds state, as large as the weights twice over; the export leaves it out.
  assert any("embedding" in v.name for v in trained.model.optimizer.variables)
  export_dir = str(tmp_path / "core_model")
  vocabularies = synthetic_model.VocabularyFiles(
    str(tmp_path), [str(u) for u in range(20)], [str(m) for m in range(15)]
  )
  export.export_core_model(trained.model, vocabularies, export_dir)

  saved = tf.train.load_checkpoint(f"{export_dir}/variables/variables").get_variable_to_shape_map()
  assert "model/user_embedding/embeddings/.ATTRIBUTES/VARIABLE_VALUE" in saved
  assert not [name for name in saved if "optimizer" in name]
  core = tf.saved_model.load(export_dir)
  np.testing.assert_array_equal(
    core.model.user_embedding.embeddings.numpy(), trained.model.user_embedding.embeddings.numpy()
  )
  user = core.user_tower(
    tf.constant([3], tf.int64),
    tf.zeros([1, 1], tf.int64),
    tf.zeros([1, 1]),
    tf.zeros([1], tf.int64),
  )
  assert user["query"].shape[0] == 1
