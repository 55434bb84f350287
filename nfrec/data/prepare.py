"""`nfrec prepare`: real rating files -> the pipeline's input folders, nothing lost.

Every input row is either written or rejected. Rejected rows go to
`<output>/rejects.csv` (file, line, reason, content), counted by reason:

  unparseable      a field is not a number where one is needed, or the line
                   does not split into the format's fields
  missing field    a required field is empty
  rating outside the scale
  unknown movie    the rating's movie is not in the movie file
  duplicate        the same (user, movie) again: the FIRST occurrence in file
                   order is kept, later ones are rejected (the reason names the
                   kept line)
  duplicate movie id (in the movie file; the first is kept)

The run fails with one clear message (file, line, problem) when an input is
unusable (missing, wrong columns, wrong encoding, empty) or when the rejects
exceed `max_reject_share` of the rating rows (default 1 %). The output folders
are written to a staging folder and moved into place only on success, so a
failed prepare never leaves a half-written data folder behind; `rejects.csv`
is kept either way so the problem can be inspected.

Memory does not grow with the number of ratings, only with the number of
duplicates: rows stream from disk to disk. To find duplicates, each valid
rating's (user, movie) key and row number go to one of DUPLICATE_BUCKETS files
by user, and each bucket is sorted alone (at 100M ratings, about 25 MB each);
where a row came from (file and line) goes to a file of its own, read only for
the duplicates, whose row numbers are held until they are written to rejects.csv.
The content of a rejected duplicate is the row as written (normalized).
"""

from __future__ import annotations

import array
import collections
import csv
import dataclasses
import datetime
import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from nfrec import contracts
from pipeline import schema as schema_lib

MAX_REJECT_SHARE = 0.01  # more rejected rating rows than this share stop the run
RATINGS_FILE = "ratings.csv"
MOVIES_FILE = "movies.csv"

UNPARSEABLE = "unparseable"
MISSING_FIELD = "missing field"
OUT_OF_SCALE = "rating outside the scale"
UNKNOWN_MOVIE = "unknown movie"
DUPLICATE = "duplicate (user, movie)"
DUPLICATE_MOVIE = "duplicate movie id"


class PrepareError(ValueError):
  """The input cannot be used; the message names the file, the line and the problem."""


@dataclasses.dataclass(frozen=True)
class RatingScale:
  minimum: float
  maximum: float
  step: float

  def accepts(self, value: float) -> bool:
    steps = (value - self.minimum) / self.step
    return self.minimum <= value <= self.maximum and abs(steps - round(steps)) < 1e-6


STARS = RatingScale(1.0, 5.0, 1.0)
HALF_STARS = RatingScale(0.5, 5.0, 0.5)


@dataclasses.dataclass
class Row:
  """One input line: its fields, or why it could not be split into them."""

  file: str
  line: int
  content: str
  fields: dict | None = None
  error: str | None = None


@dataclasses.dataclass
class Report:
  rows_in: int = 0
  rows_written: int = 0
  movies_in: int = 0
  movies_written: int = 0
  rejects: collections.Counter = dataclasses.field(default_factory=collections.Counter)

  def as_dict(self) -> dict:
    return {
      "ratings_in": self.rows_in,
      "ratings_written": self.rows_written,
      "movies_in": self.movies_in,
      "movies_written": self.movies_written,
      "rejects": dict(self.rejects),
    }


@dataclasses.dataclass
class Source:
  """What a format reader gives: rows with the same field names, whatever the format.

  Movie rows have `movie`, `title`, `year`; rating rows `user`, `movie`, `rating` and,
  where the format has the rating time, `time`, which `parse_time` turns into seconds
  since 1970-01-01 UTC (the TIMESTAMP column). Without time, `parse_time` is None.
  """

  movies: Iterable[Row]
  ratings: Iterable[Row]
  scale: RatingScale
  parse_time: Callable[[str], int] | None = None


def _unix_seconds(text: str) -> int:
  return int(text.strip())


def _date_seconds(text: str) -> int:
  """A YYYY-MM-DD date (Netflix Prize) as the seconds of its midnight, UTC."""
  day = datetime.date.fromisoformat(text.strip())
  return int(
    datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc).timestamp()
  )


# ---------------------------------------------------------------------------
# Reading: each format yields Rows with the same field names.


def _lines(path: str, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
  """(line number, text) of each non-blank line; a decoding error names its line.

  Lines are read as bytes and decoded one by one, so the error points at the
  offending line rather than at a buffer boundary.
  """
  if not os.path.isfile(path):
    raise PrepareError(f"{path}: no such file.")
  if os.path.getsize(path) == 0:
    raise PrepareError(f"{path}: line 1: empty file.")
  with open(path, "rb") as f:
    for number, raw in enumerate(f, 1):
      try:
        text = raw.decode(encoding).rstrip("\r\n")
      except UnicodeDecodeError as error:
        raise PrepareError(
          f"{path}: line {number}: not {encoding} text ({error.reason}); "
          "is this the right file and format?"
        ) from None
      if text.strip():
        yield number, text


def _csv_rows(
  path: str, expected_header: list[str], encoding: str = "utf-8", rename: dict | None = None
) -> Iterator[Row]:
  """Rows of a CSV file with a header; fails if the header is not the expected one."""
  lines = _lines(path, encoding)
  first = next(lines, None)
  if first is None:
    raise PrepareError(f"{path}: line 1: no header and no rows.")
  header = next(csv.reader([first[1]]))
  if [h.strip() for h in header] != expected_header:
    raise PrepareError(
      f"{path}: line {first[0]}: wrong columns {header}, expected {expected_header}."
    )
  names = [(rename or {}).get(h, h) for h in expected_header]
  for number, text in lines:
    values = next(csv.reader([text]))
    if len(values) != len(names):
      yield Row(
        path, number, text, error=f"{UNPARSEABLE}: {len(values)} fields, expected {len(names)}"
      )
    else:
      yield Row(path, number, text, fields=dict(zip(names, values, strict=True)))


def _split_rows(
  path: str, separator: str, names: list[str], encoding: str = "utf-8"
) -> Iterator[Row]:
  """Rows of a header-less file with a fixed separator (MovieLens .dat / u.data)."""
  for number, text in _lines(path, encoding):
    values = text.split(separator)
    if len(values) != len(names):
      yield Row(
        path, number, text, error=f"{UNPARSEABLE}: {len(values)} fields, expected {len(names)}"
      )
    else:
      yield Row(path, number, text, fields=dict(zip(names, values, strict=True)))


_TITLE_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


def _title_and_year(title: str) -> tuple[str, str]:
  """MovieLens titles carry the year: "Toy Story (1995)" -> ("Toy Story", "1995")."""
  match = _TITLE_YEAR.match(title)
  return (match.group(1), match.group(2)) if match else (title.strip(), "")


def netflix_kaggle(ratings: str, movies: str):
  # The Kaggle files are the pipeline's own layout (contracts).
  movie_rows = _csv_rows(
    movies,
    list(contracts.MOVIES_COLUMNS),
    rename=dict(zip(contracts.MOVIES_COLUMNS, ("movie", "year", "title"), strict=True)),
  )
  rating_rows = _csv_rows(
    ratings,
    list(contracts.RATINGS_COLUMNS),
    rename=dict(zip(contracts.RATINGS_COLUMNS, ("user", "rating", "movie"), strict=True)),
  )
  return Source(movie_rows, rating_rows, STARS)


def _prize_titles(path: str) -> Iterator[Row]:
  """movie_titles.csv: no header, latin-1, `id,year,title`, commas in titles unquoted."""
  for number, text in _lines(path, "latin-1"):
    parts = text.split(",", 2)
    if len(parts) != 3:
      yield Row(path, number, text, error=f"{UNPARSEABLE}: expected id,year,title")
      continue
    year = parts[1].strip()
    yield Row(
      path,
      number,
      text,
      fields={"movie": parts[0], "year": "" if year == "NULL" else year, "title": parts[2]},
    )


def _prize_combined(paths: list[str]) -> Iterator[Row]:
  """combined_data_*.txt: `MovieID:` lines, then `CustomerID,Rating,Date` lines."""
  for path in paths:
    movie = None
    for number, text in _lines(path, "utf-8"):
      if text.endswith(":"):
        movie = text[:-1]
        continue
      if movie is None:
        raise PrepareError(
          f"{path}: line {number}: a rating before any `MovieID:` line; "
          "is this a Netflix Prize combined_data file?"
        )
      parts = text.split(",")
      if len(parts) != 3:
        yield Row(path, number, text, error=f"{UNPARSEABLE}: expected CustomerID,Rating,Date")
        continue
      yield Row(
        path,
        number,
        text,
        fields={"user": parts[0], "rating": parts[1], "movie": movie, "time": parts[2]},
      )


def netflix_prize(combined: list[str], titles: str):
  if not combined:
    raise PrepareError("netflix-prize: no combined_data file given (--combined FILE ...).")
  return Source(_prize_titles(titles), _prize_combined(combined), STARS, _date_seconds)


def _movielens_variant(input_dir: str) -> str:
  if not os.path.isdir(input_dir):
    raise PrepareError(f"{input_dir}: no such folder.")
  if os.path.exists(os.path.join(input_dir, "u.data")):
    return "100k"
  if glob.glob(os.path.join(input_dir, "ratings*.dat")):
    return "1m"
  if os.path.exists(os.path.join(input_dir, "ratings.csv")):
    return "latest"
  raise PrepareError(
    f"{input_dir}: no MovieLens ratings here (expected u.data, ratings.dat or ratings.csv)."
  )


def _only(pattern: str) -> str:
  found = sorted(glob.glob(pattern))
  if len(found) != 1:
    raise PrepareError(f"{pattern}: expected exactly one file, found {len(found)}.")
  return found[0]


def _with_year(rows: Iterable[Row]) -> Iterator[Row]:
  for row in rows:
    if row.fields is not None:
      row.fields["title"], row.fields["year"] = _title_and_year(row.fields["title"])
    yield row


def movielens(input_dir: str):
  variant = _movielens_variant(input_dir)
  if variant == "100k":
    movie_rows = _split_rows(
      os.path.join(input_dir, "u.item"),
      "|",
      ["movie", "title"] + [f"_{i}" for i in range(22)],
      "latin-1",
    )
    rating_rows = _split_rows(
      os.path.join(input_dir, "u.data"), "\t", ["user", "movie", "rating", "time"]
    )
    scale, parse_time = STARS, _unix_seconds
  elif variant == "1m":
    movie_rows = _split_rows(
      os.path.join(input_dir, "movies.dat"), "::", ["movie", "title", "genres"], "latin-1"
    )
    # ratings.dat is `user::movie::rating::timestamp`; a copy without the timestamps
    # (the first line tells) has no rating time.
    ratings_file = _only(os.path.join(input_dir, "ratings*.dat"))
    first = next(_lines(ratings_file), (0, ""))[1]
    with_time = len(first.split("::")) == 4
    names = ["user", "movie", "rating"] + (["time"] if with_time else [])
    rating_rows = _split_rows(ratings_file, "::", names)
    scale, parse_time = STARS, _unix_seconds if with_time else None
  else:
    movie_rows = _csv_rows(
      os.path.join(input_dir, "movies.csv"),
      ["movieId", "title", "genres"],
      rename={"movieId": "movie"},
    )
    rating_rows = _csv_rows(
      os.path.join(input_dir, "ratings.csv"),
      ["userId", "movieId", "rating", "timestamp"],
      rename={"userId": "user", "movieId": "movie", "timestamp": "time"},
    )
    scale, parse_time = HALF_STARS, _unix_seconds
  return Source(_with_year(movie_rows), rating_rows, scale, parse_time)


# ---------------------------------------------------------------------------
# Validation and writing.


def _integer_id(text: str) -> int | None:
  text = text.strip()
  return int(text) if text.isdigit() else None


class _RejectWriter:
  def __init__(self, path: str, report: Report):
    self._file = open(path, "w", newline="", encoding="utf-8")
    self._writer = csv.writer(self._file)
    self._writer.writerow(["file", "line", "reason", "content"])
    self._report = report

  def reject(self, row_file: str, line: int, reason: str, content: str) -> None:
    self._report.rejects[reason.split(":")[0]] += 1
    self._writer.writerow([row_file, line, reason, content])

  def close(self):
    self._file.close()


def _check_fields(row: Row, required: list[str]) -> str | None:
  if row.error:
    return row.error
  missing = [name for name in required if not row.fields.get(name, "").strip()]
  return f"{MISSING_FIELD}: {', '.join(missing)}" if missing else None


def _write_movies(
  rows: Iterable[Row], path: str, rejects: _RejectWriter, report: Report
) -> set[int]:
  known = set()
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(contracts.MOVIES_COLUMNS)
    for row in rows:
      report.movies_in += 1
      problem = _check_fields(row, ["movie", "title"])
      movie = None if problem else _integer_id(row.fields["movie"])
      year = "" if problem else row.fields.get("year", "").strip()
      if not problem and movie is None:
        problem = f"{UNPARSEABLE}: movie id {row.fields['movie']!r}"
      elif not problem and year and not year.isdigit():
        problem = f"{UNPARSEABLE}: year {year!r}"
      elif not problem and movie in known:
        problem = DUPLICATE_MOVIE
      if problem:
        rejects.reject(row.file, row.line, problem, row.content)
        continue
      known.add(movie)
      writer.writerow([movie, year, row.fields["title"].strip()])
      report.movies_written += 1
  if not known:
    raise PrepareError("no usable movie in the movie file(s); see rejects.csv.")
  return known


def _write_ratings(
  rows: Iterable[Row],
  path: str,
  scale: RatingScale,
  known_movies: set[int],
  parse_time: Callable[[str], int] | None,
  rejects: _RejectWriter,
  report: Report,
) -> None:
  """Validates and writes ratings; duplicates are found by a second pass over the output.

  With `parse_time`, each row's time is checked and written as the TIMESTAMP column.
  """
  staged = path + ".staged"
  # Per valid row, in order: its (user << 20 | movie) key and where it came from, on
  # disk (DuplicateFinder), to find and explain duplicates afterwards.
  finder = DuplicateFinder(os.path.dirname(path))
  files: list[str] = []
  required = ["user", "movie", "rating"] + (["time"] if parse_time else [])
  with open(staged, "w", newline="", encoding="utf-8") as f, finder:
    writer = csv.writer(f)
    for row in rows:
      report.rows_in += 1
      problem = _check_fields(row, required)
      time = []
      if not problem and parse_time:
        try:
          time = [parse_time(row.fields["time"])]
        except ValueError:
          problem = f"{UNPARSEABLE}: time {row.fields['time'].strip()!r}"
      if not problem:
        user, movie = _integer_id(row.fields["user"]), _integer_id(row.fields["movie"])
        try:
          rating = float(row.fields["rating"])
        except ValueError:
          rating = None
        if user is None or movie is None or rating is None or movie >= 1 << 20:
          problem = f"{UNPARSEABLE}: user, movie or rating is not a number"
        elif not scale.accepts(rating):
          problem = (
            f"{OUT_OF_SCALE}: {row.fields['rating'].strip()} not in "
            f"{scale.minimum:g}..{scale.maximum:g} by {scale.step:g}"
          )
        elif movie not in known_movies:
          problem = f"{UNKNOWN_MOVIE}: {movie}"
      if problem:
        rejects.reject(row.file, row.line, problem, row.content)
        continue
      if not files or files[-1] != row.file:
        files.append(row.file)
      finder.add(user << 20 | movie, row.line, len(files) - 1)
      # Half stars always with a decimal, so the column is FLOAT whatever the values.
      rating_text = f"{rating:.1f}" if scale.step < 1 else str(int(rating))
      writer.writerow([user, rating_text, movie] + time)

    duplicate_of = finder.duplicates()
    where_from = finder.where_from(set(duplicate_of) | set(duplicate_of.values()))
  with (
    open(staged, newline="", encoding="utf-8") as source,
    open(path, "w", newline="", encoding="utf-8") as target,
  ):
    header = list(contracts.RATINGS_COLUMNS) + ([contracts.TIMESTAMP] if parse_time else [])
    target.write(",".join(header) + "\r\n")
    for index, line in enumerate(source):
      first = duplicate_of.get(index)
      if first is None:
        target.write(line)
        report.rows_written += 1
      else:
        (row_line, row_file_id), (kept_line, kept_file_id) = where_from[index], where_from[first]
        row_file, kept_file = files[row_file_id], files[kept_file_id]
        where = f"line {kept_line}" if kept_file == row_file else f"{kept_file} line {kept_line}"
        rejects.reject(row_file, row_line, f"{DUPLICATE}: {where} is kept", line.rstrip())
  os.remove(staged)


DUPLICATE_BUCKETS = 64
_BUFFERED_ROWS = 1 << 14  # per bucket, before it is appended to its file


class DuplicateFinder:
  """Repeated keys among many rows in bounded memory: rows are numbered in the order
  added; each (key, row) goes to a bucket file by key (the user, in the high bits, so a
  user's keys share a bucket); duplicates() sorts one bucket at a time. A context
  manager: its temporary files are removed on exit."""

  def __init__(self, directory: str, buckets: int = DUPLICATE_BUCKETS):
    self.folder = tempfile.mkdtemp(prefix=".duplicates-", dir=directory)
    self.buckets = buckets
    self.rows = 0
    self._pending: list[array.array] = [array.array("q") for _ in range(buckets)]
    self._origin = open(os.path.join(self.folder, "origin"), "wb")
    self._origin_buffer = array.array("q")

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self._origin.close()
    shutil.rmtree(self.folder, ignore_errors=True)

  def _bucket_path(self, bucket: int) -> str:
    return os.path.join(self.folder, f"bucket-{bucket}")

  def add(self, key: int, line: int, file_id: int) -> None:
    bucket = (key >> 20) % self.buckets
    self._pending[bucket].extend((key, self.rows))
    if len(self._pending[bucket]) >= 2 * _BUFFERED_ROWS:
      self._flush(bucket)
    self._origin_buffer.extend((line, file_id))
    if len(self._origin_buffer) >= 2 * _BUFFERED_ROWS:
      self._origin_buffer.tofile(self._origin)
      del self._origin_buffer[:]
    self.rows += 1

  def _flush(self, bucket: int) -> None:
    with open(self._bucket_path(bucket), "ab") as f:
      self._pending[bucket].tofile(f)
    del self._pending[bucket][:]

  def duplicates(self) -> dict[int, int]:
    """Row of each repeated key -> row of its first occurrence."""
    self._origin_buffer.tofile(self._origin)
    del self._origin_buffer[:]
    self._origin.flush()
    found: dict[int, int] = {}
    for bucket in range(self.buckets):
      if self._pending[bucket]:
        self._flush(bucket)
      if not os.path.exists(self._bucket_path(bucket)):
        continue
      pairs = np.fromfile(self._bucket_path(bucket), dtype=np.int64).reshape(-1, 2)
      # Rows entered each bucket in increasing order: a stable sort by key keeps it.
      repeated = _duplicates(pairs[:, 0])
      rows = pairs[:, 1]
      found.update({int(rows[i]): int(rows[first]) for i, first in repeated.items()})
    return found

  def where_from(self, rows: set[int]) -> dict[int, tuple[int, int]]:
    """(line, file id) of the given rows, read from disk."""
    if not rows:
      return {}
    origin = np.memmap(os.path.join(self.folder, "origin"), dtype=np.int64, mode="r")
    origin = origin.reshape(-1, 2)
    return {row: (int(origin[row, 0]), int(origin[row, 1])) for row in sorted(rows)}


def _duplicates(keys: np.ndarray) -> dict[int, int]:
  """Index of each repeated key -> index of its first occurrence."""
  if keys.size == 0:
    return {}
  order = np.argsort(keys, kind="stable")
  ordered = keys[order]
  repeated = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1
  if repeated.size == 0:
    return {}
  run_start = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
  first = order[run_start[np.searchsorted(run_start, repeated, side="right") - 1]]
  return dict(zip(order[repeated].tolist(), first.tolist(), strict=True))


def prepare(source: Source, output_dir: str, max_reject_share: float = MAX_REJECT_SHARE) -> Report:
  """Writes `output_dir/{ratings,movies}/` (and its schema and dataset.json) from `source`."""
  os.makedirs(output_dir, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".prepare-", dir=output_dir)
  report = Report()
  rejects = _RejectWriter(os.path.join(staging, contracts.REJECTS_FILE), report)
  try:
    os.makedirs(os.path.join(staging, contracts.MOVIES_FOLDER))
    os.makedirs(os.path.join(staging, contracts.RATINGS_FOLDER))
    known = _write_movies(
      source.movies, os.path.join(staging, contracts.MOVIES_FOLDER, MOVIES_FILE), rejects, report
    )
    _write_ratings(
      source.ratings,
      os.path.join(staging, contracts.RATINGS_FOLDER, RATINGS_FILE),
      source.scale,
      known,
      source.parse_time,
      rejects,
      report,
    )
    rejects.close()
    if report.rows_in == 0:
      raise PrepareError("no rating rows in the input.")
    rejected = report.rows_in - report.rows_written
    if rejected > max_reject_share * report.rows_in:
      raise PrepareError(
        f"{rejected:,} of {report.rows_in:,} rating rows rejected "
        f"({rejected / report.rows_in:.2%} > {max_reject_share:.2%}): "
        f"{dict(report.rejects)}; see {os.path.join(output_dir, contracts.REJECTS_FILE)}."
      )
    scale = source.scale
    schema_lib.write(
      schema_lib.ratings_schema(
        scale.minimum,
        scale.maximum,
        integer_ratings=scale.step >= 1,
        with_timestamp=source.parse_time is not None,
      ),
      os.path.join(staging, contracts.DATA_SCHEMA_FILE),
    )
    with open(os.path.join(staging, contracts.DATASET_FILE), "w") as f:
      json.dump(
        {
          "rating_min": scale.minimum,
          "rating_max": scale.maximum,
          "rating_step": scale.step,
          "has_time": source.parse_time is not None,
          **report.as_dict(),
        },
        f,
        indent=2,
      )
    for name in (
      contracts.RATINGS_FOLDER,
      contracts.MOVIES_FOLDER,
      contracts.REJECTS_FILE,
      contracts.DATASET_FILE,
      contracts.DATA_SCHEMA_FILE,
    ):
      target = os.path.join(output_dir, name)
      if os.path.isdir(target):
        shutil.rmtree(target)
      os.replace(os.path.join(staging, name), target)
    return report
  finally:
    rejects.close()
    staged_rejects = os.path.join(staging, contracts.REJECTS_FILE)
    if os.path.exists(staged_rejects):  # kept for inspection on failure
      os.replace(staged_rejects, os.path.join(output_dir, contracts.REJECTS_FILE))
    shutil.rmtree(staging, ignore_errors=True)
