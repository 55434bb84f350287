"""`nfrec prepare`: every format, every reject reason, nothing lost."""

import csv
import json
import os

import numpy as np
import pytest

import benchmarks
from nfrec import contracts
from nfrec.data import prepare

SHARED = benchmarks.SHARED_DATA


def _write(path, text, encoding="utf-8"):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(text.encode(encoding))
  return str(path)


def _read_csv(path):
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.reader(f))


def _rejects(output):
  return [
    dict(zip(["file", "line", "reason", "content"], row, strict=True))
    for row in _read_csv(os.path.join(output, contracts.REJECTS_FILE))[1:]
  ]


KAGGLE_MOVIES = (
  "Movie_ID,Year,Name\n1,2003,Dinosaur Planet\n2,1940,Pride and Prejudice\n"
  "3,1995,Pride and Prejudice\n"
)


def test_netflix_kaggle_each_reject_reason_and_nothing_lost(tmp_path):
  ratings = _write(
    tmp_path / "in" / "r.csv",
    "User_ID,Rating,Movie_ID\n"
    "10,5,1\n"  # line 2: kept
    "11,x,1\n"  # line 3: unparseable
    "12,,2\n"  # line 4: missing field
    "13,6,2\n"  # line 5: outside the scale
    "14,3,99\n"  # line 6: unknown movie
    "10,4,1\n"  # line 7: duplicate of line 2 (line 2 kept)
    "15,1,2,extra\n"  # line 8: unparseable (too many fields)
    "16,4,3\n",
  )  # line 9: kept
  movies = _write(tmp_path / "in" / "m.csv", KAGGLE_MOVIES)
  output = str(tmp_path / "out")
  report = prepare.prepare(prepare.netflix_kaggle(ratings, movies), output, max_reject_share=1.0)
  assert report.rows_in == 8 and report.rows_written == 2
  assert _read_csv(os.path.join(output, "ratings", "ratings.csv")) == [
    ["User_ID", "Rating", "Movie_ID"],
    ["10", "5", "1"],
    ["16", "4", "3"],
  ]
  rejects = _rejects(output)
  assert [
    (r["line"], r["reason"].split(":")[0]) for r in sorted(rejects, key=lambda r: int(r["line"]))
  ] == [
    ("3", "unparseable"),
    ("4", "missing field"),
    ("5", "rating outside the scale"),
    ("6", "unknown movie"),
    ("7", "duplicate (user, movie)"),
    ("8", "unparseable"),
  ]
  duplicate = next(r for r in rejects if r["line"] == "7")
  assert duplicate["reason"] == "duplicate (user, movie): line 2 is kept"
  assert all(r["file"] == ratings for r in rejects)
  assert report.rows_written + len(rejects) == report.rows_in  # nothing lost
  assert dict(report.rejects) == {
    "unparseable": 2,
    "missing field": 1,
    "rating outside the scale": 1,
    "unknown movie": 1,
    "duplicate (user, movie)": 1,
  }


def test_titles_are_not_unique_every_movie_id_is_kept(tmp_path):
  ratings = _write(tmp_path / "r.csv", "User_ID,Rating,Movie_ID\n1,5,2\n1,4,3\n")
  movies = _write(tmp_path / "m.csv", KAGGLE_MOVIES)
  prepare.prepare(prepare.netflix_kaggle(ratings, movies), str(tmp_path / "out"))
  rows = _read_csv(str(tmp_path / "out" / "movies" / "movies.csv"))
  assert rows[2:] == [["2", "1940", "Pride and Prejudice"], ["3", "1995", "Pride and Prejudice"]]


def test_too_many_rejects_fail_and_leave_no_data_folder(tmp_path):
  ratings = _write(tmp_path / "r.csv", "User_ID,Rating,Movie_ID\n1,5,1\n2,9,1\n")
  movies = _write(tmp_path / "m.csv", KAGGLE_MOVIES)
  output = tmp_path / "out"
  with pytest.raises(prepare.PrepareError, match=r"1 of 2 rating rows rejected \(50.00% > 1.00%\)"):
    prepare.prepare(prepare.netflix_kaggle(ratings, movies), str(output))
  assert sorted(os.listdir(output)) == [contracts.REJECTS_FILE]  # inspectable, not runnable
  assert _rejects(str(output))[0]["line"] == "3"


@pytest.mark.parametrize(
  "content,message",
  [
    (None, "no such file"),
    ("", "line 1: empty file"),
    ("user,rating,movie\n1,5,1\n", "line 1: wrong columns"),
    ("User_ID,Rating,Movie_ID\n1,5,1\n2,4,\xe9\n", "line 3: not utf-8 text"),
  ],
)
def test_unusable_ratings_file_is_named_with_line_and_problem(tmp_path, content, message):
  path = tmp_path / "ratings.csv"
  if content is not None:
    path.write_bytes(content.encode("latin-1"))
  movies = _write(tmp_path / "m.csv", KAGGLE_MOVIES)
  with pytest.raises(prepare.PrepareError) as error:
    prepare.prepare(prepare.netflix_kaggle(str(path), movies), str(tmp_path / "out"))
  assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_netflix_prize_combined_and_latin1_titles_with_commas_and_null_years(tmp_path):
  titles = _write(
    tmp_path / "movie_titles.csv",
    "1,2003,Dinosaur Planet\n2,NULL,Ancient Civilizations: Rome, and Pompeii\n"
    "3,1999,Am\xe9lie, the Fabulous\n",
    encoding="latin-1",
  )
  part1 = _write(
    tmp_path / "combined_data_1.txt",
    "1:\n1488844,3,2005-09-06\n822109,5,2005-05-13\n2:\n1488844,6,2005-01-01\n"
    "1488845,4,2005-13-01\n",
  )
  part2 = _write(
    tmp_path / "combined_data_2.txt", "3:\n822109,4,2004-03-02\n1:\n822109,2,2006-01-01\n"
  )
  output = str(tmp_path / "out")
  report = prepare.prepare(
    prepare.netflix_prize([part1, part2], titles), output, max_reject_share=1.0
  )
  assert _read_csv(os.path.join(output, "movies", "movies.csv"))[1:] == [
    ["1", "2003", "Dinosaur Planet"],
    ["2", "", "Ancient Civilizations: Rome, and Pompeii"],
    ["3", "1999", "Amélie, the Fabulous"],
  ]
  # The rating date becomes the Timestamp column: seconds of its midnight, UTC.
  assert _read_csv(os.path.join(output, "ratings", "ratings.csv")) == [
    ["User_ID", "Rating", "Movie_ID", "Timestamp"],
    ["1488844", "3", "1", "1125964800"],
    ["822109", "5", "1", "1115942400"],
    ["822109", "4", "3", "1078185600"],
  ]
  reasons = {(r["file"], r["line"]): r["reason"] for r in _rejects(output)}
  assert reasons == {
    (part1, "5"): "rating outside the scale: 6 not in 1..5 by 1",
    (part1, "6"): "unparseable: time '2005-13-01'",
    (part2, "4"): f"duplicate (user, movie): {part1} line 3 is kept",
  }
  assert report.rows_in == 6 and report.rows_written == 3
  with open(os.path.join(output, contracts.DATASET_FILE)) as f:
    assert json.load(f)["has_time"] is True


def test_movielens_variants_are_detected_and_years_split_from_titles(tmp_path):
  ml100k = tmp_path / "100k"
  _write(ml100k / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
  _write(
    ml100k / "u.item",
    "242|Kolya (1996)|24-Jan-1997||http://x|" + "|".join("0" * 19) + "\n"
    "302|L.A. Confidential (1997)|01-Jan-1997||http://x|" + "|".join("0" * 19) + "\n",
    encoding="latin-1",
  )
  ml1m = tmp_path / "1m"
  _write(ml1m / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
  _write(
    ml1m / "movies.dat",
    "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
    "661::James and the Giant Peach (1996)::Animation\n",
  )
  latest = tmp_path / "latest"
  _write(
    latest / "ratings.csv",
    "userId,movieId,rating,timestamp\n1,1,4.5,964982703\n1,2,0.5,1\n2,1,4.25,1\n",
  )
  _write(
    latest / "movies.csv",
    'movieId,title,genres\n1,Toy Story (1995),Comedy\n2,"American President, The (1995)",Drama\n',
  )
  for folder, expected_first_movie in (
    (ml100k, ["242", "1996", "Kolya"]),
    (ml1m, ["1193", "1975", "One Flew Over the Cuckoo's Nest"]),
    (latest, ["1", "1995", "Toy Story"]),
  ):
    output = str(tmp_path / ("out-" + folder.name))
    report = prepare.prepare(prepare.movielens(str(folder)), output, max_reject_share=0.5)
    movies = _read_csv(os.path.join(output, "movies", "movies.csv"))
    assert movies[1] == expected_first_movie  # the year split from the title
    assert report.rows_written == 2
  latest_ratings = _read_csv(str(tmp_path / "out-latest" / "ratings" / "ratings.csv"))
  assert latest_ratings[1:] == [["1", "4.5", "1", "964982703"], ["1", "0.5", "2", "1"]]
  ml1m_ratings = _read_csv(str(tmp_path / "out-1m" / "ratings" / "ratings.csv"))
  assert ml1m_ratings[0] == ["User_ID", "Rating", "Movie_ID", "Timestamp"]
  assert ml1m_ratings[2] == ["1", "3", "661", "978302109"]
  assert _rejects(str(tmp_path / "out-latest"))[0]["reason"].startswith("rating outside the scale")
  with open(tmp_path / "out-latest" / contracts.DATASET_FILE) as f:
    assert json.load(f)["rating_min"] == 0.5


def test_movielens_1m_without_timestamps_has_no_time_column(tmp_path):
  ml1m = tmp_path / "1m"
  _write(ml1m / "ratings_no_timestamp.dat", "1::1193::5\n1::661::3\n2::661::4::978302109\n")
  _write(ml1m / "movies.dat", "1193::Cuckoo (1975)::Drama\n661::Peach (1996)::Animation\n")
  output = str(tmp_path / "out")
  report = prepare.prepare(prepare.movielens(str(ml1m)), output, max_reject_share=0.5)
  assert _read_csv(os.path.join(output, "ratings", "ratings.csv")) == [
    ["User_ID", "Rating", "Movie_ID"],
    ["1", "5", "1193"],
    ["1", "3", "661"],
  ]
  assert _rejects(output)[0]["reason"] == "unparseable: 4 fields, expected 3"
  assert report.rows_written == 2
  with open(os.path.join(output, contracts.DATA_SCHEMA_FILE)) as f:
    assert "Timestamp" not in f.read()


def test_a_folder_without_movielens_files_is_refused(tmp_path):
  with pytest.raises(prepare.PrepareError, match="no MovieLens ratings here"):
    prepare.movielens(str(tmp_path))


@pytest.mark.shared_data
@pytest.mark.parametrize(
  "name,source,rows,movies",
  [
    (
      "netflix-kaggle",
      lambda: prepare.netflix_kaggle(
        os.path.join(SHARED, "netflix-kaggle", "Netflix_Dataset_Rating.subset_242480.csv"),
        os.path.join(SHARED, "netflix-kaggle", "Netflix_Dataset_Movie.csv"),
      ),
      242_480,
      17_770,
    ),
    ("movielens-100k", lambda: prepare.movielens(os.path.join(SHARED, "ml-100k")), 100_000, 1_682),
  ],
)
def test_real_files_in_shared_data(tmp_path, name, source, rows, movies):
  if not os.path.isdir(SHARED):
    pytest.skip(f"{SHARED} is absent: no real data on this machine")
  report = prepare.prepare(source(), str(tmp_path / name))
  assert report.rows_in == rows and report.rows_written + sum(report.rejects.values()) == rows
  assert report.movies_written == movies


@pytest.mark.shared_data
def test_real_netflix_prize_titles_with_a_combined_file_made_from_the_10k_sample(tmp_path):
  if not os.path.isdir(SHARED):
    pytest.skip(f"{SHARED} is absent: no real data on this machine")
  by_movie = {}
  with open(os.path.join(SHARED, "netflix-prize", "netflix-user-ratings-10k.csv")) as f:
    for movie, user, rating, date in list(csv.reader(f))[1:]:
      by_movie.setdefault(movie, []).append(f"{user},{rating},{date}")
  combined = _write(
    tmp_path / "combined_data_1.txt",
    "".join(f"{movie}:\n" + "\n".join(lines) + "\n" for movie, lines in by_movie.items()),
  )
  report = prepare.prepare(
    prepare.netflix_prize([combined], os.path.join(SHARED, "netflix-prize", "movie_titles.csv")),
    str(tmp_path / "out"),
  )
  assert report.rows_in == 10_000 and report.rows_written + sum(report.rejects.values()) == 10_000
  assert report.movies_written == 17_770


def test_duplicates_found_bucket_by_bucket_equal_one_sort_of_everything(tmp_path, monkeypatch):
  """The bounded-memory finder (several buckets, small buffers flushed many times)
  finds exactly the duplicates one in-memory sort finds, each pointing at the first."""
  monkeypatch.setattr(prepare, "_BUFFERED_ROWS", 8)
  rng = np.random.default_rng(3)
  users, movies = rng.integers(0, 40, 5_000), rng.integers(0, 30, 5_000)
  keys = users << 20 | movies
  with prepare.DuplicateFinder(str(tmp_path), buckets=5) as finder:
    for row, key in enumerate(keys.tolist()):
      finder.add(key, line=row + 2, file_id=row % 3)
    found = finder.duplicates()
    assert found == prepare._duplicates(keys)
    assert len(found) > 1_000  # the check is not vacuous
    some = sorted(found)[:3]
    assert finder.where_from(set(some)) == {row: (row + 2, row % 3) for row in some}
  assert not any(name.startswith(".duplicates-") for name in os.listdir(tmp_path))
