"""Ratings as numbered spans: `ratings/span-N/ratings.csv`, the layout TFX's
ExampleGen reads with a `{SPAN}` pattern (the newest span, N = 1, 2, ...).

  split_into_spans   a prepared data folder with time -> one span per day, week or
                     month that has ratings, numbered in time order
  add_span           a new CSV (same header) becomes the next span
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile

import numpy as np

from nfrec import contracts

SPAN_FOLDER = re.compile(r"^span-(\d+)$")
PERIODS = ("day", "week", "month")
RATINGS_FILE = "ratings.csv"


class SpanError(ValueError):
  pass


def spans(ratings_dir: str) -> list[int]:
  """The span numbers under a ratings folder, in order ([] without spans)."""
  if not os.path.isdir(ratings_dir):
    return []
  found = [SPAN_FOLDER.match(name) for name in os.listdir(ratings_dir)]
  return sorted(int(match.group(1)) for match in found if match)


def period_of(seconds: np.ndarray, period: str) -> np.ndarray:
  """The calendar period (UTC) of Unix times, as comparable integers."""
  if period == "day":
    return seconds // 86_400
  if period == "week":
    return (seconds // 86_400 + 3) // 7  # weeks starting on Monday (1970-01-01 was a Thursday)
  if period == "month":
    return seconds.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
  raise SpanError(f"--span-by must be one of {PERIODS}, got {period!r}")


def split_into_spans(data_dir: str, period: str) -> list[tuple[int, int]]:
  """Rewrites `data_dir/ratings/` as one span per `period` with ratings; returns
  (span, ratings) per span. The data must have a Timestamp column."""
  ratings_dir = os.path.join(data_dir, contracts.RATINGS_FOLDER)
  files = [name for name in sorted(os.listdir(ratings_dir)) if name.endswith(".csv")]
  if spans(ratings_dir) or len(files) != 1:
    raise SpanError(f"{ratings_dir}: expected one ratings CSV, not spans, to split")
  source = os.path.join(ratings_dir, files[0])
  with open(source, newline="", encoding="utf-8") as f:
    header = next(csv.reader(f))
    if contracts.TIMESTAMP not in header:
      raise SpanError(f"{source} line 1: no {contracts.TIMESTAMP} column: spans need time")
    lines = f.read().splitlines()
  column = header.index(contracts.TIMESTAMP)
  times = np.array([int(line.split(",")[column]) for line in lines], np.int64)
  periods = period_of(times, period)
  values, number = np.unique(periods, return_inverse=True)
  order = np.argsort(times, kind="stable")
  staging = tempfile.mkdtemp(prefix=".spans-", dir=data_dir)
  counts = []
  for index in range(len(values)):
    rows = order[number[order] == index]
    folder = os.path.join(staging, f"span-{index + 1}")
    os.makedirs(folder)
    with open(os.path.join(folder, RATINGS_FILE), "w", encoding="utf-8") as f:
      f.write(",".join(header) + "\n" + "\n".join(lines[i] for i in rows) + "\n")
    counts.append((index + 1, int(rows.size)))
  os.remove(source)
  for index in range(len(values)):
    os.replace(
      os.path.join(staging, f"span-{index + 1}"), os.path.join(ratings_dir, f"span-{index + 1}")
    )
  shutil.rmtree(staging)
  return counts


def add_span(data_dir: str, ratings_file: str) -> int:
  """Copies `ratings_file` into the data folder as the next span; returns its number.
  Its header must be the previous span's (the schema checks the values)."""
  ratings_dir = os.path.join(data_dir, contracts.RATINGS_FOLDER)
  existing = spans(ratings_dir)
  if not existing:
    raise SpanError(f"{ratings_dir}: no span-N folders (prepare with --span-by first)")
  with open(ratings_file, newline="", encoding="utf-8") as f:
    header = next(csv.reader(f), None)
  previous = os.path.join(ratings_dir, f"span-{existing[-1]}", RATINGS_FILE)
  with open(previous, newline="", encoding="utf-8") as f:
    expected = next(csv.reader(f))
  if header != expected:
    raise SpanError(f"{ratings_file} line 1: header {header} is not the spans' {expected}")
  number = existing[-1] + 1
  staging = tempfile.mkdtemp(prefix=".span-", dir=ratings_dir)
  shutil.copyfile(ratings_file, os.path.join(staging, RATINGS_FILE))
  os.replace(staging, os.path.join(ratings_dir, f"span-{number}"))  # appears whole
  return number
