"""The id <-> index rule, shared by Transform, the serving model and the evaluators."""

import numpy as np
import tensorflow as tf

from modules.transform import vocabulary


def test_lookup_puts_every_unknown_id_at_the_end(tmp_path):
  path = tmp_path / "user_id"
  path.write_text("7\n8\n9\n")
  table = vocabulary.lookup_table(str(path))
  assert table.lookup(tf.constant(["8", "7", "12345", ""])).numpy().tolist() == [1, 0, 3, 3]
  assert vocabulary.read_vocabulary(str(path)).tolist() == [b"7", b"8", b"9"]


def test_ids_of_maps_back_and_the_unknown_index_to_empty():
  known = np.array([b"7", b"8", b"9"], dtype=object)
  assert vocabulary.ids_of(known, np.array([2, 0, 3, 7])).tolist() == [b"9", b"7", b"", b""]
  assert vocabulary.is_known(np.array([0, 2, 3]), 3).tolist() == [True, True, False]


def test_id_to_string_keeps_strings_and_formats_integers():
  assert vocabulary.id_to_string(tf.constant([169999], tf.int64)).numpy().tolist() == [b"169999"]
  assert vocabulary.id_to_string(tf.constant(["a"])).numpy().tolist() == [b"a"]
