import os

from components.atomic_pusher import executor
from nfrec import contracts


def _model(directory, fingerprint: bytes):
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, "saved_model.pb"), "wb") as f:
    f.write(b"graph")
  with open(os.path.join(directory, "fingerprint.pb"), "wb") as f:
    f.write(fingerprint)
  return str(directory)


def test_push_creates_a_whole_version_and_no_staging_leftovers(tmp_path):
  base = tmp_path / "serving" / "m"
  destination, copied = executor.push_atomically(_model(tmp_path / "a", b"A"), str(base))
  assert copied and os.path.basename(destination).isdigit()
  assert os.listdir(base) == [os.path.basename(destination)]
  assert sorted(os.listdir(destination)) == ["fingerprint.pb", "saved_model.pb"]


def test_the_same_model_is_not_pushed_twice(tmp_path):
  base = str(tmp_path / "serving")
  first, _ = executor.push_atomically(_model(tmp_path / "a", b"A"), base)
  again, copied = executor.push_atomically(_model(tmp_path / "a_copy", b"A"), base)
  assert not copied and again == first


def test_a_new_model_gets_a_higher_version_even_within_the_same_second(tmp_path):
  base = str(tmp_path / "serving")
  first, _ = executor.push_atomically(_model(tmp_path / "a", b"A"), base)
  second, copied = executor.push_atomically(_model(tmp_path / "b", b"B"), base)
  assert copied and int(os.path.basename(second)) > int(os.path.basename(first))
  assert contracts.latest_version(base) == os.path.basename(second)


def test_a_killed_push_leaves_nothing_a_server_would_load(tmp_path):
  base = tmp_path / "serving"
  half_written = base / (executor.STAGING_PREFIX + "123")
  half_written.mkdir(parents=True)
  (half_written / "variables").mkdir()
  assert contracts.latest_version(str(base)) is None  # not an integer folder: never loaded
  destination, _ = executor.push_atomically(_model(tmp_path / "a", b"A"), str(base))
  assert os.listdir(base) == [os.path.basename(destination)]  # the leftover is cleaned
