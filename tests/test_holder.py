"""The Hölder-smooth synthetic generator: interface, determinism, smoothness, d-variateness."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import comb

from ttm_jax import RatingData, excess_risk
from ttm_jax.data import GroundTruth, SyntheticData, TrigMap
from ttm_jax.data.holder import (
    HolderMap,
    default_levels,
    holder_map,
    make_holder_synthetic,
    smooth_fade,
)


def fade_by_hand(t: float) -> float:
    """``w(t) = s(1 − t) / (s(t) + s(1 − t))``, ``s(t) = exp(−1/t)`` for t > 0 and 0 otherwise."""
    def s(u: float) -> float:
        return math.exp(-1.0 / u) if u > 0 else 0.0
    return s(1.0 - t) / (s(t) + s(1.0 - t))


def holder_by_hand(f: HolderMap, z: np.ndarray) -> np.ndarray:
    """``f(z)`` for one point ``z [d]``, straight from the definition in ``ttm_jax/data/holder.py``:

        f_j(z) = a / N · Σ_{k=0}^{K} 2^{−kβ} Σ_{c ∈ {0..2^k}^d} ξ_{jkc} Φ(2^k z − c),

    ``Φ(u) = Π_m w(|u_m|)`` on ``[−1, 1]^d`` and ``N² = ρ^d Σ_k 2^{−2kβ}``,
    ``ρ = ∫_0^1 w² + (1 − w)²``. The signs ``ξ_{jkc}`` are the map's random draws;
    they are read where the definition pins them down, at the lattice point
    ``c / 2^k`` itself (``Φ(0) = 1`` and ``Φ`` vanishes at every other lattice
    point), with ``f.level``. Everything else is recomputed here.
    """
    d, beta = f.intrinsic_dim, f.smoothness
    rho = quad(lambda t: fade_by_hand(t) ** 2 + (1.0 - fade_by_hand(t)) ** 2, 0.0, 1.0,
               epsabs=1e-14, epsrel=1e-14)[0]
    norm = math.sqrt(rho**d * sum(2.0 ** (-2 * k * beta) for k in range(f.levels + 1)))
    total = np.zeros(f.embedding_dim)
    for k in range(f.levels + 1):
        u = 2.0**k * z
        near = [range(max(0, math.floor(um) - 1), min(2**k, math.floor(um) + 1) + 1) for um in u]
        for corner in itertools.product(*near):
            offsets = np.abs(u - np.array(corner))
            if np.any(offsets >= 1.0):
                continue
            bump = math.prod(fade_by_hand(t) for t in offsets)
            sign = f.level(np.array(corner, np.float64)[None, :] / 2.0**k, k)[0]
            total += 2.0 ** (-k * beta) * sign * bump
    return f.amplitude / norm * total


def test_returns_the_make_synthetic_interface():
    data, truth = make_holder_synthetic(500, smoothness=1.5, intrinsic_dim=3, ambient_dim=7,
                                        embedding_dim=4, seed=0)
    assert isinstance(data, RatingData) and isinstance(truth, GroundTruth)
    assert data.user_features.shape == (500, 7) and data.item_features.shape == (500, 7)
    assert truth.user_embeddings.shape == (500, 4) and truth.item_embeddings.shape == (500, 4)
    assert (truth.smoothness, truth.intrinsic_dim, truth.noise_var) == (1.5, 3, 0.25)
    fresh = truth.sample_users(11, 3)
    assert fresh.shape == (11, 7) and truth.user_map(fresh).shape == (11, 4)
    assert truth.rating(fresh, truth.sample_items(11, 4)).shape == (11,)
    # Covariates: d free Uniform[0,1] coordinates repeated cyclically (SPEC §6).
    x = data.user_features
    assert x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(x[:, 3:6], x[:, :3])
    np.testing.assert_array_equal(x[:, 6], x[:, 0])


def test_iid_design_pairs_fresh_users_with_fresh_items():
    data, _ = make_holder_synthetic(300, smoothness=1.0, intrinsic_dim=2, seed=1)
    assert data.n_users == data.n_items == data.n_ratings == 300
    np.testing.assert_array_equal(data.user_ids, np.arange(300))
    np.testing.assert_array_equal(data.item_ids, np.arange(300))


def test_table_design_samples_pairs_without_replacement():
    data, _ = make_holder_synthetic(400, smoothness=1.0, intrinsic_dim=2, n_users=30,
                                    n_items=40, seed=1)
    assert (data.n_users, data.n_items, data.n_ratings) == (30, 40, 400)
    codes = data.user_ids.astype(np.int64) * 40 + data.item_ids
    assert np.unique(codes).size == 400


def test_noise_free_ratings_are_the_truth_and_noise_has_its_variance():
    data, truth = make_holder_synthetic(20_000, smoothness=1.0, intrinsic_dim=2,
                                        noise_var=0.0, seed=2)
    # r = <f*(x_u), g*(x_i)>, with f* and g* evaluated by hand (first 20 ratings).
    clean = [
        holder_by_hand(truth.user_map, data.user_features[u, :2].astype(np.float64))
        @ holder_by_hand(truth.item_map, data.item_features[i, :2].astype(np.float64))
        for u, i in zip(data.user_ids[:20], data.item_ids[:20])
    ]
    np.testing.assert_allclose(data.ratings[:20], clean, rtol=1e-6, atol=1e-7)  # float32 ratings
    noisy, truth2 = make_holder_synthetic(20_000, smoothness=1.0, intrinsic_dim=2,
                                          noise_var=0.3, seed=2)
    resid = noisy.ratings - truth2.rating(noisy.user_features, noisy.item_features)
    assert np.var(resid) == pytest.approx(0.3, rel=0.05)


def test_same_seed_same_data_and_map_seed_fixes_the_truth():
    a = make_holder_synthetic(200, smoothness=0.5, intrinsic_dim=2, seed=3)
    b = make_holder_synthetic(200, smoothness=0.5, intrinsic_dim=2, seed=3)
    c = make_holder_synthetic(200, smoothness=0.5, intrinsic_dim=2, seed=4)
    np.testing.assert_array_equal(a.data.ratings, b.data.ratings)
    assert not np.array_equal(a.data.ratings, c.data.ratings)
    x = a.truth.sample_users(50, 0)
    assert not np.allclose(a.truth.user_map(x), c.truth.user_map(x))
    # One truth at two sample sizes: the same maps, different samples.
    small = make_holder_synthetic(100, smoothness=1.0, intrinsic_dim=2, levels=5, seed=5,
                                  map_seed=9)
    large = make_holder_synthetic(400, smoothness=1.0, intrinsic_dim=2, levels=5, seed=6,
                                  map_seed=9)
    np.testing.assert_array_equal(small.truth.user_map(x), large.truth.user_map(x))
    np.testing.assert_array_equal(small.truth.item_map(x), large.truth.item_map(x))
    assert not np.allclose(small.truth.user_map(x), small.truth.item_map(x))


def test_user_and_item_maps_have_the_requested_scale():
    # E f_j² = a² = (signal_var / p)^{1/2} on average over signs and z; Var R* = signal_var.
    ms, rstar = [], []
    for seed in range(4):
        _, truth = make_holder_synthetic(10, smoothness=1.0, intrinsic_dim=3, embedding_dim=16,
                                         signal_var=2.0, levels=4, seed=seed)
        x = truth.sample_users(20_000, seed)
        xi = truth.sample_items(20_000, seed + 100)
        ms.append(np.mean(truth.user_map(x) ** 2))
        rstar.append(np.mean(truth.rating(x, xi) ** 2))
    assert np.mean(ms) == pytest.approx(math.sqrt(2.0 / 16), rel=0.15)
    assert np.mean(rstar) == pytest.approx(2.0, rel=0.25)


def test_infinite_smoothness_uses_the_trigonometric_maps_on_the_free_coordinates():
    data, truth = make_holder_synthetic(300, smoothness=math.inf, intrinsic_dim=3,
                                        ambient_dim=8, seed=0)
    assert isinstance(truth.user_map, TrigMap) and truth.smoothness == math.inf
    x = truth.sample_users(100, 1)
    moved = x.copy()
    moved[:, 3:] = 0.123  # the map reads only the d free coordinates
    np.testing.assert_array_equal(truth.user_map(x), truth.user_map(moved))
    m = holder_map(math.inf, 4, 32, levels=0, amplitude=0.5, seed=0)
    z = np.random.default_rng(0).uniform(size=(20_000, 4))
    assert np.mean(m(z) ** 2) == pytest.approx(0.25, rel=0.25)


def _mixed_difference(f, z, h):
    """``Σ_{ε ∈ {0,1}^d} (−1)^{d−|ε|} f(z + ε ⊙ h)``: zero iff f is locally a sum of
    functions that each miss at least one coordinate."""
    d = z.shape[1]
    total = 0.0
    for corner in range(2**d):
        eps = np.array([(corner >> m) & 1 for m in range(d)], np.float64)
        total = total + (-1) ** (d - eps.sum()) * f(z + eps * h)
    return total


@pytest.mark.parametrize("d", [2, 3, 5])
def test_finite_beta_maps_are_genuinely_d_variate(d):
    f = holder_map(1.0, d, 3, levels=4, seed=d)
    rng = np.random.default_rng(d)
    z = rng.uniform(0.05, 0.7, size=(400, d))
    h = np.full(d, 0.25)
    mixed = _mixed_difference(f, z, h)
    scale = np.sqrt(np.mean(f(z) ** 2))
    assert np.sqrt(np.mean(mixed**2)) > 0.05 * scale

    # The same statistic vanishes on an additive map (a sum of 1-D functions) ...
    def additive(x):
        return np.sin(3 * x).sum(axis=1, keepdims=True)

    assert np.max(np.abs(_mixed_difference(additive, z, h))) < 1e-12
    # ... and on the product-of-neighbours trigonometric map once d > 2.
    if d > 2:
        trig = holder_map(math.inf, d, 3, levels=0, seed=0)
        assert np.max(np.abs(_mixed_difference(trig, z, h))) < 1e-12


@pytest.mark.parametrize("beta", [0.5, 1.0, 1.5])
def test_modulus_of_smoothness_scales_like_h_to_the_beta(beta):
    # RMS of the r-th difference (r > β) along random directions, over scales the
    # levels resolve (2^-3 .. 2^-7, levels up to 10): log-log slope ≈ β.
    f = holder_map(beta, 2, 4, levels=10, seed=11)
    r = math.floor(beta) + 1
    rng = np.random.default_rng(0)
    z = rng.uniform(0.1, 0.6, size=(3000, 2))
    v = rng.normal(size=(3000, 2))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    hs = 2.0 ** -np.arange(3, 8)
    rms = []
    for h in hs:
        diff = sum((-1) ** (r - i) * comb(r, i) * f(z + i * h * v / r) for i in range(r + 1))
        rms.append(np.sqrt(np.mean(diff**2)))
    slope = np.polyfit(np.log(hs), np.log(rms), 1)[0]
    assert slope == pytest.approx(beta, abs=0.15)


@pytest.mark.parametrize("beta, d", [(1.0, 2), (0.5, 3), (1.7, 1)])
def test_map_is_its_definition_evaluated_by_hand(beta, d):
    f = holder_map(beta, d, 2, levels=3, amplitude=0.7, seed=0)
    assert isinstance(f, HolderMap)
    rng = np.random.default_rng(d)
    # Interior points, a point of the finest lattice, and the corners 0 and 1.
    z = np.concatenate([rng.uniform(size=(6, d)), np.full((1, d), 3 / 8),
                        np.zeros((1, d)), np.ones((1, d))])
    by_hand = np.array([holder_by_hand(f, point) for point in z])
    np.testing.assert_allclose(f(z), by_hand, rtol=1e-10, atol=1e-14)


def test_level_signs_are_plus_or_minus_one_and_balanced():
    f = holder_map(1.0, 2, 4, levels=5, seed=0)
    # At the points of 2^-5 Z^2 level 5 is a sign ξ exactly (the fade is 1 at its
    # own corner and 0 at the others) ...
    grid = np.stack(np.meshgrid(*[np.arange(33) / 32.0] * 2), -1).reshape(-1, 2)
    signs = f.level(grid, 5)
    np.testing.assert_array_equal(np.abs(signs), 1.0)
    # ... and the 1,089 signs of each output are fair coins: a biased or constant
    # sign source would put the fraction of +1 far from 1/2 (4 sd ≈ 0.06).
    assert np.all(np.abs(np.mean(signs > 0, axis=0) - 0.5) < 0.06)
    # Outputs draw different signs (bit j of the hash is output j's sign).
    assert not np.array_equal(signs[:, 0], signs[:, 1])


@settings(max_examples=50)
@given(t=st.floats(0.0, 1.0))
def test_smooth_fade_is_a_partition_of_unity(t):
    w = smooth_fade(np.array([t, 1.0 - t]))
    assert w[0] + w[1] == pytest.approx(1.0, abs=1e-12)
    assert 0.0 <= w[0] <= 1.0
    assert smooth_fade(np.array([0.0]))[0] == 1.0 and smooth_fade(np.array([1.0]))[0] == 0.0
    grid = smooth_fade(np.linspace(0, 1, 101))
    assert np.all(np.diff(grid) <= 0)


@settings(max_examples=60)
@given(beta=st.floats(0.25, 4.0), d=st.integers(1, 10), n=st.integers(100, 10**6))
def test_default_levels_leaves_an_invisible_tail(beta, d, n):
    k = default_levels(beta, d, n)
    target = 0.01 * n ** (-2 * beta / (2 * beta + d))
    assert 2.0 ** (-2 * (k + 1) * beta) <= target * (1 + 1e-9) or k == 30
    if k > 1:  # and it is the least such level
        assert 2.0 ** (-2 * k * beta) > target


def test_default_levels_at_infinite_smoothness_is_zero():
    assert default_levels(math.inf, 3, 1000) == 0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(smoothness=0.0), "smoothness"),
        (dict(smoothness=-1.0), "smoothness"),
        (dict(smoothness=float("nan")), "smoothness"),
        (dict(intrinsic_dim=0), "intrinsic_dim"),
        (dict(intrinsic_dim=20), "intrinsic_dim"),
        (dict(intrinsic_dim=1.5), "intrinsic_dim"),
        (dict(embedding_dim=0), "embedding_dim"),
        (dict(embedding_dim=65), "embedding_dim"),
        (dict(n_ratings=0), "n_ratings"),
        (dict(noise_var=-0.1), "noise_var"),
        (dict(signal_var=0.0), "signal_var"),
        (dict(levels=-1), "levels"),
        (dict(levels=31), "levels"),
        (dict(n_users=10), "n_users and n_items"),
        (dict(n_users=10, n_items=0), "n_items"),
        (dict(seed=-1), "seed"),
        (dict(map_seed=-2), "map_seed"),
    ],
)
def test_bad_arguments_are_named(kwargs, name):
    base = dict(n_ratings=50, smoothness=1.0, intrinsic_dim=2, ambient_dim=16, seed=0)
    base.update(kwargs)
    with pytest.raises(ValueError, match=name):
        make_holder_synthetic(**base)


def test_bad_covariates_are_rejected_by_the_maps():
    f = holder_map(1.0, 3, 2, levels=2, seed=0)
    with pytest.raises(ValueError, match=r"D >= intrinsic_dim=3"):
        f(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="tail_fraction"):
        default_levels(1.0, 2, 100, tail_fraction=0.0)


def test_excess_risk_of_the_truth_by_hand_is_zero_and_of_a_shifted_one_the_shift_squared():
    data, truth = make_holder_synthetic(100, smoothness=1.0, intrinsic_dim=2, seed=0)
    assert isinstance(SyntheticData(data, truth), tuple)

    def exact(x_u, x_i):
        # R*(x_u, x_i) = <f*(x_u), g*(x_i)> from the definition, not from truth.rating.
        f = np.array([holder_by_hand(truth.user_map, x[:2].astype(np.float64)) for x in x_u])
        g = np.array([holder_by_hand(truth.item_map, x[:2].astype(np.float64)) for x in x_i])
        return f @ g.T

    risk = excess_risk(exact, truth, n_users=30, n_items=20, seed=0)
    assert risk.value < 1e-20 and risk.n_pairs == 600
    shifted = excess_risk(lambda x_u, x_i: exact(x_u, x_i) + 0.1, truth,
                          n_users=30, n_items=20, seed=0)
    assert shifted.value == pytest.approx(0.01, rel=1e-9)
