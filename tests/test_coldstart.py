"""Cold-start evaluation: the hybrid model scores users it never saw through its id
tables' unknown row, and the scikit-surprise competitors fall back on their biases."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from ttm_jax import ModelConfig, RatingData, TrainConfig, TwoTowerRegressor, evaluate
from ttm_jax.data import cold_start_split, load_movielens


def small_data(seed=0, n_users=40, n_items=30, density=0.5):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(mask)
    xu = rng.random((n_users, 3))
    xi = rng.random((n_items, 2))
    r = np.clip(np.round(3 + xu[u, 0] - xi[i, 1] + rng.normal(0, 0.5, u.size)), 1, 5)
    return RatingData(xu, xi, u, i, r)


@pytest.mark.parametrize("name", ["append_one_hot_ids", "with_id_dropout", "zero_unseen_ids",
                                  "zero_id_block", "IdDropout"])
def test_the_one_hot_helpers_are_gone_with_a_note(name):
    data = importlib.import_module("ttm_jax.data")
    with pytest.raises(ImportError, match="embedding tables in the model") as info:
        exec(f"from ttm_jax.data import {name}", {})
    assert "ModelConfig" in str(info.value) or "TrainConfig" in str(info.value)
    with pytest.raises(ImportError, match="was removed"):
        getattr(importlib.import_module("ttm_jax.data.ids"), name)
    assert name not in data.__all__


@pytest.mark.parametrize("method", ["svd", "baseline_only", "knn_baseline", "coclustering"])
def test_surprise_fallback_on_cold_users(method):
    pytest.importorskip("surprise")
    from ttm_jax.baselines import fit_predict_baseline

    data = small_data()
    split = cold_start_split(data, user_fraction=0.25, test_fraction=0.2, seed=0)
    res = fit_predict_baseline(method, split.train, split.test, seed=0)
    test = split.test
    cold = ~np.isin(test.user_ids, split.train.user_ids)
    np.testing.assert_array_equal(res.fallback, cold)
    # A cold user gets a prediction that depends on the item only (μ + b_i), or
    # the global mean for CoClustering.
    for item in np.unique(test.item_ids[cold]):
        preds = res.predictions[cold & (test.item_ids == item)]
        assert np.ptp(preds) < 1e-9
    if method == "coclustering":
        np.testing.assert_allclose(res.predictions[cold], split.train.ratings.mean(), rtol=1e-6)
    ev = evaluate(res.predictions, test, split.train)
    assert ev.cold_user is not None and ev.warm is not None


def test_global_mean_needs_no_library():
    from ttm_jax.baselines import fit_predict_baseline

    data = small_data()
    split = cold_start_split(data, user_fraction=0.25, seed=0)
    res = fit_predict_baseline("global_mean", split.train, split.test, seed=0)
    np.testing.assert_allclose(res.predictions, split.train.ratings.mean(), rtol=1e-6)
    with pytest.raises(ValueError, match="not known"):
        fit_predict_baseline("magic", split.train, split.test, seed=0)


def test_hybrid_ttm_scores_cold_movielens_users(movielens_dir):
    """End to end on MovieLens: hybrid fit (id tables) with user-id dropout; cold users
    are scored through the unknown row and their covariates. A short fit, so only
    sanity is checked."""
    data = load_movielens(movielens_dir)
    split = cold_start_split(data, user_fraction=0.2, test_fraction=0.2,
                             validation_fraction=0.1, seed=0)
    reg = TwoTowerRegressor(
        ModelConfig(hidden=(), embedding_dim=16, standardize=False, user_ids=True,
                    item_ids=True),
        TrainConfig(optimizer="adam", learning_rate=3e-3, batch_size=8192, penalty_weight=1e-2,
                    id_penalty_weight=3e-4, user_id_dropout=0.2, max_epochs=6,
                    eval_every_epochs=2),
        seed=0, progress=False,
    ).fit(split.train, split.validation)
    tower = reg.model_.user_tower
    cold = np.setdiff1d(np.arange(data.n_users), split.train.user_ids)
    assert not np.asarray(tower.seen_ids())[cold].any()
    # Dropout trained the unknown row that cold users read.
    assert np.abs(np.asarray(tower.id_table[...])[-1]).max() > 0
    ev = evaluate(reg.model_, split.test, split.train)
    assert ev.cold_user.n > 10_000 and ev.warm.n > 10_000
    # Better than the global mean (≈1.12) on both groups even after a few epochs.
    assert ev.warm.rmse < 1.05 and ev.cold_user.rmse < 1.1
