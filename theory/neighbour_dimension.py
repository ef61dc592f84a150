"""Nearest-neighbour estimators of intrinsic dimension: TwoNN and Levina–Bickel.

Box counting (:mod:`theory.dimension`) needs grids with ``k^d`` boxes for some
``k ≥ 2``, hopeless for ``d = 20`` or more at any realistic ``n``. Nearest-neighbour
estimators work at the scale of each point's own neighbourhood instead and
assume only that the density is roughly constant there, so they degrade far
more gracefully with ``d``, though they are still biased low in high dimension
(boundary effects and the curvature of the density at the neighbour scale
grow with ``d``; SPEC §6's 20-dimensional covariates read 16 to 16.6 from
10^5 points, see ``docs/theory.md``).

* :func:`twonn_dimension` (Facco et al., 2017): with ``r_1 < r_2`` the distances
  of a point to its two nearest neighbours, ``μ = r_2/r_1`` is Pareto with index
  ``d`` when the density is locally constant; the maximum-likelihood estimate
  is ``(m − 1) / Σ log μ_i`` with standard error ``d̂ / √(m − 2)``.
* :func:`mle_dimension` (Levina & Bickel, 2005, with MacKay & Ghahramani's
  averaging of inverses): ``d̂_k = [mean_i (1/(k−1)) Σ_{j<k} log(T_k(x_i)/T_j(x_i))]^{-1}``
  averaged over ``k`` in ``[k_min, k_max]``.

Distances are Euclidean (any norm gives the same Pareto law), found with
:class:`scipy.spatial.cKDTree`. Points that coincide with another point
(``r_1 = 0``) are left out: a repeated point has no neighbourhood scale.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from theory.dimension import DimensionEstimate

__all__ = ["mle_dimension", "twonn_dimension"]

# Ties (equal neighbour distances) have probability 0 under the continuous law that
# each estimator assumes. TwoNN counts every tie as μ = 1, so 1% of ties shifts it by
# about 1% (2,000 uniform points in the square rounded to 3 decimals: 0.8% ties, 2.04;
# 20,000: 6.7% ties, 2.16). The MLE averages k − 1 ranks per point and shrugs off more
# (20,000 points rounded to 3 decimals: 9% tied gaps, 2.00; a 50 × 50 lattice: 82%, 2.6).
_MAX_TIES_TWONN = 0.01
_MAX_TIED_GAPS_MLE = 0.10


def twonn_dimension(
    points: np.ndarray,
    *,
    n_queries: int | None = None,
    seed: int | np.random.Generator | None = None,
) -> DimensionEstimate:
    """TwoNN estimate of the intrinsic dimension from second/first neighbour distance ratios.

    Args:
      points: ``[n, D]`` sample.
      n_queries: use the ratios of this many points, drawn without replacement
        (their neighbours are still searched among all ``n``); ``None`` uses
        every point. A k-d tree query costs about ``log n`` per point in low
        intrinsic dimension and approaches ``n`` in high dimension.
      seed: int or Generator; required when ``n_queries < n``.

    Returns:
      A :class:`theory.dimension.DimensionEstimate` with ``scales`` the median
      first and second neighbour distances and ``counts`` ``[1, 2]``.
      ``resolved`` is False, with the reason, when fewer than 20 usable ratios
      remain, or when more than 1% of them are ties ``r_2 = r_1`` (a lattice,
      or values rounded to a grid); ties leave no estimate, and ``dimension``
      is then NaN.

    Raises:
      ValueError: for NaN/inf points, fewer than 3 points, all points equal,
        fewer than 3 points that do not repeat another point, or a subsample
        without a seed.

    Example::

      >>> from theory.known_sets import embedded_cube
      >>> est = twonn_dimension(embedded_cube(2000, 3, 10, seed=0))
      >>> abs(est.dimension - 3) < 0.3
      True
    """
    x, exponent = _scaled(_checked_points(points, minimum=3))
    queries = _queries(x.shape[0], n_queries, seed)
    distances = _neighbour_distances(x, 2, queries)
    tolerance = _tie_tolerance(x[queries], distances[:, -1])
    keep = distances[:, 0] > tolerance
    r1, r2, tolerance = distances[keep, 0], distances[keep, 1], tolerance[keep]
    m = int(r1.size)
    if m < 3:
        raise ValueError(
            f"points leaves {m} query point(s) whose nearest neighbour is not a copy of "
            "themselves (to float64 precision); TwoNN needs at least 3. Most points repeat "
            "another, as in a finite set sampled with repeats (dimension 0)"
        )
    log_mu = np.log(r2 / r1)
    ties = int(np.count_nonzero(r2 - r1 <= tolerance))
    scales = np.ldexp(np.array([np.median(r1), np.median(r2)]), exponent)
    if ties > _MAX_TIES_TWONN * m:
        dimension, stderr = math.nan, math.nan
        reason = (
            f"{ties} of {m} points ({ties / m:.1%}) have their first and second neighbours at "
            "the same distance (r_2 = r_1 to float64 precision): the sample is discretised at "
            "its neighbour scale (a lattice, or values rounded to a grid), where μ = r_2/r_1 "
            f"is not Pareto; TwoNN needs at most {_MAX_TIES_TWONN:.0%} ties"
        )
    else:
        dimension = (m - 1) / float(np.sum(log_mu))
        stderr = dimension / math.sqrt(max(m - 2, 1))
        reason = "" if m >= 20 else f"only {m} usable neighbour ratios; the estimate is noisy"
    return DimensionEstimate(
        dimension=dimension,
        stderr=stderr,
        resolved=not reason,
        method="TwoNN",
        n_points=x.shape[0],
        scales=scales,
        counts=np.array([1.0, 2.0]),
        curve_scales=scales,
        curve_counts=np.array([1.0, 2.0]),
        reason=reason,
    )


def mle_dimension(
    points: np.ndarray,
    *,
    k_min: int = 10,
    k_max: int = 20,
    n_queries: int | None = None,
    seed: int | np.random.Generator | None = None,
) -> DimensionEstimate:
    """Levina–Bickel maximum-likelihood dimension, averaged over ``k_min ≤ k ≤ k_max`` neighbours.

    Args:
      points: ``[n, D]`` sample.
      k_min, k_max: neighbour ranks, ``2 ≤ k_min ≤ k_max < n``.
      n_queries: number of query points (``None``: all), as in :func:`twonn_dimension`.
      seed: int or Generator; required when ``n_queries < n``.

    Returns:
      A :class:`theory.dimension.DimensionEstimate` with ``scales`` the median
      ``k``-th neighbour distance and ``counts`` the ranks ``k``; ``stderr`` is
      the delta-method error of the inverse averaging (neighbourhoods overlap,
      so it is optimistic). ``resolved`` is False, ``dimension`` NaN and
      ``reason`` says why when more than 10% of the gaps between consecutive
      neighbour distances ``T_j ≤ T_{j+1}`` are ties (a lattice, or values
      rounded to a grid).

    Raises:
      ValueError: for bad ``k_min``/``k_max``, NaN/inf points, fewer than
        ``k_max + 1`` points, all points equal, fewer than 3 points that do not
        repeat another point, or a subsample without a seed.

    Example::

      >>> from theory.known_sets import embedded_cube
      >>> est = mle_dimension(embedded_cube(2000, 2, 10, seed=0))
      >>> abs(est.dimension - 2) < 0.3
      True
    """
    if int(k_min) != k_min or int(k_max) != k_max or not 2 <= k_min <= k_max:
        raise ValueError(f"k_min={k_min}, k_max={k_max} must be integers with 2 <= k_min <= k_max")
    x, exponent = _scaled(_checked_points(points, minimum=k_max + 1))
    queries = _queries(x.shape[0], n_queries, seed)
    distances = _neighbour_distances(x, k_max, queries)
    tolerance = _tie_tolerance(x[queries], distances[:, -1])
    keep = distances[:, 0] > tolerance
    distances, tolerance = distances[keep], tolerance[keep]
    if distances.shape[0] < 3:
        raise ValueError(
            f"points leaves {distances.shape[0]} query point(s) whose nearest neighbour is not "
            "a copy of themselves (to float64 precision); the MLE needs at least 3. Most "
            "points repeat another, as in a finite set sampled with repeats (dimension 0)"
        )
    tied = float(np.mean(np.diff(distances, axis=1) <= tolerance[:, None]))
    log_t = np.log(distances)
    ranks = np.arange(k_min, k_max + 1)
    # Per point and rank k: (1/(k−1)) Σ_{j<k} log(T_k / T_j), the inverse of its local estimate.
    inverse = np.stack(
        [log_t[:, k - 1] - np.mean(log_t[:, : k - 1], axis=1) for k in ranks], axis=1
    )
    inverse_means = inverse.mean(axis=0)
    medians = np.ldexp(np.median(distances[:, ranks - 1], axis=0), exponent)
    flat = inverse_means <= 0
    if flat.any():
        dimension, stderr = math.nan, math.nan
        reason = (
            f"at rank k = {ranks[np.argmax(flat)]} every point's nearest neighbours are all at "
            "the same distance (to float64 precision), so log(T_k/T_j) = 0 leaves no estimate: "
            "the sample is discretised at its neighbour scale (a lattice, or values rounded "
            "to a grid)"
        )
    elif tied > _MAX_TIED_GAPS_MLE:
        dimension, stderr = math.nan, math.nan
        reason = (
            f"{tied:.1%} of the gaps between consecutive neighbour distances T_j ≤ T_(j+1) "
            f"(j < {k_max}) are ties (equal to float64 precision): the sample is discretised "
            "at its neighbour scale (a lattice, or values rounded to a grid), where "
            "log(T_k/T_j) does not follow the Levina-Bickel law; the MLE needs at most "
            f"{_MAX_TIED_GAPS_MLE:.0%} tied gaps"
        )
    else:
        per_k = 1.0 / inverse_means
        dimension = float(np.mean(per_k))
        # Delta method on d = 1 / mean(inverse), averaged over k (errors across k share data).
        inverse_ses = np.sqrt(np.var(inverse, axis=0, ddof=1) / inverse.shape[0])
        stderr = float(np.mean(per_k**2 * inverse_ses))
        reason = ""
    return DimensionEstimate(
        dimension=dimension,
        stderr=stderr,
        resolved=not reason,
        method=f"Levina-Bickel MLE (k={k_min}..{k_max})",
        n_points=x.shape[0],
        scales=medians,
        counts=ranks.astype(np.float64),
        curve_scales=medians,
        curve_counts=ranks.astype(np.float64),
        reason=reason,
    )


def _checked_points(points: np.ndarray, *, minimum: int) -> np.ndarray:
    try:
        x = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            "points must be a numeric array [n, D] (a list of rows of numbers)"
        ) from None
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(
            f"points has shape {x.shape}; pass a sample [n, D] (for a 1-D sample use x[:, None])"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("points contains NaN or infinite values; drop or impute those rows first")
    if x.shape[0] < minimum:
        raise ValueError(
            f"points has {x.shape[0]} rows; this estimator needs at least {minimum}"
        )
    if np.all(x == x[0]):
        raise ValueError(
            "points is a single point at every scale (all rows equal); a dimension needs "
            "distinct points"
        )
    return x


def _scaled(x: np.ndarray) -> tuple[np.ndarray, int]:
    """``x · 2^−e`` with the largest ``|coordinate|`` in ``[1/4, 1/2)``, and ``e``.

    A power of two changes no distance ratio and is exact (bar coordinates
    that fall below the smallest normal float, far below the resolution
    :func:`_tie_tolerance` allows), and it keeps every squared difference in
    the k-d tree from overflowing (data at ±1e308) or underflowing (data at 1e-300).
    """
    _, exponent = np.frexp(np.max(np.abs(x)))
    exponent = int(exponent) + 1
    return np.ldexp(x, -exponent), exponent


def _tie_tolerance(queries: np.ndarray, farthest: np.ndarray) -> np.ndarray:
    """``[m]``: neighbour distances of a query point closer than this are equal to float64 precision.

    Coordinates are exact only to half an ulp (2^-53 relative) of their own size,
    so two distances from a point with coordinates up to ``M`` may differ by about
    ``√D · 2^-52 · M`` through the rounding of the data alone (a lattice with
    spacing 0.1 is not exact), and by ``D · 2^-52`` of themselves through the
    arithmetic. Below ``2^-500`` (the data are scaled to at most 1/2) the tree's
    squared distances lose precision to underflow.
    """
    dim = queries.shape[1]
    eps = np.finfo(np.float64).eps
    magnitude = np.max(np.abs(queries), axis=1)
    return 4.0 * eps * (math.sqrt(dim) * magnitude + dim * farthest) + 2.0**-500


def _queries(n: int, n_queries: int | None, seed: int | np.random.Generator | None) -> np.ndarray:
    if n_queries is None or n_queries >= n:
        return np.arange(n)
    if int(n_queries) != n_queries or n_queries < 3:
        raise ValueError(f"n_queries={n_queries} must be an integer >= 3 (or None for all points)")
    if seed is None:
        raise ValueError(
            f"n_queries={n_queries} < n={n} subsamples the query points; pass seed= (an int "
            "or numpy Generator) so that the estimate is reproducible"
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=int(n_queries), replace=False))


def _neighbour_distances(x: np.ndarray, k: int, queries: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[m, k]`` from each query point to its k nearest other points."""
    # The k + 1 nearest points include the query itself at distance 0. With repeats
    # another copy may be listed instead, but every copy sits at distance 0 and the
    # distances come back sorted, so dropping the first column always leaves the
    # distances to the k nearest other points.
    distances, _ = cKDTree(x).query(x[queries], k=k + 1)
    return distances[:, 1:]
