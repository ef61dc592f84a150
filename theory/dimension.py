"""Box counting: estimate the upper Minkowski dimension of a point sample (SPEC §4).

The paper's intrinsic dimension of a covariate support ``S`` is

    dim(S) = inf{ d* ≥ 0 : limsup_{ε→0} N(ε, S, ‖·‖_∞) ε^{d*} = 0 },

``N(ε, S, ‖·‖_∞)`` the least number of sup-norm ε-balls covering ``S``. From a sample
it is the slope of ``log N(ε)`` against ``log(1/ε)`` over the scales at which the
sample resolves the set. :func:`box_counting_dimension` lays grids of cubes of
side ``ε = R/k`` (``R`` the sample's sup-norm diameter, ``k = 1, 2, 3, 4, 5, 6, 7,
8, 10, 11, 13, 16, …`` boxes per side, a geometric sequence of ratio ``2^{1/4}``
rounded to integers), counts the boxes that hold sample points, picks the scales
between two saturations automatically and fits the slope by least squares.

Two box statistics (the Rényi order ``q``, argument ``order``):

* ``order=0``: ``N_0(ε)``, the number of occupied boxes: the literal
  box-counting (Minkowski) dimension. The count is biased low once the boxes
  outnumber the points, and, for a set lying obliquely to the grid (a
  rotated square in ``R^10``), well before that: many boxes meet the set in a
  thin sliver that holds almost no probability, so a sample misses them.
  The fit stops where the mean occupancy ``n / N_0`` falls to ``1 / max_fill``.
* ``order=2``: ``N_2(ε) = 1 / Σ_b p_b²``, the effective number of boxes, with
  ``Σ p_b²`` estimated without bias by the fraction of point pairs that share a
  box. Its slope is the correlation dimension ``D_2``. Slivers weigh by their
  mass, so it is unaffected by them, and it stays unbiased beyond one point
  per box (it needs pairs, ``n²``, not points): the fit stops where fewer than
  ``min_pairs`` pairs share a box. ``D_2 ≤ D_0`` for every measure, with
  equality for the near-uniform measures of the known test sets and SPEC §6;
  for a strongly non-uniform sample it reports the dimension where the mass
  sits, not the whole support.

Both are flagged ``resolved=False`` (with a :class:`UnresolvedDimensionWarning`)
when the usable range of scales is too short, e.g. 20 intrinsic dimensions
from ``10^5`` points: a grid of two boxes per side already has ``2^20 > 10^5``
boxes.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = [
    "DimensionEstimate",
    "UnresolvedDimensionWarning",
    "box_counting_dimension",
    "box_counts",
]

# Grids stop at 2^24 boxes per side: float32 data hold no structure finer than
# 2^-24 of their range, so finer scales only see the sample as a finite set.
_MAX_BOXES_PER_SIDE = 2**24


class UnresolvedDimensionWarning(UserWarning):
    """The sample does not resolve the set over a usable range of scales."""


class DimensionEstimate(NamedTuple):
    """An intrinsic-dimension estimate with the scales it rests on.

    Attributes:
      dimension: the estimate (NaN when no two scales could be used).
      stderr: standard error of the fitted slope (NaN with fewer than 3 scales).
        For box counting it is the regression's: it measures how straight the
        log-log curve is over the fitted scales, not the sampling variability.
      resolved: whether the sample resolves the set over enough scales for the
        estimate to mean what it says; when False, see ``reason``. Box
        counting's ``dimension`` is then a lower bound at best; the
        nearest-neighbour estimators return NaN when the sample is discretised
        (ties between neighbour distances), since ties bias them upwards.
      method: the estimator, e.g. ``"box counting (q=0)"``.
      n_points: number of sample points used.
      scales: ``[m]`` the scales in the fit, in the data's units (box side ε
        for box counting, neighbour distance for nearest-neighbour methods).
      counts: ``[m]`` the box count ``N(ε)`` at those scales (the neighbour rank
        ``k`` for nearest-neighbour methods).
      curve_scales: every scale examined, coarse to fine.
      curve_counts: the count at each of them (``inf`` where no pair shares a box).
      reason: why the estimate is unresolved; empty when resolved.
    """

    dimension: float
    stderr: float
    resolved: bool
    method: str
    n_points: int
    scales: np.ndarray
    counts: np.ndarray
    curve_scales: np.ndarray
    curve_counts: np.ndarray
    reason: str


class BoxCounts(NamedTuple):
    """Box statistics of a sample over a sequence of grids (see :func:`box_counts`).

    Attributes:
      scales: ``[m]`` box sides ε in data units, coarse to fine (``inf`` where
        ε itself exceeds float64, for points spread beyond ±1e308).
      boxes_per_side: ``[m]`` ``k = R / ε``.
      occupied: ``[m]`` ``N_0(ε)``, the number of boxes holding points.
      shared_pairs: ``[m]`` the number of point pairs that share a box.
      n_points: ``n``.
    """

    scales: np.ndarray
    boxes_per_side: np.ndarray
    occupied: np.ndarray
    shared_pairs: np.ndarray
    n_points: int

    def effective(self) -> np.ndarray:
        """``N_2(ε) = (n(n−1)/2) / shared_pairs``: the collision count (``inf`` without pairs)."""
        total = self.n_points * (self.n_points - 1) / 2.0
        with np.errstate(divide="ignore"):
            return np.where(self.shared_pairs > 0, total / np.maximum(self.shared_pairs, 1), np.inf)


def box_counting_dimension(
    points: np.ndarray,
    *,
    order: int = 2,
    ratio: float = 2.0**0.25,
    min_count: float = 8.0,
    max_fill: float = 0.1,
    min_pairs: int = 1000,
    min_scales: int = 5,
    min_octaves: float = 1.0,
    max_octaves: float | None = 3.0,
    warn: bool = True,
) -> DimensionEstimate:
    """Estimate the box-counting dimension of a point sample in the sup-norm.

    Scales run from one box (``ε = R``) down by ``ratio`` until the sample
    saturates. The fit uses every scale whose count is at least ``min_count``
    (coarser grids are dominated by where the set sits in the grid) and, for
    ``order=0``, at most ``max_fill · n`` (finer grids have too few points per box
    to find every occupied one), for ``order=2``, at least ``min_pairs`` pairs
    sharing a box (finer grids make ``Σ p_b²`` noisy). The estimate is the
    least-squares slope of ``log N(ε)`` on ``log(1/ε)`` over those scales.

    A finite set of distinct points (with many repeats in the sample) keeps a
    constant count once every point has its own box, down to the finest grid
    ``ε = R / 2^24``, and the estimate goes to 0 as the definition asks.

    Args:
      points: ``[n, D]`` sample, any real units (the estimate is invariant to
        translation, scaling and permutation of coordinates).
      order: ``0`` for occupied-box counts ``N_0`` (the Minkowski definition),
        ``2`` (default) for the collision count ``N_2`` (see the module notes:
        from 20,000 points it stays within ±0.1 on flats at an angle to the
        grid, where ``N_0`` reads a square in ``R^50`` as 2.5 to 3.7).
      ratio: ``> 1``, the step between successive grid sizes.
      min_count: coarse limit on the count.
      max_fill: fine limit for ``order=0``, as a fraction of ``n`` (0.1: at
        least 10 points per occupied box on average).
      min_pairs: fine limit for ``order=2``.
      min_scales: fewest fitted scales for ``resolved=True``.
      min_octaves: shortest fitted range, ``log2(ε_max / ε_min)``, for ``resolved=True``.
      max_octaves: fit only the finest ``max_octaves`` octaves of the usable
        range (``None``: all of it). The definition is a limit ``ε → 0``, and
        coarse grids carry boundary and lattice effects (with ``order=2``, a
        3-cube at an angle in ``R^10`` reads 2.86 to 2.94 over its whole range,
        2.91 to 2.95 over the finest three octaves; ``docs/theory.md``).
      warn: emit :class:`UnresolvedDimensionWarning` when unresolved.

    Returns:
      A :class:`DimensionEstimate`. When ``resolved`` is False, ``dimension`` is
      the slope over the best scales available (possibly just from one box to
      the first saturated grid), a lower bound at best.

    Raises:
      ValueError: if ``points`` is not ``[n, D]``, holds NaN or infinite values,
        has fewer points than the limits can use, or is a single point.

    Example::

      >>> from theory.known_sets import sierpinski_triangle
      >>> est = box_counting_dimension(sierpinski_triangle(20_000, seed=0))
      >>> est.resolved, abs(est.dimension - 1.585) < 0.15
      (True, True)
    """
    if order not in (0, 2):
        raise ValueError(f"order={order!r} must be 0 (occupied boxes) or 2 (collision count)")
    min_count = float(min_count)
    if not math.isfinite(min_count) or min_count < 1:
        raise ValueError(f"min_count={min_count} must be a finite count >= 1")
    if not 0.0 < max_fill <= 1.0:
        raise ValueError(f"max_fill={max_fill} must lie in (0, 1] (a fraction of the points)")
    if int(min_pairs) != min_pairs or min_pairs < 1:
        raise ValueError(f"min_pairs={min_pairs} must be an integer >= 1")
    if int(min_scales) != min_scales or min_scales < 2:
        raise ValueError(f"min_scales={min_scales} must be an integer >= 2 (a slope needs two)")
    if not math.isfinite(min_octaves) or min_octaves < 0:
        raise ValueError(f"min_octaves={min_octaves} must be a finite number >= 0")
    n = _checked_points(points).shape[0]
    if order == 0:
        needed = math.ceil(min_count / max_fill)
    else:
        needed = math.ceil(math.sqrt(2.0 * min_count * min_pairs)) + 1
    if n < needed:
        raise ValueError(
            f"points has {n} rows; box counting with order={order}, min_count={min_count:g}"
            + (f", max_fill={max_fill:g}" if order == 0 else f", min_pairs={min_pairs}")
            + f" needs at least {needed}; pass more points or relax those limits"
        )

    if order == 0:
        def saturated(count: float, pairs: float) -> bool:
            return count > max_fill * n
        fine_limit = f"N(ε) ≤ {max_fill:g}·n = {max_fill * n:g}"
    else:
        def saturated(count: float, pairs: float) -> bool:
            return pairs < min_pairs
        fine_limit = f"at least {min_pairs} pairs sharing a box"
    grid = box_counts(points, ratio=ratio, stop=saturated, order=order)
    counts = grid.occupied.astype(np.float64) if order == 0 else grid.effective()
    if order == 0:
        fine_ok = counts <= max_fill * n
    else:
        fine_ok = grid.shared_pairs >= min_pairs
    fine_ok &= np.isfinite(counts)
    # A finite set with fewer than min_count points keeps a constant count below
    # min_count at every fine scale; its plateau is the resolved range.
    coarse_limit = min(min_count, float(np.max(counts[fine_ok]))) if fine_ok.any() else min_count
    usable = fine_ok & (counts >= coarse_limit) & (grid.boxes_per_side > 1)

    window = np.flatnonzero(usable)
    if max_octaves is not None and window.size:
        finest = grid.boxes_per_side[window[-1]]
        window = window[np.log2(finest / grid.boxes_per_side[window]) <= max_octaves + 1e-9]
    method = f"box counting (q={order})"
    reason = ""
    if window.size >= 2:
        octaves = math.log2(grid.boxes_per_side[window[-1]] / grid.boxes_per_side[window[0]])
        if window.size < min_scales or octaves < min_octaves:
            reason = (
                f"only {window.size} scale(s) spanning {octaves:.2f} octave(s) lie between the "
                f"coarse limit (count ≥ {coarse_limit:g}) and the fine limit ({fine_limit}); "
                f"resolving needs {min_scales} scales over {min_octaves:g} octave(s): the sample "
                "is too small for this dimension, read the estimate as a lower bound"
            )
    else:
        reason = (
            f"{'no grid' if window.size == 0 else 'only one grid'} finer than one box has a "
            f"count ≥ {min_count:g} and {fine_limit}: the sample cannot resolve the set "
            "(ε^-d outgrows what n points can fill); the estimate is the slope across the "
            "first saturated grid, a lower bound at best"
        )
        # No usable range: fall back to every grid up to the first saturated one.
        # Their slope is what the sample can show, a lower bound at best.
        saturated_at = np.flatnonzero(~fine_ok)
        last = int(saturated_at[0]) if saturated_at.size else counts.size - 1
        window = np.flatnonzero(np.isfinite(counts[: last + 1]))
        window = window if window.size >= 2 else np.array([], dtype=np.int64)
    dimension, stderr = _slope(np.log(grid.boxes_per_side[window]), np.log(counts[window]))
    if not reason and not math.isfinite(dimension):
        reason = "the fitted scales give no finite slope"
    resolved = not reason
    if warn and not resolved:
        warnings.warn(f"{method}: {reason}", UnresolvedDimensionWarning, stacklevel=2)
    return DimensionEstimate(
        dimension=dimension,
        stderr=stderr,
        resolved=resolved,
        method=method,
        n_points=n,
        scales=grid.scales[window],
        counts=counts[window],
        curve_scales=grid.scales,
        curve_counts=counts,
        reason=reason,
    )


def box_counts(
    points: np.ndarray,
    *,
    ratio: float = 2.0**0.25,
    stop=None,
    order: int = 0,
) -> BoxCounts:
    """Occupied boxes and box-sharing pairs on grids of ``k = 1, 2, …`` boxes per side.

    The grid at ``k`` divides the sample's sup-norm bounding cube (side ``R``,
    anchored at the coordinate-wise minimum) into ``k^D`` boxes of side ``R/k``.
    Each point's box is its integer code ``floor(k (x − min) / R)``; rows of
    codes are hashed to two 64-bit keys and sorted, so one grid costs
    ``O(n D + n log n)`` (100,000 points in ``R^50``: about 0.05 s per grid).
    Repeated points are merged first, with multiplicities. The cube is scaled
    by powers of two, exactly, so that a range beyond float64 (points at
    ±1e308) or down among subnormal numbers gives the same counts as the
    same points at unit scale.

    Args:
      points: ``[n, D]``.
      ratio: ``> 1``; the ``k`` are ``round(ratio^j)``, without repeats, up to ``2^24``.
      stop: optional ``stop(count, shared_pairs) -> bool`` called after each grid;
        the sweep ends after the first grid where it returns True.
      order: passed to ``stop`` as the count: 0 gives ``N_0``, 2 gives ``N_2``.

    Returns:
      A :class:`BoxCounts`.

    Example::

      >>> grid = box_counts(np.array([[0.0], [0.3], [1.0]]), ratio=2.0)
      >>> grid.boxes_per_side[:3].tolist(), grid.occupied[:3].tolist()
      ([1, 2, 4], [1, 2, 3])
    """
    x = _checked_points(points)
    if not math.isfinite(ratio) or ratio <= 1.0:
        raise ValueError(f"ratio={ratio} must be a finite grid step > 1 (e.g. 2**0.25)")
    n = x.shape[0]
    unit, span, shift = _unit_coordinates(x)
    # A repeated column puts every point in the same box along both copies, so
    # dropping the copies changes no count (SPEC §6 covariates repeat d columns).
    unit = np.ascontiguousarray(unit[:, np.unique(unit.T, axis=0, return_index=True)[1]])
    rows, weights = _distinct_rows(unit)
    total_pairs = n * (n - 1) / 2.0

    ks, occupied, shared = [], [], []
    for k in _boxes_per_side(ratio):
        # rows ≥ 0, so truncation is floor.
        codes = (rows * float(k)).astype(np.int64)
        box_sizes = _group_sizes(codes, weights)
        pairs = float(np.sum(box_sizes * (box_sizes - 1.0)) / 2.0)
        ks.append(k)
        occupied.append(box_sizes.size)
        shared.append(pairs)
        if stop is not None:
            count = float(box_sizes.size) if order == 0 else (
                total_pairs / pairs if pairs > 0 else math.inf)
            if stop(count, pairs):
                break
    ks_arr = np.asarray(ks, dtype=np.int64)
    with np.errstate(over="ignore"):
        scales = np.ldexp(span / ks_arr.astype(np.float64), shift)
    return BoxCounts(
        scales=scales,
        boxes_per_side=ks_arr,
        occupied=np.asarray(occupied, dtype=np.int64),
        shared_pairs=np.asarray(shared, dtype=np.float64),
        n_points=n,
    )


def _checked_points(points: np.ndarray) -> np.ndarray:
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(
            f"points has shape {x.shape}; pass a sample [n, D] (for a 1-D sample use x[:, None])"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(
            "points contains NaN or infinite values; drop or impute those rows first"
        )
    if x.shape[0] < 2 or np.all(x == x[0]):
        raise ValueError(
            "points is a single point at every scale (all rows equal); a dimension needs "
            "at least two distinct points"
        )
    return x


def _unit_coordinates(x: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Points mapped into ``[0, 1)`` by their bounding cube, with ``R = span · 2^shift``.

    Returns ``(unit [n, D], span, shift)``: ``unit = (x − min) / R · (1 − 2^-40)``,
    so that the largest point falls in box ``k − 1``, not ``k``.
    """
    low = x.min(axis=0)
    with np.errstate(over="ignore"):
        overflows = not np.all(np.isfinite(x.max(axis=0) - low))
    # A range beyond float64 (points at ±1e308) is measured on x/4: exact for every
    # normal number, and the estimate is invariant to scaling.
    shift = 2 if overflows else 0
    shifted = x * 0.25 - low * 0.25 if overflows else x - low
    span = float(np.max(shifted))
    # Rescaling by a power of two is exact, so a range near the float64 limits
    # (subnormal, or just below overflow) keeps its grid where 1/span would not.
    # For every other range it rounds exactly as (x − min) · ((1 − 2^-40) / R).
    mantissa, exponent = np.frexp(span)
    unit = np.ldexp(shifted, -int(exponent)) * ((1.0 - 2.0**-40) / float(mantissa))
    return unit, span, shift


def _boxes_per_side(ratio: float) -> list[int]:
    ks, j = [1], 1
    while True:
        k = round(ratio**j)
        j += 1
        if k > _MAX_BOXES_PER_SIDE:
            return ks
        if k > ks[-1]:
            ks.append(k)


def _row_keys(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two 64-bit hashes of each integer row ``[n, D]`` (wrapping arithmetic)."""
    # Fixed odd multipliers: a hash of integer rows, not a source of randomness
    # (the same sample always gives the same counts).
    keys = np.random.default_rng(0x5EED_B0C5).integers(
        1, 2**63, size=(2, rows.shape[1]), dtype=np.uint64
    ) | np.uint64(1)
    hashes = rows.view(np.uint64) @ keys.T
    return hashes[:, 0], hashes[:, 1]


def _sorted_groups(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((second, first))
    a, b = first[order], second[order]
    starts = np.flatnonzero(np.concatenate([[True], (a[1:] != a[:-1]) | (b[1:] != b[:-1])]))
    return order, starts


def _group_sizes(codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    order, starts = _sorted_groups(*_row_keys(codes))
    return np.add.reduceat(weights[order], starts)


def _distinct_rows(unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``unit`` and their multiplicities (exact float bit patterns)."""
    bits = np.ascontiguousarray(unit).view(np.uint64)
    order, starts = _sorted_groups(*_row_keys(bits))
    weights = np.diff(np.append(starts, order.size)).astype(np.float64)
    return unit[order[starts]], weights


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of ``y`` on ``x`` and its standard error.

    NaN for both with fewer than two points or no spread in ``x`` (no slope), and
    a NaN standard error with exactly two (a line through two points has no
    residual to estimate it from, where ``linregress`` would report 0).
    """
    if x.size < 2 or np.all(x == x[0]):
        return math.nan, math.nan
    if np.all(y == y[0]):
        # A flat curve (a finite set's plateau) is an exact fit of slope 0; linregress
        # reports NaN there because its correlation coefficient is 0/0.
        return 0.0, 0.0 if x.size >= 3 else math.nan
    fit = stats.linregress(x, y)
    return float(fit.slope), float(fit.stderr) if x.size >= 3 else math.nan
