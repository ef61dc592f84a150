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
      ``resolved`` is False when fewer than 20 usable ratios remain.

    Raises:
      ValueError: for NaN/inf points, fewer than 3 points, all points equal,
        or a subsample without a seed.

    Example::

      >>> from theory.known_sets import embedded_cube
      >>> est = twonn_dimension(embedded_cube(2000, 3, 10, seed=0))
      >>> abs(est.dimension - 3) < 0.3
      True
    """
    x = _checked_points(points, minimum=3)
    distances = _neighbour_distances(x, 2, _queries(x.shape[0], n_queries, seed))
    r1, r2 = distances[:, 0], distances[:, 1]
    keep = r1 > 0
    log_mu = np.log(r2[keep] / r1[keep])
    m = int(log_mu.size)
    if m < 3 or float(np.sum(log_mu)) == 0.0:
        raise ValueError(
            f"points leaves {m} query points with distinct first and second neighbours; "
            "TwoNN needs at least 3 (are most points repeated?)"
        )
    dimension = (m - 1) / float(np.sum(log_mu))
    resolved = m >= 20
    return DimensionEstimate(
        dimension=dimension,
        stderr=dimension / math.sqrt(max(m - 2, 1)),
        resolved=resolved,
        method="TwoNN",
        n_points=x.shape[0],
        scales=np.array([np.median(r1[keep]), np.median(r2[keep])]),
        counts=np.array([1.0, 2.0]),
        curve_scales=np.array([np.median(r1[keep]), np.median(r2[keep])]),
        curve_counts=np.array([1.0, 2.0]),
        reason="" if resolved else f"only {m} usable neighbour ratios; the estimate is noisy",
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
      so it is optimistic).

    Example::

      >>> from theory.known_sets import embedded_cube
      >>> est = mle_dimension(embedded_cube(2000, 2, 10, seed=0))
      >>> abs(est.dimension - 2) < 0.3
      True
    """
    if int(k_min) != k_min or int(k_max) != k_max or not 2 <= k_min <= k_max:
        raise ValueError(f"k_min={k_min}, k_max={k_max} must be integers with 2 <= k_min <= k_max")
    x = _checked_points(points, minimum=k_max + 1)
    distances = _neighbour_distances(x, k_max, _queries(x.shape[0], n_queries, seed))
    distances = distances[distances[:, 0] > 0]
    if distances.shape[0] < 3:
        raise ValueError(
            "points leaves fewer than 3 query points without a repeated copy; the MLE needs more"
        )
    log_t = np.log(distances)
    ranks = np.arange(k_min, k_max + 1)
    per_k, inverse_means, inverse_vars = [], [], []
    for k in ranks:
        # Per point: (1/(k−1)) Σ_{j<k} log(T_k / T_j), the inverse of its local estimate.
        inverse = log_t[:, k - 1] - np.mean(log_t[:, : k - 1], axis=1)
        inverse_means.append(float(np.mean(inverse)))
        inverse_vars.append(float(np.var(inverse, ddof=1)) / inverse.size)
        per_k.append(1.0 / inverse_means[-1])
    dimension = float(np.mean(per_k))
    # Delta method on d = 1 / mean(inverse), averaged over k (errors across k share data).
    stderr = float(np.mean([d**2 * math.sqrt(v) for d, v in zip(per_k, inverse_vars)]))
    medians = np.median(distances[:, ranks - 1], axis=0)
    return DimensionEstimate(
        dimension=dimension,
        stderr=stderr,
        resolved=bool(np.isfinite(dimension)),
        method=f"Levina-Bickel MLE (k={k_min}..{k_max})",
        n_points=x.shape[0],
        scales=medians,
        counts=ranks.astype(np.float64),
        curve_scales=medians,
        curve_counts=ranks.astype(np.float64),
        reason="",
    )


def _checked_points(points: np.ndarray, *, minimum: int) -> np.ndarray:
    x = np.asarray(points, dtype=np.float64)
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
