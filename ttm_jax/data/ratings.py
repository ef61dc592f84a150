"""Rating data: covariate tables and the observed set Ω, validated on construction.

A :class:`RatingData` holds the user covariates ``x_u`` (one row per user), the
item covariates ``x_i`` (one row per item) and the observed set Ω as three
aligned vectors ``user_ids``, ``item_ids``, ``ratings``. Splits share the
covariate tables and subset Ω, so an id means the same entity in every split.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from ttm_jax import checks

__all__ = ["MAX_ABS_RATING", "RatingData", "Split", "cold_start_split", "outlying_rating",
           "random_split"]

#: The largest rating size accepted. A squared error beyond float32's range
#: (|r| near 1.8e19) makes training diverge at its first step, so a larger
#: rating is a data error (or the ratings need rescaling), and is refused.
MAX_ABS_RATING = 1e18
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _array(name: str, value) -> np.ndarray:
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as err:  # ragged nested lists, say
        raise ValueError(f"{name}: cannot be read as an array ({err}); pass a numpy array "
                         "of one shape") from None


def _as_real_matrix(name: str, value) -> np.ndarray:
    arr = _array(name, value)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == np.bool_
    ):
        raise ValueError(
            f"{name}: dtype {arr.dtype} is not a real number type; pass a numeric array "
            "(one-hot encode categorical columns first)"
        )
    if arr.ndim != 2:
        raise ValueError(
            f"{name}: expected a 2-D array [n, D] (one row per entity), got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: shape {arr.shape} is empty; need at least one row and column")
    _check_finite(name, arr, _FLOAT32_MAX, "impute or drop them before building RatingData")
    # Arrays we already own (read-only float32) are shared, not copied, so splits
    # keep one covariate table; anything else is copied before it is frozen.
    return arr.astype(np.float32, copy=arr.flags.writeable)


def _check_finite(name: str, arr: np.ndarray, limit: float, fix: str) -> None:
    """Refuse NaN, inf and values beyond ``limit`` in size, naming the first (row, column)."""
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = ~np.isfinite(arr)
        raise ValueError(
            f"{name}: {int(bad.sum())} non-finite value(s) (NaN or inf), first at "
            f"{_position(np.argwhere(bad)[0])}; {fix}"
        )
    if arr.size == 0 or arr.dtype.kind == "b":
        return
    # Compared as Python floats: NumPy would cast ``limit`` to a narrow dtype (float16).
    if float(arr.max()) <= limit and float(arr.min()) >= -limit:
        return
    wide = arr.astype(np.float64)
    where = np.argwhere((wide > limit) | (wide < -limit))[0]
    if limit == _FLOAT32_MAX:
        why = "does not fit in float32; rescale the column"
    else:
        why = (f"is larger than {limit:.0e} in size, where a squared error overflows float32 "
               "and training can only diverge; it is likely a data error (or rescale the "
               "ratings)")
    raise ValueError(f"{name}: value {arr[tuple(where)]:g} at {_position(where)} {why}")


def _position(where) -> str:
    return f"row {where[0]}, column {where[1]}" if len(where) == 2 else f"position {where[0]}"


def _as_ids(name: str, value, n: int, table: str) -> np.ndarray:
    arr = _array(name, value)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array [|Ω|], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{name}: dtype {arr.dtype} is not an integer type; ids are row indices into "
            f"{table} (0 .. {n - 1}); convert them with .astype(int)"
        )
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        pos = int(np.flatnonzero((arr < 0) | (arr >= n))[0])
        raise ValueError(
            f"{name}: id {int(arr[pos])} at position {pos} is out of range; {table} has {n} "
            f"rows, so ids must lie in 0 .. {n - 1}"
        )
    return arr.astype(np.int32, copy=arr.flags.writeable)


@dataclasses.dataclass(frozen=True, eq=False)
class RatingData:
    """Covariates and the observed rating set Ω (SPEC §1, §5).

    Attributes:
      user_features: ``x_u`` for every user, ``[n_users, D_u]`` float32.
      item_features: ``x_i`` for every item, ``[n_items, D_i]`` float32.
      user_ids: user of each observed pair, ``[|Ω|]`` int32, rows of ``user_features``.
      item_ids: item of each observed pair, ``[|Ω|]`` int32, rows of ``item_features``.
      ratings: ``r_ui`` of each observed pair, ``[|Ω|]`` float32.

    Construction validates every field and raises ``ValueError`` naming the
    field: shapes and dtypes, ids in range, finite ratings and covariates, no
    duplicate (user, item) pair, non-empty Ω.

    Example:
      >>> import numpy as np
      >>> data = RatingData(np.eye(3), np.eye(2), np.array([0, 2]), np.array([1, 0]),
      ...                   np.array([4.0, 3.5]))
      >>> data.n_ratings, data.n_users, data.n_items
      (2, 3, 2)
    """

    user_features: np.ndarray
    item_features: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    ratings: np.ndarray

    def __post_init__(self):
        uf = _as_real_matrix("user_features", self.user_features)
        itf = _as_real_matrix("item_features", self.item_features)
        uids = _as_ids("user_ids", self.user_ids, uf.shape[0], "user_features")
        iids = _as_ids("item_ids", self.item_ids, itf.shape[0], "item_features")
        r = _array("ratings", self.ratings)
        if r.ndim != 1:
            raise ValueError(f"ratings: expected a 1-D array [|Ω|], got shape {r.shape}")
        if r.dtype == object or not (
            np.issubdtype(r.dtype, np.floating) or np.issubdtype(r.dtype, np.integer)
        ):
            raise ValueError(f"ratings: dtype {r.dtype} is not a real number type")
        if r.size == 0:
            raise ValueError("ratings: Ω is empty; RatingData needs at least one observed rating")
        if not (uids.size == iids.size == r.size):
            raise ValueError(
                f"user_ids, item_ids and ratings must have the same length |Ω|; got "
                f"{uids.size}, {iids.size} and {r.size}"
            )
        if r.dtype.kind == "f" and not np.isfinite(r).all():
            pos = int(np.flatnonzero(~np.isfinite(r))[0])
            raise ValueError(
                f"ratings: non-finite rating {r[pos]} at position {pos}; drop or fix it"
            )
        _check_finite("ratings", r, MAX_ABS_RATING, "drop or fix it")
        r = r.astype(np.float32, copy=r.flags.writeable)
        keys = uids.astype(np.int64) * itf.shape[0] + iids
        uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
        if (counts > 1).any():
            k = int(np.flatnonzero(counts > 1)[0])
            pos = int(first[k])
            raise ValueError(
                f"user_ids/item_ids: the pair (user {uids[pos]}, item {iids[pos]}) occurs "
                f"{counts[k]} times (first at position {pos}); Ω is a set of pairs, so "
                "aggregate duplicates (e.g. keep the latest rating) first"
            )
        for name, value in (
            ("user_features", uf),
            ("item_features", itf),
            ("user_ids", uids),
            ("item_ids", iids),
            ("ratings", r),
        ):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def n_users(self) -> int:
        return int(self.user_features.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_features.shape[0])

    @property
    def n_ratings(self) -> int:
        """``|Ω|``."""
        return int(self.ratings.shape[0])

    def subset(self, index) -> RatingData:
        """The same covariate tables with Ω restricted to ``index`` (mask or positions)."""
        idx = np.asarray(index)
        return RatingData(
            self.user_features,
            self.item_features,
            self.user_ids[idx],
            self.item_ids[idx],
            self.ratings[idx],
        )

    def __repr__(self) -> str:
        return (
            f"RatingData(n_users={self.n_users}, D_u={self.user_features.shape[1]}, "
            f"n_items={self.n_items}, D_i={self.item_features.shape[1]}, |Ω|={self.n_ratings})"
        )


def outlying_rating(ratings) -> int | None:
    """The position of a rating far outside all the others, or ``None``.

    "Far" is more than 1000 typical spreads from the median, the spread being
    the median absolute deviation, but at least ``|median|`` and 1: a rating
    of 1e10 among 1..5 is one, prices from 1 to 10^6 have none. When
    training diverges, such a rating (a misplaced value) is the likely cause,
    and a smaller step size would not help.
    """
    r = np.asarray(ratings, np.float64).reshape(-1)
    if r.size == 0 or not np.isfinite(r).all():
        return None
    median = float(np.median(r))
    dev = np.abs(r - median)
    spread = max(float(np.median(dev)), abs(median), 1.0)
    k = int(np.argmax(dev))
    return k if dev[k] > 1e3 * spread else None


class Split(NamedTuple):
    """Train/validation/test parts of one :class:`RatingData` (shared covariate tables)."""

    train: RatingData
    validation: RatingData | None
    test: RatingData


def random_split(
    data: RatingData, test_fraction: float, validation_fraction: float = 0.0, *, seed: int
) -> Split:
    """Split Ω uniformly at random into train / validation / test.

    ``validation_fraction`` is a fraction of the *training* part (the paper
    holds out 20% of the training set for early stopping), so
    ``random_split(d, 0.3, 0.2, seed=0)`` gives 56% / 14% / 30% of Ω.
    """
    if not isinstance(data, RatingData):
        raise TypeError(f"data must be a RatingData, got {type(data).__name__}")
    test_fraction = checks.fraction("test_fraction", test_fraction, allow_zero=False)
    validation_fraction = checks.fraction("validation_fraction", validation_fraction)
    seed = checks.integer("seed", seed, low=0)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(data.n_ratings)
    n_test = int(round(test_fraction * data.n_ratings))
    n_val = int(round(validation_fraction * (data.n_ratings - n_test)))
    if n_test == 0 or n_test + n_val >= data.n_ratings:
        raise ValueError(
            f"test_fraction={test_fraction}, validation_fraction={validation_fraction} leave an "
            f"empty part of |Ω|={data.n_ratings}; use fractions that keep every part non-empty"
        )
    test = data.subset(np.sort(perm[:n_test]))
    val = data.subset(np.sort(perm[n_test : n_test + n_val])) if n_val else None
    train = data.subset(np.sort(perm[n_test + n_val :]))
    return Split(train, val, test)


def cold_start_split(
    data: RatingData,
    *,
    user_fraction: float = 0.0,
    item_fraction: float = 0.0,
    test_fraction: float = 0.0,
    validation_fraction: float = 0.0,
    seed: int,
) -> Split:
    """Hold out whole users and/or items, so the test set has cold pairs.

    A fraction ``user_fraction`` of users and ``item_fraction`` of items are
    drawn at random; every rating that involves one of them goes to test (these
    are the cold pairs: the model never saw a rating of that user or item).
    Of the remaining (warm) ratings, ``test_fraction`` also go to test (warm
    test pairs) and ``validation_fraction`` of what is left to validation.
    Validation is drawn from warm pairs only, as the paper's early stopping does.
    """
    for name, v in (
        ("user_fraction", user_fraction),
        ("item_fraction", item_fraction),
        ("test_fraction", test_fraction),
        ("validation_fraction", validation_fraction),
    ):
        checks.fraction(name, v)
    if user_fraction == 0 and item_fraction == 0:
        raise ValueError(
            "cold_start_split needs user_fraction > 0 or item_fraction > 0; "
            "for a plain split of Ω use random_split"
        )
    rng = np.random.default_rng(seed)
    cold_users = rng.permutation(data.n_users)[: int(round(user_fraction * data.n_users))]
    cold_items = rng.permutation(data.n_items)[: int(round(item_fraction * data.n_items))]
    cold = np.isin(data.user_ids, cold_users) | np.isin(data.item_ids, cold_items)
    warm_pos = np.flatnonzero(~cold)
    warm_pos = warm_pos[rng.permutation(warm_pos.size)]
    n_test = int(round(test_fraction * warm_pos.size))
    n_val = int(round(validation_fraction * (warm_pos.size - n_test)))
    test_pos = np.concatenate([np.flatnonzero(cold), warm_pos[:n_test]])
    val_pos = warm_pos[n_test : n_test + n_val]
    train_pos = warm_pos[n_test + n_val :]
    if train_pos.size == 0 or test_pos.size == 0:
        raise ValueError(
            "the cold-start split left training or test empty; lower user_fraction/item_fraction"
        )
    return Split(
        data.subset(np.sort(train_pos)),
        data.subset(np.sort(val_pos)) if val_pos.size else None,
        data.subset(np.sort(test_pos)),
    )
