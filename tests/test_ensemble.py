"""The mean of two-tower models as one two-tower model (``mean_model``), and the
estimator's ``ensemble=K``: exact mean scores through every scoring path, members that
are the one-model fits of their seeds, and mismatched members refused."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ttm_jax as ttm
from ttm_jax import ModelConfig, RatingData, TrainConfig, TwoTowerRegressor
from ttm_jax.checks import InvalidArgument
from ttm_jax.model import mean_model, mean_model_config


def small_data(seed=0, n_users=40, n_items=30, density=0.3):
    rng = np.random.default_rng(seed)
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    xu, xi = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 4))
    r = 3 + xu[u, 0] * xi[i, 1] + rng.normal(0, 0.3, u.size)
    return RatingData(xu, xi, u, i, r)


def scores(model, data, users, items):
    return np.asarray(ttm.predict_pairs(model, data.user_features, data.item_features,
                                        users, items), np.float64)


@settings(max_examples=12)
@given(hidden=st.sampled_from([(), (6,), (5, 4)]), k=st.integers(1, 4),
       ids=st.booleans(), standardize=st.booleans(), seed=st.integers(0, 2**16))
def test_the_mean_model_scores_the_mean_of_its_members(hidden, k, ids, standardize, seed):
    data = small_data(seed % 7)
    config = ModelConfig(hidden=hidden, embedding_dim=3, activation="tanh", user_ids=ids,
                         item_ids=ids, standardize=standardize)
    members = [ttm.init_model(config, data, key=jax.random.key(seed + j)) for j in range(k)]
    for j, m in enumerate(members):  # distinct offsets too
        m.offset[...] = m.offset[...] + j
    merged = mean_model(members)
    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, data.n_users, 50), rng.integers(0, data.n_items, 50)
    expected = np.mean([scores(m, data, users, items) for m in members], axis=0)
    np.testing.assert_allclose(scores(merged, data, users, items), expected, rtol=1e-4,
                               atol=1e-5)
    assert merged.user_tower.out_features == 3 * k
    # Entities known by covariates alone (the unknown id row) average too.
    new = rng.normal(size=(5, 3)).astype(np.float32)
    items_new = rng.normal(size=(5, 4)).astype(np.float32)
    pair = lambda m: np.asarray(m(new, items_new), np.float64)  # noqa: E731
    np.testing.assert_allclose(pair(merged), np.mean([pair(m) for m in members], axis=0),
                               rtol=1e-4, atol=1e-5)


def test_members_must_share_architecture_and_data():
    data = small_data()
    a = ttm.init_model(ModelConfig(hidden=(4,), embedding_dim=2), data, key=jax.random.key(0))
    b = ttm.init_model(ModelConfig(hidden=(5,), embedding_dim=2), data, key=jax.random.key(1))
    with pytest.raises(ValueError, match=r"models\[1\] has architecture"):
        mean_model([a, b])
    other = small_data(seed=3)
    c = ttm.init_model(ModelConfig(hidden=(4,), embedding_dim=2), other, key=jax.random.key(2))
    with pytest.raises(ValueError, match=r"models\[1\] differs .* standardisation"):
        mean_model([a, c])
    with pytest.raises(TypeError, match="non-empty"):
        mean_model([])


def test_an_ensemble_regressor_is_the_mean_of_its_seeds_fits_and_serves_top_k(tmp_path):
    data = small_data()
    model = ModelConfig(hidden=(), embedding_dim=4, user_ids=True, item_ids=True)
    train = TrainConfig(optimizer="adam", learning_rate=2e-2, batch_size=64, max_epochs=20,
                        eval_every_epochs=5, patience=2)
    ens = TwoTowerRegressor(model, train, seed=7, ensemble=3, progress=False).fit(data)
    alone = [TwoTowerRegressor(model, train, seed=7 + k, progress=False).fit(data)
             for k in range(3)]
    np.testing.assert_allclose(ens.predict(data), np.mean([r.predict(data) for r in alone], 0),
                               rtol=1e-4, atol=1e-5)
    assert [m.seed_ for m in ens.members_] == [7, 8, 9]
    assert ens.result_ is ens.members_[0].result_
    # One two-tower model: top-k lists are the mean scores' top-k, and it saves and loads.
    matrix = ens.predict_matrix(data.user_features, data.item_features,
                                user_ids=np.arange(data.n_users),
                                item_ids=np.arange(data.n_items))
    recs = ttm.recommend(ens.model_, np.array([0, 5]), 3, data=data)
    masked = matrix.copy()
    masked[data.user_ids, data.item_ids] = -np.inf
    for row, user in enumerate([0, 5]):
        assert set(recs.item_ids[row]) == set(np.argsort(-masked[user])[:3])
    # Saved under the members' configuration with every width times K.
    assert ens.model_config_ == mean_model_config(model, 3)
    assert alone[0].model_config_ == model
    ttm.save_model(tmp_path / "ens", ens.model_, ens.model_config_)
    loaded = ttm.load_model(tmp_path / "ens").model
    np.testing.assert_allclose(scores(loaded, data, data.user_ids, data.item_ids),
                               ens.predict(data), rtol=1e-6)


@pytest.mark.parametrize("bad", [0, -1, 2.0, "3", True, None])
def test_a_bad_ensemble_size_is_refused_by_name(bad):
    with pytest.raises(InvalidArgument, match="ensemble"):
        TwoTowerRegressor(ensemble=bad)
    with pytest.raises(InvalidArgument, match="ensemble"):
        TwoTowerRegressor(seed=2**32 - 2, ensemble=3)


def test_a_deep_mean_model_saves_under_the_widened_configuration(tmp_path):
    data = small_data()
    config = ModelConfig(hidden=(6, 5), embedding_dim=3, user_ids=True)
    members = [ttm.init_model(config, data, key=jax.random.key(j)) for j in range(2)]
    merged = mean_model(members)
    wide = mean_model_config(config, 2)
    assert (wide.hidden, wide.embedding_dim, wide.user_ids) == ((12, 10), 6, True)
    ttm.save_model(tmp_path / "mean", merged, wide)
    loaded = ttm.load_model(tmp_path / "mean").model
    np.testing.assert_allclose(scores(loaded, data, data.user_ids, data.item_ids),
                               scores(merged, data, data.user_ids, data.item_ids), rtol=1e-6)
    with pytest.raises(Exception, match="ModelConfig"):
        ttm.save_model(tmp_path / "wrong", merged, config)
