"""The shared names and rules of nfrec/contracts.py."""

import os

from nfrec import contracts


def _version(base, name, with_model=True):
  folder = base / name
  folder.mkdir(parents=True)
  if with_model:
    (folder / "saved_model.pb").write_bytes(b"graph")


def test_the_newest_whole_integer_version_is_served(tmp_path):
  assert contracts.latest_version(str(tmp_path / "nowhere")) is None
  _version(tmp_path, "9")
  _version(tmp_path, "10")
  _version(tmp_path, "11", with_model=False)  # half-written: not a version
  _version(tmp_path, ".incoming-12")  # the Pusher's staging folder: not a version
  _version(tmp_path, "latest")
  assert contracts.latest_version(str(tmp_path)) == "10"  # by number, not by name


def test_a_tf_only_process_has_the_keras_2_switch_off():
  environment = contracts.tf_only_environment({"PATH": "/bin", contracts.LEGACY_KERAS_ENV: "1"})
  assert environment == {"PATH": "/bin", contracts.LEGACY_KERAS_ENV: "0"}


def test_metric_names_cover_every_evaluated_k():
  for k in contracts.RETRIEVAL_KS:
    for name in (contracts.top_k_accuracy(k), contracts.recall_at(k), contracts.ndcg_at(k)):
      assert name in contracts.METRIC_LABELS and name in contracts.RETRIEVAL_METRICS
  assert contracts.RMSE not in contracts.RETRIEVAL_METRICS


def test_assets_are_found_in_the_saved_model_folder():
  assert contracts.asset_path("/m/3", contracts.USER_VOCABULARY) == os.path.join(
    "/m/3", "assets", "user_id"
  )
