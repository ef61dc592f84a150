"""Towers, the two-tower score, and the penalties of eq. 2."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from ttm_jax import TwoTower, embed_items, embed_users, predict_pairs
from ttm_jax.config import ACTIVATION_NAMES
from ttm_jax.model import ACTIVATIONS, penalty

architectures = st.fixed_dictionaries(
    dict(
        d_u=st.integers(1, 12),
        d_i=st.integers(1, 12),
        hidden=st.lists(st.integers(1, 16), max_size=3).map(tuple),
        p=st.integers(1, 8),
        activation=st.sampled_from(sorted(ACTIVATIONS)),
        seed=st.integers(0, 2**31 - 1),
    )
)


# Each architecture compiles afresh, so these draw fewer examples.
@settings(max_examples=10)
@given(arch=architectures, n=st.integers(1, 40))
def test_predictions_have_one_finite_score_per_pair(arch, n):
    model = TwoTower(arch["d_u"], arch["d_i"], arch["hidden"], arch["p"], arch["activation"],
                     rngs=nnx.Rngs(arch["seed"]))
    rng = np.random.default_rng(arch["seed"])
    x_u = rng.uniform(size=(n, arch["d_u"])).astype(np.float32)
    x_i = rng.uniform(size=(n, arch["d_i"])).astype(np.float32)
    scores = model(jnp.asarray(x_u), jnp.asarray(x_i))
    assert scores.shape == (n,) and bool(jnp.isfinite(scores).all())
    # The numpy inference path gives the same scores.
    np.testing.assert_allclose(
        predict_pairs(model, x_u, x_i, np.arange(n), np.arange(n)), scores, rtol=1e-4, atol=1e-5
    )
    assert embed_users(model, x_u).shape == (n, arch["p"])


@settings(max_examples=10)
@given(n_users=st.integers(1, 30), n_items=st.integers(1, 30), p=st.integers(1, 6),
       seed=st.integers(0, 1000))
def test_one_hot_ids_and_linear_towers_are_matrix_factorisation(n_users, n_items, p, seed):
    model = TwoTower(n_users, n_items, hidden=(), embedding_dim=p, rngs=nnx.Rngs(seed))
    # A one-layer linear tower on one-hot ids is an embedding table: row u of
    # U = A_u^T + b_u is user u's factor vector.
    u_layer, i_layer = model.user_tower.layers[0], model.item_tower.layers[0]
    U = np.asarray(u_layer.kernel[...]) + np.asarray(u_layer.bias[...])
    V = np.asarray(i_layer.kernel[...]) + np.asarray(i_layer.bias[...])
    users, items = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    users, items = users.ravel(), items.ravel()
    pred = predict_pairs(model, np.eye(n_users), np.eye(n_items), users, items)
    np.testing.assert_allclose(pred, np.sum(U[users] * V[items], axis=1), rtol=1e-5, atol=1e-6)


@settings(max_examples=10)
@given(arch=architectures)
def test_penalties_equal_a_hand_computation(arch):
    model = TwoTower(arch["d_u"], arch["d_i"], arch["hidden"], arch["p"],
                     rngs=nnx.Rngs(arch["seed"]))
    params = nnx.state(model, nnx.Param)
    l1 = l2 = 0.0
    for tower in (model.user_tower, model.item_tower):
        for layer in tower.layers:
            A, b = np.asarray(layer.kernel[...], np.float64), np.asarray(layer.bias[...], np.float64)
            l2 += np.sum(A**2) + np.sum(b**2)  # ‖A‖_F² + ‖b‖₂²
            l1 += np.sum(np.abs(A)) + np.sum(np.abs(b))
    np.testing.assert_allclose(float(penalty(params, "l2")), l2, rtol=1e-5)
    np.testing.assert_allclose(float(penalty(params, "l1")), l1, rtol=1e-5)
    assert float(penalty(params, "none")) == 0.0


def test_unknown_penalty_is_rejected():
    with pytest.raises(ValueError, match="penalty kind='l3'"):
        penalty({"w": jnp.ones(3)}, "l3")


def test_wrong_covariate_width_gives_a_clear_error():
    model = TwoTower(5, 7, (8,), 3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"user covariates have shape \(4, 6\).*\[n, 5\]"):
        embed_users(model, np.zeros((4, 6)))
    with pytest.raises(ValueError, match=r"item tower was built for \[n, 7\]"):
        embed_items(model, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="this tower expects"):
        model(jnp.zeros((2, 5)), jnp.zeros((2, 8)))


def test_unknown_activation_is_rejected():
    with pytest.raises(ValueError, match="activation='swish2' is not known"):
        TwoTower(2, 2, (3,), 2, "swish2", rngs=nnx.Rngs(0))


def test_same_seed_same_initialisation():
    a = nnx.state(TwoTower(4, 4, (8,), 2, rngs=nnx.Rngs(3)), nnx.Param)
    b = nnx.state(TwoTower(4, 4, (8,), 2, rngs=nnx.Rngs(3)), nnx.Param)
    assert all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(jnp.array_equal, a, b)))


def test_every_configurable_activation_has_a_function_and_no_other():
    assert tuple(ACTIVATIONS) == ACTIVATION_NAMES


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden="64"), r"hidden='64' must be a sequence of ints, e\.g\. hidden=\(64, 64\)"),
    (dict(hidden=(64, 0)), r"hidden\[1\]=0 must be an integer >= 1"),
    (dict(hidden=(64.0,)), r"hidden\[0\]=64.0 must be an int"),
    (dict(embedding_dim=2.5), "embedding_dim=2.5 must be an int, not float"),
    (dict(embedding_dim=True), "embedding_dim=True must be an int, not bool"),
    (dict(activation="swish"), "activation='swish': choose one of"),
    (dict(standardize="yes"), "standardize='yes' must be True or False"),
])
def test_bad_model_configuration_is_named(kwargs, message):
    from ttm_jax import ModelConfig

    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)
    with pytest.raises(TypeError):  # InvalidArgument is both
        ModelConfig(**kwargs)


def test_a_covariate_near_1e20_is_standardised_not_zeroed():
    from ttm_jax import ModelConfig, RatingData, init_model

    # Its variance (1e40) overflows float32: computed in float32, the column would
    # become NaN or 0 after standardisation.
    x_u = np.stack([1e20 * (1.0 + np.arange(5) / 10), np.linspace(0, 1, 5)], axis=1)
    data = RatingData(x_u, np.eye(3), np.arange(5), np.array([0, 1, 2, 0, 1]),
                      np.arange(5, dtype=float))
    model = init_model(ModelConfig(hidden=(8,), embedding_dim=2), data, key=jax.random.key(0))
    mean = np.asarray(model.user_tower.mean[...], np.float64)
    scale = np.asarray(model.user_tower.scale[...], np.float64)
    z = (data.user_features.astype(np.float64) - mean) / scale
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-5)
    # Users that differ only in that column get different embeddings.
    twins = np.array(data.user_features[:2])
    twins[1, 1] = twins[0, 1]
    emb = embed_users(model, twins)
    assert np.isfinite(emb).all() and not np.allclose(emb[0], emb[1])
