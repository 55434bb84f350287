"""The floor of RatingsExampleGen's work (benchmarks/floors.py) does that work in full."""

import numpy as np
import tensorflow as tf

from benchmarks import floors, pipeline_bench
from components.ratings_example_gen import splits
from nfrec import contracts


def _examples(path):
  for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
    example = tf.train.Example.FromString(record.numpy())
    yield {name: feature.int64_list.value[0] for name, feature in example.features.feature.items()}


def test_every_rating_is_written_once_and_each_users_latest_ratings_are_eval(tmp_path):
  rng = np.random.default_rng(0)
  rows = [
    (user, int(rng.integers(1, 6)), movie, 1000 * movie + user)
    for user in range(1, 6)
    for movie in rng.permutation(50)[:20]
  ]
  csv = tmp_path / "ratings.csv"
  csv.write_text(
    "User_ID,Rating,Movie_ID,Timestamp\n" + "".join(f"{u},{r},{m},{t}\n" for u, r, m, t in rows)
  )
  config = splits.SplitConfig(
    "auto", eval_share=0.1, validation_share=0.1, new_user_share=0.0, seed=1
  )
  result = floors.ratings_example_gen_floor(str(csv), str(tmp_path / "out"), config)
  assert result["rows"] == result["written"] == len(rows) == 100
  by_split = {
    name: list(_examples(str(tmp_path / "out" / f"split-{name}.gz"))) for name in contracts.SPLITS
  }
  assert not by_split[contracts.NEW_USERS]
  written = sorted(
    (e["User_ID"], e["Rating"], e["Movie_ID"], e["Timestamp"])
    for part in by_split.values()
    for e in part
  )
  assert written == sorted(rows)
  # 20 ratings a user: the latest 2 are eval, the 2 before them validation.
  for user in range(1, 6):
    times = sorted(t for u, _, _, t in rows if u == user)
    assert (
      sorted(e["Timestamp"] for e in by_split[contracts.EVAL] if e["User_ID"] == user) == times[-2:]
    )
    assert (
      sorted(e["Timestamp"] for e in by_split[contracts.VALIDATION] if e["User_ID"] == user)
      == times[-4:-2]
    )


def test_the_floor_table_sets_the_cold_examplegen_beside_its_floor():
  floor = {"rows": 1000, "total_s": 0.5}
  results = [
    {
      "ratings": 1000,
      "mode": "in_memory",
      "examplegen_floor": floor,
      "components": {"RatingsExampleGen": {"state": "COMPLETE", "seconds": 10.0}},
    },
    {
      "ratings": 1000,
      "mode": "in_memory",
      "examplegen_floor": floor,
      "components": {"RatingsExampleGen": {"state": "CACHED", "seconds": 0.0}},
    },
  ]
  rows = [
    line for line in pipeline_bench.render_floors(results).splitlines() if line.startswith("| 1")
  ]
  assert rows == ["| 1,000 | 10 | 10000.0 | 0.5 | 500.0 | 20x |"]
