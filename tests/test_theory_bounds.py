"""Theorems 1 and 2 as formulas (SPEC §5)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory import (
    theorem1_error,
    theorem1_scale,
    theorem1_width,
    theorem2_architecture,
    theorem2_depth,
    theorem2_exponent,
    theorem2_max_penalty,
    theorem2_probability,
    theorem2_rate,
    theorem2_scale,
    theorem2_width,
)

BETAS = st.floats(1e-3, 1e3)
DIMS = st.floats(0.0, 100.0)


def test_exponent_by_hand():
    # 2β/(2β + d_ui), d_ui = max{d_u, d_i}, worked out on paper for a few cases.
    assert theorem2_exponent(2.0, 20.0) == pytest.approx(1 / 6)
    assert theorem2_exponent(1.0, 20.0, 5.0) == pytest.approx(1 / 11)
    assert theorem2_exponent(1.5, 3.0) == pytest.approx(1 / 2)
    assert theorem2_exponent(0.25, 1.0, 2.0) == pytest.approx(1 / 5)


@given(beta=BETAS, d_u=DIMS, d_i=DIMS, factor=st.floats(0.01, 100.0))
def test_exponent_has_the_properties_theorem2_gives_it(beta, d_u, d_i, factor):
    a = theorem2_exponent(beta, d_u, d_i)
    assert 0.0 < a <= 1.0
    # Only the larger dimension matters, in either argument.
    assert a == theorem2_exponent(beta, d_i, d_u) == theorem2_exponent(beta, max(d_u, d_i))
    # Only the ratio d_ui / β matters ...
    assert theorem2_exponent(factor * beta, factor * d_u, factor * d_i) == pytest.approx(a)
    # ... and the rate improves with smoothness and worsens with dimension.
    assert theorem2_exponent(2 * beta, d_u, d_i) >= a
    assert theorem2_exponent(beta, d_u + 1.0, d_i + 1.0) < a
    # The odds a / (1 − a) are 2β / d_ui: halving d_ui doubles them (away from a ≈ 1,
    # where 1 − a cancels).
    if max(d_u, d_i) > 0 and a < 0.99:
        halved = theorem2_exponent(beta, d_u / 2, d_i / 2)
        assert halved / (1 - halved) == pytest.approx(2 * a / (1 - a), rel=1e-6)


def test_exponent_limits():
    assert theorem2_exponent(math.inf, 20.0) == 1.0
    assert theorem2_exponent(1e12, 40.0) == pytest.approx(1.0)
    assert theorem2_exponent(2.0, 0.0) == 1.0  # finite supports: the parametric rate
    assert theorem2_exponent(1.0, 20.0) == theorem2_exponent(1.0, 20.0, 20.0) == 2.0 / 22.0
    # The paper's synthetic study: larger d_ui, slower rate.
    rates = [theorem2_exponent(2.0, d) for d in (20, 30, 40)]
    assert rates == sorted(rates, reverse=True)


def test_rate_is_the_bound_of_theorem_2():
    n = np.array([1e3, 1e4, 1e5])
    got = theorem2_rate(n, 2.0, 20.0, 30.0, constant=3.0)
    a = 4.0 / 34.0
    np.testing.assert_allclose(got, 3.0 * n**-a * np.log(n) ** 2)
    assert isinstance(theorem2_rate(1e4, 2.0, 20.0), float)
    # β → ∞: |Ω|^-1 (log|Ω|)².
    assert theorem2_rate(1e4, math.inf, 20.0) == pytest.approx(np.log(1e4) ** 2 / 1e4)
    # The measured log-log slope after dividing out (log|Ω|)² is −exponent.
    slope = np.polyfit(np.log(n), np.log(got / np.log(n) ** 2), 1)[0]
    assert slope == pytest.approx(-a)


def test_prescribed_architecture_follows_the_orders():
    n, beta, d = 1e5, 2.0, 20.0
    power = d / (2 * beta + d)
    assert theorem2_width(n, beta, d, constant=2.0) == pytest.approx(2.0 * n**power * np.log(n))
    assert theorem2_depth(beta, d, constant=3.0) == pytest.approx(3.0 * beta * np.log(beta) ** 2 / d)
    assert theorem2_scale(n, beta, d, s=0.5) == pytest.approx(n ** (2 * beta * 0.5 / (2 * beta + d)))
    arch = theorem2_architecture(n, beta, 20.0, 40.0, s=0.5)
    assert arch.user_depth == pytest.approx(2.0 * arch.item_depth)
    assert arch.width == pytest.approx(theorem2_width(n, beta, 40.0))
    assert arch.exponent == theorem2_exponent(beta, 40.0)
    assert 0.0 <= theorem2_probability(n, beta, d, c1=1.0) <= 1.0
    lam = theorem2_max_penalty(n, beta, d, depth_ui=5.0, penalty_at_truth=10.0)
    assert 4 * lam * n * 10.0 == pytest.approx(5.0 * n ** -(4 / 24) * np.log(n))


def test_theorem1_width_for_accuracy_epsilon():
    assert theorem1_width(0.01, 2.0, 3.0) == pytest.approx(0.01 ** -1.5)
    assert theorem1_width(0.01, 2.0, 3.0, constant=5.0) == pytest.approx(5 * 0.01 ** -1.5)
    # Halving ε multiplies the width by 2^{d/β}.
    assert theorem1_width(0.005, 2.0, 3.0) / theorem1_width(0.01, 2.0, 3.0) == pytest.approx(
        2**1.5)
    assert theorem1_scale(0.1, s=2.0) == pytest.approx(100.0)
    assert theorem1_error(0.1, embedding_dim=30, sup_bound=0.5) == pytest.approx(4.5)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: theorem2_exponent(0.0, 2.0), "beta"),
        (lambda: theorem2_exponent(-1.0, 2.0), "beta"),
        (lambda: theorem2_exponent(math.nan, 2.0), "beta"),
        (lambda: theorem2_exponent(1.0, -2.0), "d_u"),
        (lambda: theorem2_exponent(1.0, 2.0, -0.5), "d_i"),
        (lambda: theorem2_rate(1.0, 1.0, 2.0), "n_obs"),
        (lambda: theorem2_rate([10.0, np.inf], 1.0, 2.0), "n_obs"),
        (lambda: theorem2_width(100.0, 0.0, 2.0), "beta"),
        (lambda: theorem2_depth(2.0, 0.0), "d"),
        (lambda: theorem2_depth(-2.0, 1.0), "beta"),
        (lambda: theorem2_scale(100.0, 1.0, 2.0, s=-1.0), "s"),
        (lambda: theorem1_width(0.1, 0.0, 2.0), "beta"),
        (lambda: theorem1_width(0.1, 1.0, -2.0), "d"),
        (lambda: theorem1_width(0.0, 1.0, 2.0), "epsilon"),
    ],
)
def test_bad_parameters_raise_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}="):
        call()
