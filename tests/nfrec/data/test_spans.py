"""Ratings as numbered spans (nfrec/data/spans.py) and the window ExampleGen reads."""

import csv
import os

import numpy as np
import pytest

from components.ratings_example_gen import executor
from nfrec.data import sample as sample_data
from nfrec.data import spans
from tests.conftest import TINY_SAMPLE


def _rows(path):
  with open(path) as f:
    return list(csv.reader(f))


def test_split_into_monthly_spans_in_time_order(tmp_path):
  sample_data.write(str(tmp_path), TINY_SAMPLE)
  ratings_dir = tmp_path / "ratings"
  original = _rows(ratings_dir / sample_data.RATINGS_FILE)
  counts = spans.split_into_spans(str(tmp_path), "month")
  assert spans.spans(str(ratings_dir)) == [n for n, _ in counts] == list(range(1, 25))
  assert sorted(os.listdir(ratings_dir)) == sorted(f"span-{n}" for n, _ in counts)
  rows = [_rows(ratings_dir / f"span-{n}" / spans.RATINGS_FILE) for n, _ in counts]
  assert all(r[0] == original[0] for r in rows)  # the header in every span
  # Every rating once; each span one calendar month, later spans later months.
  assert sorted(map(tuple, (x for r in rows for x in r[1:]))) == sorted(map(tuple, original[1:]))
  months = [{spans.period_of(np.array([int(x[3])]), "month")[0] for x in r[1:]} for r in rows]
  assert all(len(m) == 1 for m in months)
  firsts = [min(m) for m in months]
  assert firsts == sorted(firsts) and len(set(firsts)) == len(firsts)


def test_add_span_appends_the_next_span_whole_and_checks_the_header(tmp_path):
  sample_data.write(str(tmp_path), TINY_SAMPLE)
  spans.split_into_spans(str(tmp_path), "month")
  new = tmp_path / "new.csv"
  new.write_text("User_ID,Rating,Movie_ID,Timestamp\n7,5,1,1136073601\n")
  assert spans.add_span(str(tmp_path), str(new)) == 25
  assert _rows(tmp_path / "ratings" / "span-25" / spans.RATINGS_FILE)[1] == [
    "7",
    "5",
    "1",
    "1136073601",
  ]
  bad = tmp_path / "bad.csv"
  bad.write_text("User_ID,Rating,Movie_ID\n7,5,1\n")
  with pytest.raises(spans.SpanError, match=r"bad.csv line 1: header .* is not the spans'"):
    spans.add_span(str(tmp_path), str(bad))
  assert spans.spans(str(tmp_path / "ratings"))[-1] == 25


def test_spans_need_time(tmp_path):
  (tmp_path / "ratings").mkdir()
  (tmp_path / "ratings" / "r.csv").write_text("User_ID,Rating,Movie_ID\n1,5,1\n")
  with pytest.raises(spans.SpanError, match="r.csv line 1: no Timestamp column"):
    spans.split_into_spans(str(tmp_path), "week")


def test_the_window_is_the_resolved_span_and_those_before_it():
  assert executor.window_patterns("/d/ratings/span-7/*", 7, 3) == [
    "/d/ratings/span-5/*",
    "/d/ratings/span-6/*",
    "/d/ratings/span-7/*",
  ]
  assert executor.window_patterns("/d/ratings/span-2/*", 2, 5) == [
    "/d/ratings/span-1/*",
    "/d/ratings/span-2/*",
  ]
  assert executor.window_patterns("/d/ratings/*", 0, 5) == ["/d/ratings/*"]  # no spans
