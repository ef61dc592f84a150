"""Network size measures U(f), D(f), Z(f) (SPEC §3) on hand-built and library towers."""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given
from hypothesis import strategies as st

from theory import (
    NetworkSize,
    PerTower,
    depth,
    effective_params,
    network_size,
    param_scale,
    tower_layers,
)
from ttm_jax.model.towers import Tower, TwoTower

# A 3 → 2 → 1 tower written in the paper's orientation, A_l [p_l, p_{l-1}].
HAND_LAYERS = [
    (np.array([[1.0, 0.0, -2.0], [0.0, 0.0, 3.0]]), np.array([0.0, -5.0])),
    (np.array([[0.5, 0.0]]), np.array([0.0])),
]
# Non-zero entries: 3 in A_1, 1 in b_1, 1 in A_2, 0 in b_2.
HAND_Z, HAND_D, HAND_U = 5, 5.0, 2


def hand_tower() -> Tower:
    """The same network as HAND_LAYERS inside a library Tower (kernels are A_l transposed)."""
    tower = Tower(3, (2,), 1, "relu", rngs=nnx.Rngs(0))
    for layer, (weight, bias) in zip(tower.layers, HAND_LAYERS):
        layer.kernel[...] = jnp.asarray(weight.T, jnp.float32)
        layer.bias[...] = jnp.asarray(bias, jnp.float32)
    return tower


def test_hand_counts_on_a_list_of_pairs():
    assert effective_params(HAND_LAYERS) == HAND_Z
    assert param_scale(HAND_LAYERS) == HAND_D
    assert depth(HAND_LAYERS) == HAND_U
    assert network_size(HAND_LAYERS) == NetworkSize(HAND_U, HAND_D, HAND_Z, (3, 2, 1))


def test_every_form_of_a_tower_gives_the_hand_counts():
    tower = hand_tower()
    _, params, _ = nnx.split(tower, nnx.Param, ...)
    forms = [tower, params, nnx.state(tower), nnx.to_pure_dict(nnx.state(tower))]
    for form in forms:
        assert network_size(form) == NetworkSize(HAND_U, HAND_D, HAND_Z, (3, 2, 1))


def test_layers_come_back_in_the_papers_orientation():
    layers = tower_layers(hand_tower())
    for layer, (weight, bias) in zip(layers, HAND_LAYERS):
        np.testing.assert_array_equal(layer.weight, weight)
        np.testing.assert_array_equal(layer.bias, bias)


def test_standardiser_is_not_a_parameter():
    tower = hand_tower()
    tower.set_standardization(jnp.full((3,), 7.0), jnp.full((3,), 9.0))
    assert effective_params(nnx.state(tower)) == HAND_Z
    assert param_scale(nnx.state(tower)) == HAND_D


def test_zeroing_weights_lowers_z_by_the_number_zeroed():
    tower = Tower(4, (5, 3), 2, "tanh", rngs=nnx.Rngs(1))
    before = effective_params(tower)
    kernel = tower.layers[0].kernel
    zeroed = int(np.count_nonzero(np.asarray(kernel[...])[:2]))
    kernel[...] = kernel[...].at[:2].set(0.0)  # input features 0, 1 cut off
    assert effective_params(tower) == before - zeroed


def test_tolerance_treats_tiny_weights_as_zero():
    layers = [(np.array([[1e-9, -1e-7, 0.5]]), np.array([1e-12]))]
    assert effective_params(layers) == 4
    assert effective_params(layers, atol=1e-6) == 1


def test_two_tower_model_reports_each_tower_and_the_total():
    model = TwoTower(6, 4, hidden=(5,), embedding_dim=3, user_hidden=(5, 5), rngs=nnx.Rngs(2))
    model.item_tower.layers[0].bias[...] = jnp.full((5,), 4.0, jnp.float32)
    user, item = network_size(model.user_tower), network_size(model.item_tower)
    size = network_size(model)
    assert isinstance(size, PerTower)
    assert size.user == user and size.item == item
    assert size.total.depth == max(user.depth, item.depth) == 3
    assert size.total.scale == max(user.scale, item.scale) == 4.0
    assert size.total.effective_params == user.effective_params + item.effective_params
    assert effective_params(model) == PerTower(
        user.effective_params, item.effective_params, size.total.effective_params
    )
    assert depth(nnx.state(model)) == PerTower(3, 2, 3)
    _, params, _ = nnx.split(model, nnx.Param, ...)
    assert param_scale(params) == PerTower(user.scale, 4.0, 4.0)


# Few distinct widths: each new kernel shape costs a jit compilation of the initialiser.
WIDTHS = st.sampled_from([1, 2, 3, 5])


@given(
    in_features=WIDTHS,
    hidden=st.lists(WIDTHS, max_size=3),
    out_features=WIDTHS,
    seed=st.integers(0, 2**31 - 1),
)
def test_measures_match_counts_over_random_architectures(in_features, hidden, out_features, seed):
    tower = Tower(in_features, hidden, out_features, "relu", rngs=nnx.Rngs(seed))
    widths = [in_features, *hidden, out_features]
    kernel_entries = sum(a * b for a, b in itertools.pairwise(widths))
    # nnx.Linear starts with zero biases and (almost surely) non-zero kernels.
    assert effective_params(tower) == kernel_entries
    assert depth(tower) == len(hidden) + 1
    kernels = [np.asarray(layer.kernel[...], np.float64) for layer in tower.layers]
    assert param_scale(tower) == max(np.abs(k).max() for k in kernels)

    rng = np.random.default_rng(seed)
    for layer in tower.layers:
        layer.bias[...] = jnp.asarray(rng.uniform(0.5, 1.0, layer.bias[...].shape), jnp.float32)
    assert effective_params(tower) == kernel_entries + sum(widths[1:])
    assert network_size(tower).widths == tuple(widths)


def test_bad_towers_raise_naming_the_problem():
    with pytest.raises(ValueError, match="atol"):
        effective_params(HAND_LAYERS, atol=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        param_scale([(np.array([[np.nan]]), np.zeros(1))])
    with pytest.raises(ValueError, match="bias"):
        depth([(np.ones((2, 3)), np.zeros(3))])
    with pytest.raises(ValueError, match="layer 1"):
        depth([(np.ones((2, 3)), np.zeros(2)), (np.ones((1, 4)), np.zeros(1))])
    with pytest.raises(ValueError, match="two-tower"):
        tower_layers(TwoTower(2, 2, hidden=(), embedding_dim=1, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="no layers"):
        depth([])
