"""Batch recommendations for every known user (modules/serving/batch.py)."""

import csv
import os

import pyarrow.parquet as pq
import tensorflow as tf

from modules.serving import batch
from tests.conftest import TOP_K, USERS


def test_every_known_user_gets_the_served_list_in_parquet_and_csv(saved_model_dir, tmp_path):
  report = batch.write_recommendations(saved_model_dir, str(tmp_path), batch=2)
  assert sorted(os.listdir(tmp_path)) == [batch.CSV_FILE, batch.PARQUET_FILE]  # no .partial
  table = pq.read_table(tmp_path / batch.PARQUET_FILE).to_pylist()
  with open(tmp_path / batch.CSV_FILE) as f:
    rows = list(csv.DictReader(f))
  assert [r["movie_id"] for r in rows] == [r["movie_id"] for r in table]
  assert report["users"] == len(USERS) and report["rows"] == len(table)
  # The same answers as the signature, padding left out: user 10 rated 100 and 200,
  # so only three movies are left for it; nobody gets a movie they rated back.
  model = tf.saved_model.load(saved_model_dir)
  served = model.signatures["recommend"](user_id=tf.constant(USERS))
  for row, user in enumerate(USERS):
    mine = [r for r in table if r["user_id"] == user]
    expected = [m.decode() for m in served["movie_ids"][row].numpy() if m]
    assert [r["movie_id"] for r in mine] == expected
    assert [r["rank"] for r in mine] == list(range(1, len(expected) + 1))
  assert len([r for r in table if r["user_id"] == "10"]) == TOP_K - 1
  assert not {"100", "200"} & {r["movie_id"] for r in table if r["user_id"] == "10"}
  assert {r["title"] for r in table if r["movie_id"] == "300"} == {"Heat"}
