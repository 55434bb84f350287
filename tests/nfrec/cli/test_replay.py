"""nfrec replay's table: rendering and its place in report.html."""

from nfrec.cli import replay

ROWS = [
  {"span": 3, "window ratings": 100, "eval Recall@10": 0.1234, "verdict": "pushed", "version": "7"},
  {"span": 4, "verdict": "stopped: data validation failed <drift>"},
]


def test_the_table_has_a_row_per_span_and_lands_at_the_top_of_the_report(tmp_path):
  text = replay.render(ROWS)
  lines = text.splitlines()
  assert len(lines) == 4 and lines[2].startswith("| 3 | 100 |") and "0.1234" in lines[2]
  report = tmp_path / "report.html"
  report.write_text("<html><body><h1>Run report</h1></body></html>")
  replay.add_to_report(str(report), ROWS, warm_start=True)
  page = report.read_text()
  assert page.index("Replay, span by span (warm start)") < page.index("Run report")
  assert "&lt;drift&gt;" in page and "<drift>" not in page
