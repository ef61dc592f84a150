"""RMSE/MAE by warm and cold pairs, and the Monte Carlo excess risk."""

from __future__ import annotations

import numpy as np
import pytest

from ttm_jax import RatingData, evaluate, excess_risk, make_synthetic
from ttm_jax.evaluate import metrics


def test_metrics_match_the_formulas():
    m = metrics(np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0]))
    assert m.rmse == pytest.approx(np.sqrt(5 / 3)) and m.mae == pytest.approx(1.0) and m.n == 3


def test_pairs_are_grouped_by_what_training_saw():
    feats_u, feats_i = np.eye(3), np.eye(3)
    train = RatingData(feats_u, feats_i, np.array([0, 1]), np.array([0, 1]), np.array([1.0, 1.0]))
    # warm (0,1); cold user (2,0); cold item (0,2); cold both (2,2)
    test = RatingData(feats_u, feats_i, np.array([0, 2, 0, 2]), np.array([1, 0, 2, 2]),
                      np.array([1.0, 2.0, 3.0, 4.0]))
    ev = evaluate(np.array([1.0, 2.0, 1.0, 0.0]), test, train)
    assert ev.warm.n == 1 and ev.warm.rmse == 0.0
    assert ev.cold_user == (0.0, 0.0, 1)
    assert ev.cold_item.rmse == pytest.approx(2.0)
    assert ev.cold_both.mae == pytest.approx(4.0)
    assert ev.cold.n == 3 and ev.overall.n == 4
    assert evaluate(np.zeros(4), test).cold is None  # without train, all pairs count as warm


def test_predictions_of_the_wrong_length_are_rejected():
    data, _ = make_synthetic(10, 10, 30, seed=0)
    with pytest.raises(ValueError, match=r"predictions have shape \(29,\); expected \[30\]"):
        evaluate(np.zeros(29), data)


def test_excess_risk_is_zero_for_the_truth_and_the_signal_power_for_zero():
    _, truth = make_synthetic(20, 20, 100, intrinsic_dim=4, seed=0)

    def exact(x_u, x_i):
        return truth.user_map(x_u) @ truth.item_map(x_i).T

    assert excess_risk(exact, truth, n_users=200, n_items=200, seed=1).value == pytest.approx(0.0)
    zero = excess_risk(lambda u, i: np.zeros((len(u), len(i))), truth, n_users=300, n_items=300,
                       seed=2)
    # Predicting 0 costs E[R*²]; estimate it independently on other fresh pairs.
    x_u, x_i = truth.sample_users(2000, 9), truth.sample_items(2000, 10)
    power = np.mean(truth.rating(x_u, x_i) ** 2)
    assert abs(zero.value - power) < 4 * zero.stderr + 0.05 * power
    assert zero.stderr > 0 and zero.n_pairs == 90_000


class _NormalTruth:
    """R*(x_u, x_i) = x_u with one-dimensional standard normal covariates."""

    @staticmethod
    def sample_users(n, rng):
        return np.random.default_rng(rng).standard_normal((n, 1))

    sample_items = sample_users

    @staticmethod
    def user_map(x):
        return x

    @staticmethod
    def item_map(x):
        return np.ones_like(x)


@pytest.mark.parametrize("error", ["items", "users", "both"])
def test_the_excess_risks_standard_error_is_its_spread_over_fresh_draws(error):
    # A predictor off by x_i errs by item only: every user's mean error is the same,
    # so a standard error from per-user means alone would be about 0 here.
    off = {"items": lambda u, i: u + i.T, "users": lambda u, i: 2 * u + 0 * i.T,
           "both": lambda u, i: u + u * i.T}[error]
    draws = [excess_risk(off, _NormalTruth(), n_users=60, n_items=40, seed=s) for s in range(400)]
    spread = np.std([d.value for d in draws], ddof=1)
    assert np.mean([d.stderr for d in draws]) == pytest.approx(spread, rel=0.15)
