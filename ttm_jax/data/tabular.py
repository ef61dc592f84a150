"""Reading ratings and covariate tables from CSV or Parquet, with row-level errors.

Ids are read as text in every file (``7`` in a CSV and ``7`` in a Parquet
integer column are the same id; ``7.0`` is not), so ratings and covariate
tables match on the exact spelling. ``NA``, ``None``, ``nan`` and ``null`` are
ids like any other (pandas would read them as missing); only an empty field
(or a Parquet null) is a missing id. Every error is a :class:`TabularError`
naming the file, the column and the first offending row (0-based data row; for
CSV also the line number, counting the header as line 1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ttm_jax.data.ratings import MAX_ABS_RATING

__all__ = [
    "TabularError",
    "RatingsTable",
    "CovariateTable",
    "read_table",
    "read_ratings",
    "read_covariates",
    "lookup_ids",
    "check_covered",
]

_CSV = (".csv", ".tsv", ".txt")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_PARQUET = (".parquet", ".pq")


class TabularError(ValueError):
    """A ratings or covariate file cannot be used; the message says where and why."""


def _where(path: Path, row: int) -> str:
    line = f" (line {row + 2})" if path.suffix.lower() in _CSV else ""
    return f"row {row}{line}"


def read_table(path: str | os.PathLike, id_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.tsv``, ``.txt``) or Parquet (``.parquet``, ``.pq``) file.

    ``id_columns`` are read as text; other columns as pandas infers them.
    """
    path = Path(path)
    if not path.is_file():
        raise TabularError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in _CSV:
            sep = "\t" if suffix == ".tsv" else ","
            head = pd.read_csv(path, sep=sep, nrows=0)
            dtypes = {c: str for c in id_columns if c in head.columns}
            # No NA spellings: "NA" and "None" are ids, and a covariate written
            # "NA" is reported as text rather than silently becoming NaN.
            frame = pd.read_csv(path, sep=sep, dtype=dtypes, keep_default_na=False)
        elif suffix in _PARQUET:
            frame = pd.read_parquet(path)
        else:
            raise TabularError(
                f"{path}: unknown file type {suffix!r}; use .csv, .tsv or .parquet"
            )
    except TabularError:
        raise
    except ImportError as err:
        raise TabularError(f"{path}: reading Parquet needs pyarrow ({err}); "
                           "pip install pyarrow") from None
    except Exception as err:
        raise TabularError(f"{path}: cannot be read as {suffix[1:]} ({err})") from None
    frame.columns = [str(c) for c in frame.columns]
    for col in id_columns:
        if col in frame.columns:
            frame[col] = _ids_as_text(path, frame[col], col)
    return frame


def _ids_as_text(path: Path, series: pd.Series, column: str) -> pd.Series:
    missing = series.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise TabularError(f"{path}: column {column!r}, {_where(path, row)}: the id is empty")
    text = series.astype(str).str.strip()
    empty = (text == "").to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise TabularError(f"{path}: column {column!r}, {_where(path, row)}: the id is empty")
    return text


def _require(path: Path, frame: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TabularError(
            f"{path}: missing column {missing[0]!r} ({what}); the file has columns "
            f"{list(frame.columns)}. Rename the column or pass its name with the matching "
            "--*-col option"
        )
    if len(frame) == 0:
        raise TabularError(f"{path}: the file has no data rows")


def _numeric(path: Path, frame: pd.DataFrame, column: str, *, limit: float, fix: str
             ) -> np.ndarray:
    """``column`` as float64; a value that is not a number, or whose size exceeds ``limit``,
    is a :class:`TabularError` naming the row (``fix`` says what to do about a large one)."""
    raw = frame[column]
    try:
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):  # nested values (lists, dicts) in a Parquet column
        values = np.array([_as_float(v) for v in raw], np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        shown = raw.iloc[row]
        if not isinstance(shown, list | dict | np.ndarray) and (
                pd.isna(shown) or not str(shown).strip()):
            what = "the value is empty"
        else:
            why = "is not finite" if np.isinf(values[row]) else "is not a number"
            what = f"value '{shown}' {why}"
        raise TabularError(f"{path}: column {column!r}, {_where(path, row)}: {what}")
    huge = np.abs(values) > limit
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        raise TabularError(f"{path}: column {column!r}, {_where(path, row)}: value "
                           f"{values[row]:g} is larger than {limit:.3g} in size; {fix}")
    return values


def _as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


class RatingsTable(NamedTuple):
    """Ratings read from a file: ``users [|Ω|]``, ``items [|Ω|]`` (text ids), ``ratings [|Ω|]``."""

    path: Path
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    user_col: str
    item_col: str

    def where(self, row: int) -> str:
        """``"<file>, row <row> (line <n>)"``: where the ``row``-th rating is in the file."""
        return f"{self.path}, {_where(self.path, row)}"


def read_ratings(
    path: str | os.PathLike,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
) -> RatingsTable:
    """Read and validate a ratings file with user, item and rating columns.

    Raises:
      TabularError: missing columns, empty ids, a non-numeric, empty or
        infinite rating, one larger than :data:`~ttm_jax.data.ratings.MAX_ABS_RATING`
        in size, or a (user, item) pair that occurs twice.
    """
    path = Path(path)
    frame = read_table(path, (user_col, item_col))
    _require(path, frame, (user_col, item_col, rating_col), "user, item and rating columns")
    ratings = _numeric(path, frame, rating_col, limit=MAX_ABS_RATING,
                       fix="such a rating is a data error (or rescale the ratings)"
                       ).astype(np.float32)
    users = frame[user_col].to_numpy(dtype=str)
    items = frame[item_col].to_numpy(dtype=str)
    dup = pd.DataFrame({"u": users, "i": items}).duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((users == users[row]) & (items == items[row]))[0])
        raise TabularError(
            f"{path}: columns {user_col!r}, {item_col!r}, {_where(path, row)}: the pair "
            f"({users[row]}, {items[row]}) already occurs at {_where(path, first)}; keep one "
            "rating per pair (e.g. the latest)"
        )
    return RatingsTable(path, users, items, ratings, user_col, item_col)


class CovariateTable(NamedTuple):
    """Covariates keyed by id: ``ids [n]`` (text), ``features [n, D]`` float32, ``columns [D]``."""

    path: Path
    ids: np.ndarray
    features: np.ndarray
    columns: tuple[str, ...]
    id_col: str


def read_covariates(
    path: str | os.PathLike, *, id_col: str, columns: tuple[str, ...] | None = None
) -> CovariateTable:
    """Read a covariate table: one row per id, numeric covariate columns.

    Args:
      path: the file.
      id_col: the id column (the same name as in the ratings file).
      columns: the covariate columns to use, in this order (a saved model's
        schema); default: every column but ``id_col``, in file order.

    Raises:
      TabularError: a missing column, an empty or repeated id, or a covariate
        that is not a finite number or does not fit in float32.
    """
    path = Path(path)
    frame = read_table(path, (id_col,))
    _require(path, frame, (id_col,), "the id column")
    if columns is None:
        columns = tuple(c for c in frame.columns if c != id_col)
        if not columns:
            raise TabularError(f"{path}: no covariate columns besides the id column {id_col!r}")
    else:
        _require(path, frame, columns, "a covariate column the model was trained with")
    ids = frame[id_col].to_numpy(dtype=str)
    dup = pd.Series(ids).duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(ids == ids[row])[0])
        raise TabularError(
            f"{path}: column {id_col!r}, {_where(path, row)}: id {str(ids[row])!r} already occurs at "
            f"{_where(path, first)}; give each id one row"
        )
    features = np.empty((len(frame), len(columns)), np.float32)
    for j, col in enumerate(columns):
        features[:, j] = _numeric(path, frame, col, limit=_FLOAT32_MAX,
                                  fix="it does not fit in float32; rescale the column")
    return CovariateTable(path, ids, features, tuple(columns), id_col)


def lookup_ids(ids: np.ndarray, known: np.ndarray, *, path: Path, column: str,
               known_from: str) -> np.ndarray:
    """Rows of ``ids`` in ``known`` (both text ids); an unknown id raises :class:`TabularError`."""
    rows = pd.Index(known).get_indexer(ids)
    bad = rows < 0
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise TabularError(
            f"{path}: column {column!r}, {_where(path, row)}: id {str(ids[row])!r} is unknown: it has "
            f"no row in {known_from}"
        )
    return rows.astype(np.int64)


def check_covered(table: CovariateTable, used: np.ndarray, *, used_in: Path) -> None:
    """Every id of ``table`` must occur in ``used`` (ids of the ratings file ``used_in``).

    Raises:
      TabularError: naming the covariate file, its id column and the first id
        that no rating refers to.
    """
    orphan = ~np.isin(table.ids, used)
    if orphan.any():
        row = int(np.flatnonzero(orphan)[0])
        raise TabularError(
            f"{table.path}: column {table.id_col!r}, {_where(table.path, row)}: id "
            f"{str(table.ids[row])!r} is unknown: no rating in {used_in} refers to it (a typo?). "
            "To keep covariates of unrated users or items, pass --allow-unrated"
        )
