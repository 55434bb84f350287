"""`nfrec bench objective` times every objective on a small generated stream."""

from benchmarks import objective_bench
from pipeline import config as config_lib


def test_the_variants_differ_from_the_default_preset_only_in_their_overrides():
  default = config_lib.PRESETS["default"]
  labels = [label for label, _ in objective_bench.variants(default)]
  assert sum("**default**" in label for label in labels) == 1
  variants = [default.replace(**overrides) for _, overrides in objective_bench.variants(default)]
  assert {hparams.retrieval_candidates for hparams in variants} == {"all", "sampled", "in_batch"}
  assert {hparams.l2_per_epoch for hparams in variants} == {default.l2_per_epoch, 0.0}
  assert default.l2_per_epoch > 0
  optimizers_without_table_l2 = {
    hparams.optimizer for hparams in variants if hparams.l2_per_epoch == 0.0
  }
  assert optimizers_without_table_l2 == {"adam", "lazy_adam"}
  assert {hparams.history_chunk for hparams in variants} == {default.history_chunk, 64}
  sparse = [
    (hparams.optimizer, hparams.l2_per_epoch) for hparams in variants if hparams.sparse_user_l2
  ]
  assert sparse == [("lazy_adam", default.l2_per_epoch)]


def test_every_objective_is_timed_and_the_table_is_printed(capsys):
  argv = ["--movies", "300", "--users", "50", "--steps", "2", "--no-doc"]
  assert objective_bench.main(argv) == 0
  out = capsys.readouterr().out
  table = [line for line in out.splitlines() if line.startswith("| ")][1:]
  assert len(table) == 9
  for row in table:
    milliseconds = float(row.split(" | ")[5])
    assert milliseconds > 0
