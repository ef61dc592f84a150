"""Fitting measured rates and comparing them with Theorem 2."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from theory import Ordering, fit_rate, rate_consistent, rate_ordering, theorem2_exponent

SIZES = np.array([2_000, 5_000, 10_000, 20_000, 50_000, 100_000], dtype=np.float64)


def planted_errors(seed: int, exponent: float, *, replications: int = 5, log_power: float = 0.0,
                   noise: float = 0.2) -> np.ndarray:
    """Errors c · |Ω|^{-a} · (log|Ω|)^k · lognormal noise, ``[sizes, replications]``."""
    rng = np.random.default_rng(seed)
    trend = 4.0 * SIZES**-exponent * np.log(SIZES) ** log_power
    return trend[:, None] * np.exp(noise * rng.standard_normal((SIZES.size, replications)))


@pytest.mark.parametrize("method", ["regression", "bootstrap"])
def test_planted_exponent_lies_in_the_interval_in_90_percent_of_trials(method):
    planted, trials, covered = 0.35, 100, 0
    for seed in range(trials):
        fit = fit_rate(SIZES, planted_errors(seed, planted), method=method, seed=seed)
        covered += fit.ci_low <= planted <= fit.ci_high
        assert fit.ci_low <= fit.exponent <= fit.ci_high
    assert covered >= 90, covered


def test_dividing_out_the_log_squared_factor_recovers_the_power():
    errors = planted_errors(0, 0.5, log_power=2.0, noise=0.01)
    plain = fit_rate(SIZES, errors)
    divided = fit_rate(SIZES, errors, log_power=2.0)
    assert divided.exponent == pytest.approx(0.5, abs=0.02)
    assert plain.exponent < 0.4  # the (log|Ω|)² factor flattens the raw slope


def test_long_and_wide_inputs_agree():
    errors = planted_errors(1, 0.3)
    wide = fit_rate(SIZES, errors)
    long = fit_rate(np.repeat(SIZES, errors.shape[1]), errors.reshape(-1))
    assert wide == long
    assert wide.n_sizes == SIZES.size and wide.n_points == errors.size


def test_bootstrap_is_reproducible_from_its_seed():
    errors = planted_errors(2, 0.3)
    a = fit_rate(SIZES, errors, method="bootstrap", seed=7)
    b = fit_rate(SIZES, errors, method="bootstrap", seed=np.random.default_rng(7))
    assert a == b
    with pytest.raises(ValueError, match="seed"):
        fit_rate(SIZES, errors, method="bootstrap")


def test_consistency_with_theorem2_is_one_sided():
    predicted = theorem2_exponent(2.0, 20.0)  # 1/6
    faster = fit_rate(SIZES, planted_errors(3, 0.5), predicted=predicted)
    slower = fit_rate(SIZES, planted_errors(3, 0.05, noise=0.02), predicted=predicted)
    assert faster.consistent and rate_consistent(faster, predicted)
    assert slower.consistent is False and not rate_consistent(slower, predicted)
    assert fit_rate(SIZES, planted_errors(3, 0.5)).consistent is None


@pytest.mark.parametrize(
    "n_obs, errors, match",
    [
        (SIZES, -planted_errors(0, 0.3), "errors must be positive"),
        (SIZES, np.where(np.eye(6, 5) > 0, np.nan, planted_errors(0, 0.3)), "errors must be"),
        (SIZES, np.where(np.eye(6, 5) > 0, np.inf, planted_errors(0, 0.3)), "errors must be"),
        (SIZES, np.zeros((6, 5)), "errors must be positive"),
        (np.full(6, 1e4), planted_errors(0, 0.3), "two distinct"),
        (SIZES[:2], np.array([0.1, 0.05]), "at least 3"),
        (SIZES, planted_errors(0, 0.3)[:3], "shape"),
        (-SIZES, planted_errors(0, 0.3), "n_obs"),
    ],
)
def test_bad_data_raise_naming_the_argument(n_obs, errors, match):
    with pytest.raises(ValueError, match=match):
        fit_rate(n_obs, errors)


def test_bootstrap_needs_replications():
    with pytest.raises(ValueError, match="two per"):
        fit_rate(SIZES, planted_errors(0, 0.3, replications=1), method="bootstrap", seed=0)
    with pytest.raises(ValueError, match="method.*per_replication"):
        fit_rate(SIZES, planted_errors(0, 0.3), method="jackknife")
    with pytest.raises(ValueError, match="confidence"):
        fit_rate(SIZES, planted_errors(0, 0.3), confidence=1.5)


# The [k, r] layout: rows follow n_obs, columns are replications.


def test_a_square_errors_matrix_is_read_as_sizes_by_replications():
    # 3 sizes × 3 replications, not symmetric: replication i has its own constant
    # c_i = 10^i and every replication falls exactly as |Ω|^-0.5. Read as [k, r] the
    # exponent is exactly 0.5; read transposed (rows as replications) it would follow
    # the constants, which grow tenfold per row: an exponent of −1.
    n = np.array([1e3, 1e4, 1e5])
    constants = np.array([1.0, 10.0, 100.0])
    errors = constants[None, :] * n[:, None] ** -0.5     # errors[j, i]: size j, replication i
    assert not np.allclose(errors, errors.T)
    fit = fit_rate(n, errors)
    assert fit.exponent == pytest.approx(0.5)
    transposed = fit_rate(n, errors.T)
    assert abs(transposed.exponent - 0.5) > 0.3
    by_replication = fit_rate(n, errors, method="per_replication")
    assert by_replication.exponent == pytest.approx(0.5) and by_replication.stderr < 1e-9


def test_replications_as_rows_are_refused_with_the_layout_explained():
    errors = planted_errors(0, 0.3, replications=4)          # [6 sizes, 4 replications]
    with pytest.raises(ValueError, match=r"\[r, k\].*errors\.T"):
        fit_rate(SIZES, errors.T)
    assert fit_rate(SIZES, errors).n_points == 24


# Replications as blocks: in a rate sweep replication i keeps one truth across every
# |Ω|, so its points share a slope. Planted: replication i falls as |Ω|^-(a + u_i),
# u_i ~ Normal(0, 0.05), pivoting about the middle of the sweep.


def sweep_with_shared_truths(seed: int, exponent: float, *, replications: int = 5,
                             spread: float = 0.05, noise: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    slopes = exponent + spread * rng.standard_normal(replications)
    centre = np.exp(np.mean(np.log(SIZES)))
    trend = 0.01 * (SIZES[:, None] / centre) ** -slopes
    return trend * np.exp(noise * rng.standard_normal((SIZES.size, replications)))


def test_per_replication_interval_covers_when_replications_share_a_truth():
    planted, trials = 0.35, 100
    covered = {"regression": 0, "per_replication": 0}
    for seed in range(trials):
        errors = sweep_with_shared_truths(seed, planted)
        for method in covered:
            fit = fit_rate(SIZES, errors, method=method)
            covered[method] += fit.ci_low <= planted <= fit.ci_high
    assert covered["per_replication"] >= 90, covered
    # Treating the 30 points as independent gives an interval far too narrow.
    assert covered["regression"] <= 80, covered


def test_per_replication_is_the_mean_of_one_slope_per_replication():
    errors = sweep_with_shared_truths(4, 0.3, replications=4)
    exponents = [-np.polyfit(np.log(SIZES), np.log(errors[:, i]), 1)[0] for i in range(4)]
    fit = fit_rate(SIZES, errors, method="per_replication", confidence=0.9)
    assert fit.exponent == pytest.approx(np.mean(exponents))
    assert fit.stderr == pytest.approx(np.std(exponents, ddof=1) / 2.0)   # sd / √r
    half = stats.t.ppf(0.95, 3) * fit.stderr                            # r − 1 = 3 dof
    assert (fit.ci_low, fit.ci_high) == pytest.approx((fit.exponent - half, fit.exponent + half))
    # Balanced replications: the pooled regression has the same exponent, another interval.
    assert fit_rate(SIZES, errors).exponent == pytest.approx(fit.exponent)
    assert fit.method == "per_replication" and fit.n_points == errors.size


def test_per_replication_needs_replications_as_columns():
    with pytest.raises(ValueError, match="r >= 2"):
        fit_rate(SIZES, planted_errors(0, 0.3, replications=1), method="per_replication")
    long_n = np.repeat(SIZES, 5)
    with pytest.raises(ValueError, match=r"\[k, r\]"):
        fit_rate(long_n, planted_errors(0, 0.3).reshape(-1), method="per_replication")


# Orderings are claimed from intervals only.


def test_rates_with_disjoint_intervals_are_ordered():
    fast = fit_rate(SIZES, planted_errors(5, 0.5), method="per_replication")
    slow = fit_rate(SIZES, planted_errors(6, 0.2), method="per_replication")
    assert rate_ordering(fast, slow) == Ordering(True, "a", rate_ordering(fast, slow).reason)
    assert rate_ordering(slow, fast).faster == "b"
    assert "disjoint" in rate_ordering(fast, slow).reason


def test_overlapping_intervals_order_nothing_even_when_the_estimates_differ():
    a = fit_rate(SIZES, planted_errors(7, 0.30, noise=0.4), method="per_replication")
    b = fit_rate(SIZES, planted_errors(8, 0.32, noise=0.4), method="per_replication")
    assert a.exponent != b.exponent
    ordering = rate_ordering(a, b)
    assert not ordering.resolved and ordering.faster is None
    assert "overlap" in ordering.reason


def test_rate_ordering_errs_rarely_when_the_rates_are_equal():
    # Same planted exponent: any resolved ordering is an error, allowed at most 5%
    # of the time for two 95% intervals (2.5% per side of each interval).
    wrong = sum(
        rate_ordering(fit_rate(SIZES, planted_errors(2 * s, 0.3)),
                      fit_rate(SIZES, planted_errors(2 * s + 1, 0.3))).resolved
        for s in range(100)
    )
    assert wrong <= 10, wrong


def test_rate_ordering_refuses_what_is_not_a_fit():
    fit = fit_rate(SIZES, planted_errors(0, 0.3))
    with pytest.raises(ValueError, match="fit_b must be a RateFit"):
        rate_ordering(fit, 0.3)
    with pytest.raises(ValueError, match="fit_a has the interval"):
        rate_ordering(fit._replace(ci_low=float("nan")), fit)
