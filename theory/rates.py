"""Measured convergence rates: fitting the log-log slope of squared error against |Ω|.

Theorem 2 bounds the squared L2 error by ``L_ui |Ω|^{−a} (log|Ω|)²`` with
``a = 2β/(2β + d_ui)`` (:func:`theory.bounds.theorem2_exponent`). Given errors
measured at several ``|Ω|`` (and several replications per ``|Ω|``), :func:`fit_rate`
fits ``log err = log c − a log|Ω| + k log log|Ω|`` by least squares with ``k``
fixed (0, or 2 to divide out the theorem's ``(log|Ω|)²``), and reports ``a`` with
a standard error and a confidence interval.

"Consistent" is one-sided. Theorem 2 is an upper bound up to constants: it
says the error falls at least as fast as ``|Ω|^{−a}``, not that it falls at
that speed. A measured exponent at least the predicted one (or an interval
reaching it) is consistent with the theorem, however much faster it is; only
an interval entirely below the prediction contradicts it.
:func:`rate_consistent` checks ``ci_high ≥ predicted``. Consistency never
confirms the predicted rate, and a check that the measured exponent *equals*
the prediction would test something the theorem does not claim.

Two measured rates are ordered only by their intervals: :func:`rate_ordering`
calls one faster than the other when the intervals are disjoint, and
otherwise says that the data do not order them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["Ordering", "RateFit", "fit_rate", "rate_consistent", "rate_ordering"]

_METHODS = ("regression", "bootstrap", "per_replication")


class Ordering(NamedTuple):
    """Which of two measured rates is faster, claimed only from their intervals.

    Attributes:
      resolved: whether the intervals are disjoint, so that the data order the rates.
      faster: ``"a"`` or ``"b"``, the fit with the larger exponent (the faster
        decay of the error), or ``None`` when unresolved.
      reason: the two intervals and what they do or do not show.
    """

    resolved: bool
    faster: str | None
    reason: str


class RateFit(NamedTuple):
    """A fitted rate ``err ≈ c · |Ω|^{−exponent} · (log|Ω|)^{log_power}``.

    Attributes:
      exponent: the measured rate ``a`` (minus the log-log slope).
      stderr: its standard error (the regression's, the bootstrap standard
        deviation, or ``sd / √r`` of the ``r`` per-replication exponents).
      ci_low, ci_high: the confidence interval for ``a``.
      confidence: the interval's level, e.g. 0.95.
      constant: ``c`` (exp of the intercept), units of the errors.
      log_power: the power of ``log|Ω|`` divided out before the fit.
      method: ``"regression"`` (t interval), ``"bootstrap"`` (percentile
        interval) or ``"per_replication"`` (t interval over replications).
      n_sizes: number of distinct ``|Ω|``.
      n_points: number of (``|Ω|``, error) pairs fitted.
      predicted: the exponent compared against, or ``None``.
      consistent: ``ci_high ≥ predicted``, one-sided since Theorem 2 is an upper
        bound (``None`` without a prediction).
    """

    exponent: float
    stderr: float
    ci_low: float
    ci_high: float
    confidence: float
    constant: float
    log_power: float
    method: str
    n_sizes: int
    n_points: int
    predicted: float | None
    consistent: bool | None


def fit_rate(
    n_obs: np.ndarray,
    errors: np.ndarray,
    *,
    log_power: float = 0.0,
    confidence: float = 0.95,
    method: str = "regression",
    n_boot: int = 2000,
    seed: int | np.random.Generator | None = None,
    predicted: float | None = None,
) -> RateFit:
    """Fit the rate exponent of errors against ``|Ω|`` on a log-log scale.

    Args:
      n_obs: ``|Ω|`` values, ``[k]``; repeated values are replications.
      errors: the measured squared errors, positive and finite, either ``[k]``
        aligned with ``n_obs``, or ``[k, r]``: row ``j`` holds the ``r``
        replications at ``n_obs[j]``, column ``i`` is replication ``i``. This
        layout is the only 2-D one: an ``[r, k]`` array (rows = replications)
        is refused with a ValueError when ``r != k``, but a square one cannot
        be told from its transpose and is always read as ``[k, r]``. Build it
        with ``np.column_stack(sweeps)`` from one ``[k]`` sweep per
        replication, or pass the long form ``np.repeat(n_obs, r)``,
        ``errors.reshape(-1)``.
      log_power: divide the errors by ``(log|Ω|)^log_power`` before fitting; 2
        removes Theorem 2's ``(log|Ω|)²`` so that the slope compares with
        :func:`theory.bounds.theorem2_exponent` directly.
      confidence: interval level in ``(0, 1)``.
      method: how the interval is made.

        * ``"regression"``: OLS over all points, standard error and t
          interval with (points − 2) degrees of freedom (needs 3 points).
          It treats every (``|Ω|``, replication) point as independent.
        * ``"bootstrap"``: resample the replications within each ``|Ω|``
          (needs 2 per ``|Ω|``), refit, and take the percentile interval and
          the standard deviation. Also treats the points as independent.
        * ``"per_replication"``: for errors ``[k, r]`` whose column ``i`` is
          one replication of the whole sweep (the same truth and seed across
          every ``|Ω|``, as in ``benchmarks/rate_sweep.py``), fit one slope
          per column and report their mean with a t interval over the ``r``
          exponents (``r − 1`` degrees of freedom, ``stderr = sd/√r``; needs
          ``r ≥ 2``). A replication's points share whatever that replication
          drew, so they are not independent: when replications differ in
          slope the intervals of the other two methods are far too narrow
          (``docs/theory.md`` §6), and this one is not. Its exponent equals
          the regression's when every column has the same ``n_obs``.

      n_boot: bootstrap resamples.
      seed: an int or ``numpy.random.Generator``; required for the bootstrap
        (the same seed gives the same interval).
      predicted: the theorem's exponent, to fill ``consistent`` (one-sided:
        see :func:`rate_consistent`).

    Returns:
      A :class:`RateFit`.

    Raises:
      ValueError: for non-positive or non-finite errors or ``|Ω|``, errors in
        the ``[r, k]`` layout, fewer than two distinct ``|Ω|``, too few points
        or replications for the method, or a bootstrap without a seed.

    Example::

      >>> n = np.array([1e3, 1e4, 1e5])
      >>> errors = 3.0 * n[:, None] ** -0.5 * np.array([[1.01, 0.99]])   # [3 sizes, 2 reps]
      >>> fit = fit_rate(n, errors, predicted=0.4)
      >>> round(fit.exponent, 3), fit.consistent
      (0.5, True)
      >>> blocks = fit_rate(n, errors, method="per_replication")
      >>> round(blocks.exponent, 3), blocks.ci_low <= 0.5 <= blocks.ci_high
      (0.5, True)
    """
    if method not in _METHODS:
        raise ValueError(
            f"method={method!r} is not known; use one of {', '.join(map(repr, _METHODS))}"
        )
    x, y, groups, replications = _long_format(n_obs, errors)
    log_power = float(log_power)
    if not math.isfinite(log_power):
        raise ValueError(f"log_power={log_power} must be finite (0, or 2 for Theorem 2's factor)")
    if log_power != 0.0:
        if np.any(x <= 1):
            raise ValueError("n_obs must be > 1 when log_power != 0 (log|Ω| must be positive)")
        y = y / np.log(x) ** log_power
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie strictly between 0 and 1")
    lx, ly = np.log(x), np.log(y)
    slope, intercept = _ols(lx[None, :], ly[None, :])
    slope, intercept = float(slope[0]), float(intercept[0])
    alpha = 1.0 - confidence
    if method == "regression":
        dof = lx.size - 2
        if dof < 1:
            raise ValueError(
                f"errors has {lx.size} points; the regression standard error needs at least 3 "
                "(add replications or |Ω| values)"
            )
        residual = ly - (intercept + slope * lx)
        sxx = float(np.sum((lx - lx.mean()) ** 2))
        stderr = math.sqrt(float(np.sum(residual**2)) / dof / sxx)
        half = float(stats.t.ppf(1.0 - alpha / 2.0, dof)) * stderr
        low, high = -slope - half, -slope + half
    elif method == "bootstrap":
        if seed is None:
            raise ValueError(
                "method='bootstrap' needs seed= (an int or numpy Generator) so that the "
                "interval is reproducible"
            )
        if int(n_boot) != n_boot or n_boot < 100:
            raise ValueError(f"n_boot={n_boot} must be an integer >= 100")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        index = _stratified_resamples(groups, int(n_boot), rng)
        boot_slopes, _ = _ols(lx[index], ly[index])
        # Resampling r replications with replacement shrinks their spread by
        # (r − 1)/r; widen the bootstrap deviations back (the rescaled bootstrap).
        sizes = np.bincount(groups)[groups].astype(np.float64)
        inflation = math.sqrt(float(np.mean(sizes / (sizes - 1.0))))
        rates = -slope + inflation * (-boot_slopes + slope)
        stderr = float(np.std(rates, ddof=1))
        low, high = (float(q) for q in np.quantile(rates, [alpha / 2.0, 1.0 - alpha / 2.0]))
    else:
        if replications < 2:
            raise ValueError(
                "method='per_replication' needs errors [k, r] with r >= 2 columns, column i "
                f"being replication i across every |Ω|; errors has shape {np.shape(errors)} "
                "(for replications that are independent at each |Ω|, use 'regression')"
            )
        # Rows of [r, k]: each replication's k points, fitted on their own.
        column_slopes, column_intercepts = _ols(lx.reshape(-1, replications).T,
                                                ly.reshape(-1, replications).T)
        exponents = -column_slopes
        slope, intercept = -float(np.mean(exponents)), float(np.mean(column_intercepts))
        stderr = float(np.std(exponents, ddof=1)) / math.sqrt(replications)
        half = float(stats.t.ppf(1.0 - alpha / 2.0, replications - 1)) * stderr
        low, high = -slope - half, -slope + half
    consistent = None
    if predicted is not None:
        predicted = _checked_exponent("predicted", predicted)
        consistent = bool(high >= predicted)
    return RateFit(
        exponent=-slope,
        stderr=stderr,
        ci_low=float(low),
        ci_high=float(high),
        confidence=float(confidence),
        constant=math.exp(intercept),
        log_power=log_power,
        method=method,
        n_sizes=int(np.unique(x).size),
        n_points=int(x.size),
        predicted=None if predicted is None else float(predicted),
        consistent=consistent,
    )


def rate_consistent(fit: RateFit, predicted: float) -> bool:
    """Whether a measured rate is consistent with Theorem 2's upper bound (a one-sided check).

    The theorem is an upper bound up to constants: the error falls at least as
    fast as ``|Ω|^{−predicted}``, and may fall faster. So "consistent" is
    one-sided: a measured exponent at least the predicted one is consistent
    however much larger it is, and so is any interval that reaches the
    prediction, ``fit.ci_high ≥ predicted``; only an interval entirely below
    it is inconsistent. True does not confirm that the rate *is* the
    predicted one (a flat-out wrong prediction far below the truth passes too).

    Args:
      fit: a :class:`RateFit`.
      predicted: ``2β/(2β + d_ui)`` from :func:`theory.bounds.theorem2_exponent`.

    Returns:
      ``fit.ci_high ≥ predicted``.

    Example::

      >>> fit = RateFit(0.4, 0.05, 0.3, 0.5, 0.95, 1.0, 0.0, "regression", 4, 12, None, None)
      >>> rate_consistent(fit, 0.45), rate_consistent(fit, 0.6)
      (True, False)
      >>> rate_consistent(fit, 0.1)   # measured faster than predicted: consistent
      True
    """
    return bool(fit.ci_high >= _checked_exponent("predicted", predicted))


def rate_ordering(fit_a: RateFit, fit_b: RateFit) -> Ordering:
    """Order two measured rates by their confidence intervals alone.

    One rate is called faster only when the intervals do not overlap. The
    claim is then wrong only if an interval misses its true exponent on the
    side facing the other, so for equal-tailed intervals at levels ``1 − α_a``
    and ``1 − α_b`` it errs with probability at most ``(α_a + α_b)/2`` (5% for
    two 95% intervals), whether or not the two fits are independent. Point
    estimates are never compared: overlapping intervals are reported as
    unresolved however far apart the exponents are.

    Args:
      fit_a, fit_b: :class:`RateFit` results, e.g. for two dimensions ``d``
        (Theorem 2 predicts the smaller ``d`` to be faster).

    Returns:
      An :class:`Ordering`.

    Raises:
      ValueError: when an argument has no finite interval ``ci_low ≤ ci_high``.

    Example::

      >>> fast = RateFit(0.6, 0.05, 0.5, 0.7, 0.95, 1.0, 0.0, "regression", 6, 30, None, None)
      >>> slow = RateFit(0.3, 0.05, 0.2, 0.4, 0.95, 1.0, 0.0, "regression", 6, 30, None, None)
      >>> rate_ordering(fast, slow).faster, rate_ordering(slow, fast).faster
      ('a', 'b')
      >>> close = slow._replace(ci_high=0.55)
      >>> rate_ordering(fast, close).resolved
      False
    """
    intervals = {}
    for name, fit in (("fit_a", fit_a), ("fit_b", fit_b)):
        try:
            low, high, level = float(fit.ci_low), float(fit.ci_high), float(fit.confidence)
        except (AttributeError, TypeError, ValueError):
            raise ValueError(
                f"{name} must be a RateFit (from fit_rate); got {type(fit).__name__}"
            ) from None
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(
                f"{name} has the interval [{low}, {high}]; ordering needs a finite "
                "ci_low <= ci_high"
            )
        intervals[name] = (low, high, level)
    (a_low, a_high, a_level), (b_low, b_high, b_level) = intervals["fit_a"], intervals["fit_b"]
    shown = (f"a's {a_level:.0%} interval [{a_low:.3g}, {a_high:.3g}], "
             f"b's {b_level:.0%} interval [{b_low:.3g}, {b_high:.3g}]")
    error_rate = ((1.0 - a_level) + (1.0 - b_level)) / 2.0
    if a_low > b_high or b_low > a_high:
        faster = "a" if a_low > b_high else "b"
        return Ordering(
            True, faster,
            f"{shown} are disjoint: {faster} is faster (wrong with probability at most "
            f"{error_rate:.1%} for equal-tailed intervals)",
        )
    return Ordering(
        False, None,
        f"{shown} overlap: the data do not order the two rates (more replications or a "
        "wider range of |Ω| narrow the intervals)",
    )


def _checked_exponent(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} must be a finite exponent (a number)") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}={value} must be a finite exponent")
    return value


def _numeric(name: str, values) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a numeric array (a ragged list, or one holding text, is not)"
        ) from None


def _long_format(
    n_obs: np.ndarray, errors: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(|Ω| [m], errors [m], group of each point [m], r)``; ``r = 1`` for 1-D errors.

    2-D errors ``[k, r]`` come out row by row: point ``j·r + i`` is replication
    ``i`` at ``n_obs[j]``.
    """
    x, y = _numeric("n_obs", n_obs), _numeric("errors", errors)
    if x.ndim != 1:
        raise ValueError(f"n_obs has shape {x.shape}; pass a 1-D array of |Ω| values [k]")
    replications = 1
    if y.ndim == 2 and y.shape[0] == x.shape[0]:
        replications = y.shape[1]
        x = np.repeat(x, replications)
        y = y.reshape(-1)
    elif y.ndim == 2 and y.shape[1] == x.shape[0]:
        raise ValueError(
            f"errors has shape {y.shape} but n_obs has {x.shape[0]} values: it looks like "
            f"[r, k] with the {y.shape[0]} replications as rows. errors must be [k, r], row j "
            "holding the replications at n_obs[j]; pass errors.T"
        )
    elif y.shape != x.shape:
        raise ValueError(
            f"errors has shape {y.shape} but n_obs has shape {x.shape}; pass errors [k] "
            "aligned with n_obs, or [k, r] with row j holding the r replications at n_obs[j]"
        )
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError("n_obs must hold finite pair counts |Ω| > 0")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise ValueError(
            "errors must be positive and finite (a log-log fit needs log err); drop failed "
            "runs or replace exact zeros by the floating-point floor"
        )
    sizes, groups = np.unique(x, return_inverse=True)
    if sizes.size < 2:
        raise ValueError(
            f"n_obs has {sizes.size} distinct value(s); a slope needs at least two distinct |Ω|"
        )
    return x, y, groups, replications


def _ols(lx: np.ndarray, ly: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts of rows ``[b, k]`` fitted independently."""
    mx = lx.mean(axis=1, keepdims=True)
    my = ly.mean(axis=1, keepdims=True)
    sxx = np.sum((lx - mx) ** 2, axis=1)
    slope = np.sum((lx - mx) * (ly - my), axis=1) / np.where(sxx > 0, sxx, np.nan)
    return slope, my[:, 0] - slope * mx[:, 0]


def _stratified_resamples(groups: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Indices ``[n_boot, k]`` resampling each |Ω|'s replications with replacement."""
    members = [np.flatnonzero(groups == g) for g in range(int(groups.max()) + 1)]
    if min(m.size for m in members) < 2:
        raise ValueError(
            "method='bootstrap' resamples replications within each |Ω| and needs at least two "
            "per |Ω|; use method='regression' or add replications"
        )
    return np.concatenate(
        [m[rng.integers(0, m.size, size=(n_boot, m.size))] for m in members], axis=1
    )
