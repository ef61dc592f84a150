"""Fitting measured rates and comparing them with Theorem 2."""

from __future__ import annotations

import numpy as np
import pytest

from theory import fit_rate, rate_consistent, theorem2_exponent

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
    with pytest.raises(ValueError, match="method"):
        fit_rate(SIZES, planted_errors(0, 0.3), method="jackknife")
    with pytest.raises(ValueError, match="confidence"):
        fit_rate(SIZES, planted_errors(0, 0.3), confidence=1.5)
