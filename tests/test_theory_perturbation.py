"""Lemma 2 (parameter perturbation) and Lemma 3 (bracketing entropy) on library towers."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st

from theory import (
    TowerClass,
    bracketing_entropy_bound,
    lemma1_widths,
    lemma2_constant,
    network_size,
    param_scale,
    perturbation_bound,
)
from ttm_jax.model.towers import Tower

WIDTHS = st.sampled_from([1, 2, 3, 5])


def rescaled(tower: Tower, gain: float, rng: np.random.Generator) -> Tower:
    """Scale every kernel by ``gain`` and give every bias a random value (saturates σ)."""
    for layer in tower.layers:
        layer.kernel[...] = layer.kernel[...] * jnp.float32(gain)
        shape = layer.bias[...].shape
        layer.bias[...] = jnp.asarray(rng.uniform(-gain, gain, shape), jnp.float32)
    return tower


def perturbed(tower: Tower, delta: float, rng: np.random.Generator) -> tuple[Tower, float]:
    """A copy with every weight and bias moved by at most δ, and the realised δ (after float32)."""
    graphdef, params, rest = nnx.split(tower, nnx.Param, ...)
    realised = [0.0]

    def move(value: jax.Array) -> jax.Array:
        old = np.asarray(value, np.float64)
        if rng.random() < 0.5:  # corners of the δ-box, where the bound is hardest to meet
            step = delta * rng.choice([-1.0, 1.0], size=old.shape)
        else:
            step = rng.uniform(-delta, delta, size=old.shape)
        new = jnp.asarray(old + step, jnp.float32)
        realised[0] = max(realised[0], float(np.max(np.abs(np.asarray(new, np.float64) - old))))
        return new

    moved = jax.tree.map(move, params)
    return nnx.merge(graphdef, moved, rest), realised[0]


def inputs_in_unit_ball(rng: np.random.Generator, width: int) -> jax.Array:
    """Inputs with ‖x‖_∞ ≤ 1: box corners (where the worst case sits) and interior points."""
    corners = rng.choice([-1.0, 1.0], size=(32, width))
    inside = rng.uniform(-1.0, 1.0, size=(32, width))
    return jnp.asarray(np.concatenate([corners, inside]), jnp.float32)


def float32_slack(*outputs: np.ndarray) -> float:
    # The towers run in float32: allow rounding of ~1e-5 relative to the outputs' size.
    return 1e-5 * (1.0 + max(float(np.abs(out).max()) for out in outputs))


@given(
    in_features=WIDTHS,
    hidden=st.lists(WIDTHS, max_size=3),
    out_features=WIDTHS,
    activation=st.sampled_from(["relu", "sigmoid", "silu", "tanh"]),
    gain=st.floats(0.1, 3.0),
    delta=st.floats(1e-3, 0.5),
    standardise=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_lemma2_bound_is_never_violated(
    in_features, hidden, out_features, activation, gain, delta, standardise, seed
):
    rng = np.random.default_rng(seed)
    tower = rescaled(Tower(in_features, hidden, out_features, activation, rngs=nnx.Rngs(seed)),
                     gain, rng)
    if standardise:
        tower.set_standardization(
            jnp.asarray(rng.uniform(-1.0, 1.0, in_features), jnp.float32),
            jnp.asarray(rng.uniform(0.2, 2.0, in_features), jnp.float32),
        )
    other, realised = perturbed(tower, delta, rng)
    x = inputs_in_unit_ball(rng, in_features)
    f, g = np.asarray(tower(x), np.float64), np.asarray(other(x), np.float64)
    change = np.linalg.norm(f - g, axis=1)

    bound = perturbation_bound(tower, realised)
    assert change.max() <= bound.l2 + float32_slack(f, g)
    assert np.abs(f - g).max(axis=0).max() <= bound.sup + float32_slack(f, g)
    assert np.all(np.abs(f - g).max(axis=0) <= bound.coordinate + float32_slack(f, g))

    # The class form: both networks have D(f) ≤ B, so ‖f − f'‖_2 ≤ √p · C · δ.
    scale = max(param_scale(tower), param_scale(other))
    widths = network_size(tower).widths
    constant = lemma2_constant(widths, scale, activation=activation,
                               input_bound=bound.input_sup[0])
    assert change.max() <= math.sqrt(out_features) * constant * realised + float32_slack(f, g)


def test_lemma2_bound_is_attained_by_a_linear_tower():
    # f(x) = A x + b; moving A by δ·sign(x) and b by +δ at a corner x gives exactly
    # δ (‖x‖_1 + 1) per output, which is the bound.
    tower = Tower(3, (), 2, "relu", rngs=nnx.Rngs(0))
    delta = 0.125
    x = np.array([[1.0, -1.0, 1.0]], np.float32)
    other = nnx.clone(tower)
    layer = other.layers[0]
    layer.kernel[...] = layer.kernel[...] + jnp.asarray(delta * np.sign(x).T * np.ones((3, 2)),
                                                        jnp.float32)
    layer.bias[...] = layer.bias[...] + jnp.float32(delta)
    change = np.asarray(other(jnp.asarray(x)) - tower(jnp.asarray(x)), np.float64)
    bound = perturbation_bound(tower, delta)
    np.testing.assert_allclose(np.abs(change[0]), bound.coordinate, rtol=1e-6)
    assert bound.l2 == pytest.approx(delta * 4.0 * math.sqrt(2.0))


def test_lemma2_constant_grows_like_width_times_scale_to_the_depth():
    # ReLU, equal widths W: C is a polynomial in WB of degree L − 1 in the scale B = 1 …
    small = lemma2_constant((10, 10, 10, 10, 1), 1.0)
    large = lemma2_constant((20, 20, 20, 20, 1), 1.0)
    assert 8.0 <= large / small <= 32.0  # doubling W multiplies C by 2^3 to 2^4
    # … and every layer adds a factor WB.
    assert lemma2_constant((10,) * 6 + (1,), 1.0) / lemma2_constant((10,) * 5 + (1,), 1.0) > 10.0


def test_lemma3_bound_on_one_layer_towers_by_hand():
    # With L = L̃ = 1 each tower of Lemma 1's class is one affine map f(x) = A x + b,
    # A [p, D]. Moving A and b by δ moves f_j(x) by at most δ (Σ_i |x_i| + 1) ≤ δ (D + 1)
    # on ‖x‖_∞ ≤ 1, so Lemma 2's C is D + 1: 4 for D_u = 3, 3 for D_i = 2. SPEC §5 then
    # gives C_2 = 28 · max{1, 1} = 28 and C_3 = 2 p^{3/2} M max{B, B̃} = 2 · 8 · 1 · 2 = 32
    # for p = 4, M = 1, B = 0.5, B̃ = 2, and at ε = 0.5
    #   28 · (2 log 2 + 3 log 3) · log(32 · (4 + 3) / 0.5) = 28 · (2 log 2 + 3 log 3) · log 448.
    user = TowerClass(in_features=3, width=2, depth=1, scale=0.5)
    item = TowerClass(in_features=2, width=3, depth=1, scale=2.0)
    got = bracketing_entropy_bound(0.5, user=user, item=item, embedding_dim=4, sup_bound=1.0)
    assert got == pytest.approx(28 * (2 * math.log(2) + 3 * math.log(3)) * math.log(448))
    assert got == pytest.approx(800.34, abs=0.01)   # 28 · 4.6821 · 6.1048


DEEP = TowerClass(in_features=5, width=10, depth=3, scale=0.5)
SHALLOW = TowerClass(in_features=4, width=8, depth=2, scale=1.0)


def lemma3(epsilon=1e-3, *, user=DEEP, item=SHALLOW, p=3, m=2.0):
    return bracketing_entropy_bound(epsilon, user=user, item=item, embedding_dim=p, sup_bound=m)


def test_lemma3_bound_scales_in_eps_m_and_p_as_the_lemma_says():
    # The bound is C_2 (W log W + W̃ log W̃) · log(ε^-1 C_3 (C + C̃)): affine in log(1/ε)
    # and log M with slope C_2 (W log W + W̃ log W̃) = 28 · 3 · (10 log 10 + 8 log 8),
    # and in log p through C_3 ∝ p^{3/2} alone (C and C̃ bound one output coordinate's
    # change, which cannot depend on how many other outputs there are).
    slope = 28 * 3 * (10 * math.log(10) + 8 * math.log(8))
    assert lemma3(1e-3 / math.e) - lemma3(1e-3) == pytest.approx(slope)
    assert lemma3(m=4.0) - lemma3(m=2.0) == pytest.approx(slope * math.log(2))
    assert lemma3(p=12) - lemma3(p=3) == pytest.approx(slope * 1.5 * math.log(4))
    # Symmetric in the two towers; larger classes never have a smaller entropy.
    assert lemma3(user=SHALLOW, item=DEEP) == pytest.approx(lemma3())
    for bigger in (DEEP._replace(width=20), DEEP._replace(depth=4), DEEP._replace(scale=1.0),
                   DEEP._replace(in_features=9)):
        assert lemma3(user=bigger) > lemma3()
    assert lemma1_widths(5, 10, 3, 3) == (5, 20, 20, 3)


def test_lemma3_bound_falls_with_the_bracket_size_and_stays_non_negative():
    cls = TowerClass(in_features=5, width=10, depth=3, scale=0.5)
    values = [bracketing_entropy_bound(eps, user=cls, item=cls, embedding_dim=2, sup_bound=1.0)
              for eps in (1e-4, 1e-2, 1.0, 1e30)]
    assert values == sorted(values, reverse=True)
    assert values[-1] == 0.0


def test_bad_lemma_arguments_raise_naming_the_argument():
    layers = [(np.ones((1, 2)), np.zeros(1))]
    with pytest.raises(ValueError, match="delta"):
        perturbation_bound(layers, -0.1, activation="relu")
    with pytest.raises(ValueError, match="activation"):
        perturbation_bound(layers, 0.1)
    with pytest.raises(ValueError, match="input_bound"):
        perturbation_bound(layers, 0.1, activation="relu", input_bound=0.0)
    with pytest.raises(ValueError, match="scale"):
        lemma2_constant((2, 1), 0.0)
    with pytest.raises(ValueError, match="widths"):
        lemma2_constant((2,), 1.0)
    cls = TowerClass(in_features=5, width=10, depth=3, scale=0.5)
    with pytest.raises(ValueError, match="epsilon"):
        bracketing_entropy_bound(0.0, user=cls, item=cls, embedding_dim=2, sup_bound=1.0)
