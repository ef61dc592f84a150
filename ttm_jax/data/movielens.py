"""MovieLens-100K as a :class:`~ttm_jax.data.RatingData` with user and item covariates.

Reads ``u.data``, ``u.user`` and ``u.item`` from the folder that holds them
(the data may not be redistributed, so it is read in place and never copied).

Encoding (every column lies in ``[0, 1]``, as SPEC §5 assumes):

User covariates ``[943, D_u]``, in this order:

- ``age``: age in years / 100 (the file's ages run 7–73).
- ``age:<bucket>``: 7 one-hot age groups, the buckets MovieLens-1M uses
  (``<18``, ``18-24``, ``25-34``, ``35-44``, ``45-49``, ``50-55``, ``56+``), so a
  tower can fit a non-monotone age effect without having to learn the cuts.
- ``gender:F``, ``gender:M``: one-hot.
- ``occupation:<name>``: 21 one-hot columns, the vocabulary of
  ``u.occupation`` (fixed here, so the columns do not depend on the rows read);
  an occupation outside it is a malformed line.
- ``zip:<d>``: 10 one-hot columns for the first digit of a 5-digit US zip code
  (the US national zip zones, north-east ``0`` to west ``9``), plus
  ``zip:non-us`` for anything else (the file has Canadian postcodes such as
  ``T8H1N``); unknown or malformed codes fall in that column rather than fail.

Item covariates ``[1682, D_i]``, in this order:

- ``genre:<name>``: the 19 genre flags as given (0/1).
- ``year``: (release year − 1900) / 100, from the ``dd-Mon-yyyy`` release date;
  a missing date (item 267, "unknown") gets the median year of the others and
  ``year:missing`` = 1.
- ``year:missing``: 1 where the release date is missing.
- ``decade:<d>``: 8 one-hot decades, ``1920s`` (everything before 1930) to
  ``1990s``; a missing date has none set.
- ``title:<word>`` (only with ``title_words=k``): 0/1 for the ``k`` most
  frequent lower-case words of the titles (the "(1995)" year suffix and
  a few English function words dropped).

Ids (SPEC §1's hybrid model) are not covariates: the model holds them as
embedding tables, ``ModelConfig(user_ids=True, item_ids=True)``, indexed by
the rows of these tables (a user's row is its id). Users and items with no
training rating read the tables' unknown row, so their covariates carry them.
The one-hot blocks this reader used to append (``user_ids=True``) are gone;
:func:`ttm_jax.presets.movielens_100k` is the measured configuration.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ttm_jax.data.ratings import RatingData

__all__ = [
    "GENRES",
    "OCCUPATIONS",
    "AGE_BUCKETS",
    "MovieLens",
    "read_movielens",
    "load_movielens",
]

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment",
    "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none",
    "other", "programmer", "retired", "salesman", "scientist", "student", "technician",
    "writer",
)
#: (label, lowest age) of the age groups; a user falls in the last one whose lowest age ≤ age.
AGE_BUCKETS = (
    ("<18", 0), ("18-24", 18), ("25-34", 25), ("35-44", 35), ("45-49", 45), ("50-55", 50),
    ("56+", 56),
)
_DECADES = tuple(range(1920, 2000, 10))
_MONTHS = {m: k for k, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_STOP_WORDS = frozenset([
    "the", "a", "an", "of", "and", "in", "to", "on", "for", "with", "from", "at", "by", "is",
    "it", "its", "la", "le", "les", "de", "el", "der", "die", "das", "i", "ii", "iii", "s",
])


class MovieLens(NamedTuple):
    """A MovieLens folder read into a :class:`RatingData`, with column names.

    Attributes:
      data: covariates and all ratings (``[943, D_u]``, ``[1682, D_i]``, |Ω| = 100,000).
      user_columns: name of each user covariate column, ``[D_u]``.
      item_columns: name of each item covariate column, ``[D_i]``.
      user_raw_ids: MovieLens user id of each row, ``[n_users]``.
      item_raw_ids: MovieLens movie id of each row, ``[n_items]``.
      timestamps: unix time of each rating, aligned with ``data.ratings``, ``[|Ω|]``.
    """

    data: RatingData
    user_columns: tuple[str, ...]
    item_columns: tuple[str, ...]
    user_raw_ids: np.ndarray
    item_raw_ids: np.ndarray
    timestamps: np.ndarray


def _need(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: file not found; pass the folder that holds MovieLens-100K's u.data, "
            "u.user and u.item (e.g. ../shared/datasets/ml-100k)"
        )
    return path


def _lines(path: Path, encoding: str):
    with open(path, encoding=encoding, newline="") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.endswith("\n") and line.strip():
                # MovieLens ends every line, the last included, with a line break.
                raise _bad(path, lineno, "the last line has no line break, so the file was cut "
                           "mid-line (an interrupted download or copy)",
                           "extract or download the file again")
            line = line.rstrip("\r\n")
            if line.strip():
                yield lineno, line


def _bad(path: Path, lineno: int, problem: str, fix: str) -> ValueError:
    return ValueError(f"{path}, line {lineno}: {problem}; {fix}")


def _int(path: Path, lineno: int, text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _bad(path, lineno, f"{what} {text!r} is not an integer",
                   "the file may be truncated or not MovieLens-100K") from None


def _read_users(path: Path):
    raw_ids, rows = [], []
    cols = (
        ["age"]
        + [f"age:{label}" for label, _ in AGE_BUCKETS]
        + ["gender:F", "gender:M"]
        + [f"occupation:{o}" for o in OCCUPATIONS]
        + [f"zip:{d}" for d in range(10)]
        + ["zip:non-us"]
    )
    n_bucket = len(AGE_BUCKETS)
    for lineno, line in _lines(path, "latin-1"):
        fields = line.split("|")
        if len(fields) != 5:
            raise _bad(path, lineno, f"expected 5 '|'-separated fields (user id | age | gender | "
                       f"occupation | zip code), got {len(fields)}",
                       "check that this is u.user from MovieLens-100K")
        uid = _int(path, lineno, fields[0], "user id")
        age = _int(path, lineno, fields[1], "age")
        if not 0 < age < 120:
            raise _bad(path, lineno, f"age {age} is outside 1..119", "fix the age")
        gender, occupation, zipcode = fields[2], fields[3], fields[4].strip()
        if gender not in ("F", "M"):
            raise _bad(path, lineno, f"gender {gender!r} is neither 'F' nor 'M'", "fix the gender")
        if occupation not in OCCUPATIONS:
            raise _bad(path, lineno, f"occupation {occupation!r} is not one of u.occupation's "
                       f"{len(OCCUPATIONS)}", f"use one of {', '.join(OCCUPATIONS)}")
        row = np.zeros(len(cols), np.float32)
        row[0] = age / 100.0
        bucket = max(k for k, (_, lo) in enumerate(AGE_BUCKETS) if age >= lo)
        row[1 + bucket] = 1.0
        base = 1 + n_bucket
        row[base + (0 if gender == "F" else 1)] = 1.0
        base += 2
        row[base + OCCUPATIONS.index(occupation)] = 1.0
        base += len(OCCUPATIONS)
        if re.fullmatch(r"\d{5}", zipcode):
            row[base + int(zipcode[0])] = 1.0
        else:
            row[base + 10] = 1.0
        raw_ids.append(uid)
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no users; the file is empty")
    return np.asarray(raw_ids, np.int64), np.stack(rows), tuple(cols)


def _title_tokens(title: str) -> list[str]:
    title = re.sub(r"\(\d{4}\)\s*$", "", title).lower()
    return [w for w in re.findall(r"[a-z][a-z']+", title) if w not in _STOP_WORDS]


def _read_items(path: Path, title_words: int):
    raw_ids, titles, genres, years = [], [], [], []
    for lineno, line in _lines(path, "latin-1"):
        fields = line.split("|")
        if len(fields) != 5 + len(GENRES):
            raise _bad(path, lineno, f"expected {5 + len(GENRES)} '|'-separated fields (movie id "
                       f"| title | release date | video release date | IMDb URL | 19 genre flags), "
                       f"got {len(fields)}", "check that this is u.item from MovieLens-100K")
        raw_ids.append(_int(path, lineno, fields[0], "movie id"))
        titles.append(fields[1])
        flags = fields[5:]
        if any(f not in ("0", "1") for f in flags):
            k = next(k for k, f in enumerate(flags) if f not in ("0", "1"))
            raise _bad(path, lineno, f"genre flag {GENRES[k]!r} is {flags[k]!r}, not 0 or 1",
                       "fix the flag")
        genres.append([float(f) for f in flags])
        date = fields[2].strip()
        if not date:
            years.append(None)
        else:
            m = re.fullmatch(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})", date)
            if m is None or m.group(2) not in _MONTHS:
                raise _bad(path, lineno, f"release date {date!r} is not dd-Mon-yyyy",
                           "fix the date or leave the field empty")
            years.append(int(m.group(3)))
    if not raw_ids:
        raise ValueError(f"{path}: no items; the file is empty")
    known = [y for y in years if y is not None]
    fill = float(np.median(known)) if known else 1990.0
    year = np.array([fill if y is None else y for y in years], np.float32)
    missing = np.array([y is None for y in years], np.float32)
    decade = np.zeros((len(years), len(_DECADES)), np.float32)
    for k, y in enumerate(years):
        if y is not None:
            decade[k, min(max((y - 1920) // 10, 0), len(_DECADES) - 1)] = 1.0
    parts = [
        np.asarray(genres, np.float32),
        ((year - 1900.0) / 100.0)[:, None],
        missing[:, None],
        decade,
    ]
    cols = (
        [f"genre:{g}" for g in GENRES]
        + ["year", "year:missing"]
        + [f"decade:{d}s" for d in _DECADES]
    )
    if title_words:
        tokens = [_title_tokens(t) for t in titles]
        counts = Counter(w for ws in tokens for w in set(ws))
        # Ties broken alphabetically so the columns do not depend on file order.
        vocab = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][
            :title_words
        ]
        index = {w: k for k, w in enumerate(vocab)}
        bag = np.zeros((len(titles), len(vocab)), np.float32)
        for r, ws in enumerate(tokens):
            for w in ws:
                if w in index:
                    bag[r, index[w]] = 1.0
        parts.append(bag)
        cols += [f"title:{w}" for w in vocab]
    return np.asarray(raw_ids, np.int64), np.concatenate(parts, axis=1), tuple(cols)


def _index(raw_ids: np.ndarray, path: Path) -> dict[int, int]:
    index: dict[int, int] = {}
    for row, rid in enumerate(raw_ids.tolist()):
        if rid in index:
            raise ValueError(f"{path}, line {row + 1}: id {rid} occurs twice (first on line "
                             f"{index[rid] + 1}); every id must have one row")
        index[rid] = row
    return index


def _rating(path: Path, lineno: int, text: str) -> int:
    """MovieLens-100K's stars: a whole number from 1 to 5."""
    try:
        stars = int(text)
    except ValueError:
        stars = None
    if stars is None or not 1 <= stars <= 5:
        raise _bad(path, lineno, f"rating {text!r} is not one of MovieLens-100K's whole stars "
                   "1 to 5", "fix the rating")
    return stars


def _read_ratings(path: Path, users: dict[int, int], items: dict[int, int]):
    uids, iids, ratings, stamps = [], [], [], []
    first_line: dict[tuple[int, int], int] = {}
    for lineno, line in _lines(path, "latin-1"):
        fields = line.split("\t")
        if len(fields) != 4:
            raise _bad(path, lineno, f"expected 4 tab-separated fields (user id, item id, rating, "
                       f"timestamp), got {len(fields)}",
                       "check that this is u.data from MovieLens-100K")
        u = _int(path, lineno, fields[0], "user id")
        i = _int(path, lineno, fields[1], "item id")
        r = _rating(path, lineno, fields[2])
        if u not in users:
            raise _bad(path, lineno, f"user id {u} has no row in u.user",
                       "add the user to u.user or drop the rating")
        if i not in items:
            raise _bad(path, lineno, f"item id {i} has no row in u.item",
                       "add the movie to u.item or drop the rating")
        if (u, i) in first_line:
            raise _bad(path, lineno, f"user {u} rated item {i} already on line "
                       f"{first_line[u, i]}", "keep one rating per (user, item) pair; "
                       "MovieLens-100K has no repeats, so the file was altered")
        first_line[u, i] = lineno
        uids.append(users[u])
        iids.append(items[i])
        ratings.append(r)
        stamps.append(_int(path, lineno, fields[3], "timestamp"))
    if not ratings:
        raise ValueError(f"{path}: no ratings; the file is empty")
    return (np.asarray(uids, np.int32), np.asarray(iids, np.int32),
            np.asarray(ratings, np.float32), np.asarray(stamps, np.int64))


def read_movielens(
    folder: str | Path,
    *,
    user_ids: bool = False,
    item_ids: bool = False,
    title_words: int = 0,
) -> MovieLens:
    """Read MovieLens-100K with covariates (and optionally one-hot ids) and column names.

    Args:
      folder: the folder holding ``u.data``, ``u.user``, ``u.item``.
      user_ids, item_ids: removed (they appended one-hot id blocks); ``True``
        raises ``ValueError`` saying what replaced them: ``ModelConfig(user_ids=True,
        item_ids=True)``, id embedding tables in the model.
      title_words: add 0/1 columns for this many most frequent title words (0: none).

    Returns:
      A :class:`MovieLens`; ``.data`` is the :class:`RatingData`. Rows follow
      the order of ``u.user`` / ``u.item``, ratings the order of ``u.data``.

    Raises:
      FileNotFoundError: a file is missing (the message names it).
      ValueError: a malformed line (the message names the file and line): a
        wrong number of fields, a file cut mid-line, a rating that is not a
        whole number from 1 to 5, a (user, item) pair rated twice (named by
        MovieLens's ids and both lines), an unknown user or movie.
    """
    if title_words < 0:
        raise ValueError(f"title_words={title_words} must be >= 0")
    if user_ids or item_ids:
        raise ValueError(
            "read_movielens(user_ids=True / item_ids=True) appended n × n one-hot id blocks, "
            "which was removed: the model holds ids as embedding tables now. Read the "
            "covariates alone and fit with ModelConfig(user_ids=True, item_ids=True) (or the "
            "preset ttm_jax.presets.movielens_100k())")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: no such folder; pass the folder that holds u.data, u.user and u.item"
        )
    user_path, item_path, data_path = (_need(folder, n) for n in ("u.user", "u.item", "u.data"))
    u_raw, u_x, u_cols = _read_users(user_path)
    i_raw, i_x, i_cols = _read_items(item_path, title_words)
    uids, iids, ratings, stamps = _read_ratings(
        data_path, _index(u_raw, user_path), _index(i_raw, item_path)
    )
    try:
        data = RatingData(u_x, i_x, uids, iids, ratings)
    except ValueError as err:
        raise ValueError(f"{data_path}: {err}") from None
    return MovieLens(data, u_cols, i_cols, u_raw, i_raw, stamps)


def load_movielens(
    folder: str | Path,
    *,
    user_ids: bool = False,
    item_ids: bool = False,
    title_words: int = 0,
) -> RatingData:
    """MovieLens-100K as a :class:`RatingData`; see :func:`read_movielens` for the arguments.

    Example:
      >>> data = load_movielens("../shared/datasets/ml-100k")
      >>> data.user_features.shape, data.item_features.shape, data.n_ratings
      ((943, 42), (1682, 29), 100000)
    """
    return read_movielens(
        folder, user_ids=user_ids, item_ids=item_ids, title_words=title_words
    ).data
