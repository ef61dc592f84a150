"""Cold-start evaluation: id dropout and id zeroing for the hybrid model, and the
fallbacks of the scikit-surprise competitors on users they never saw."""

from __future__ import annotations

import numpy as np
import pytest

from ttm_jax import ModelConfig, RatingData, TrainConfig, TwoTowerRegressor, evaluate
from ttm_jax.data import (
    append_one_hot_ids,
    cold_start_split,
    load_movielens,
    with_id_dropout,
    zero_unseen_ids,
)


def small_data(seed=0, n_users=40, n_items=30, density=0.5):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(mask)
    xu = rng.random((n_users, 3))
    xi = rng.random((n_items, 2))
    r = np.clip(np.round(3 + xu[u, 0] - xi[i, 1] + rng.normal(0, 0.5, u.size)), 1, 5)
    return RatingData(xu, xi, u, i, r)


def test_append_one_hot_ids():
    data = append_one_hot_ids(small_data())
    assert data.user_features.shape == (40, 3 + 40)
    np.testing.assert_array_equal(data.item_features[:, 2:], np.eye(30))


def test_id_dropout_adds_shadow_users_without_ids():
    data = append_one_hot_ids(small_data())
    split = cold_start_split(data, user_fraction=0.2, test_fraction=0.2,
                             validation_fraction=0.1, seed=0)
    aug = with_id_dropout(split.train, split.validation, user_id_columns=40, fraction=0.5, seed=0)
    t = aug.train
    assert t.user_features.shape == (80, 43)
    np.testing.assert_array_equal(t.user_features[:40], data.user_features)
    # Shadows: same covariates, id block zero.
    np.testing.assert_array_equal(t.user_features[40:, :3], data.user_features[:, :3])
    assert not t.user_features[40:, 3:].any()
    n_copies = t.n_ratings - split.train.n_ratings
    assert 0.3 * split.train.n_ratings < n_copies < 0.7 * split.train.n_ratings
    copies = slice(split.train.n_ratings, None)
    assert (t.user_ids[copies] >= 40).all()
    # Items untouched; validation moved onto the augmented tables.
    np.testing.assert_array_equal(t.item_features, data.item_features)
    assert aug.validation.user_features is t.user_features
    np.testing.assert_array_equal(aug.validation.ratings, split.validation.ratings)


def test_id_dropout_on_both_sides_trains_all_three_fallbacks():
    data = append_one_hot_ids(small_data())
    aug = with_id_dropout(data, user_id_columns=40, item_id_columns=30, fraction=1.0, seed=1)
    u = aug.train.user_ids[data.n_ratings:] >= 40
    i = aug.train.item_ids[data.n_ratings:] >= 30
    assert (u & ~i).any() and (~u & i).any() and (u & i).any() and not (~u & ~i).any()


def test_zero_unseen_ids_only_touches_cold_entities():
    data = append_one_hot_ids(small_data())
    split = cold_start_split(data, user_fraction=0.25, item_fraction=0.1, seed=0)
    test = zero_unseen_ids(split.test, split.train, user_id_columns=40, item_id_columns=30)
    seen_u = np.unique(split.train.user_ids)
    seen_i = np.unique(split.train.item_ids)
    ids_u = test.user_features[:, 3:]
    assert (ids_u[seen_u] == np.eye(40)[seen_u]).all()
    assert not np.delete(ids_u, seen_u, axis=0).any()
    assert not np.delete(test.item_features[:, 2:], seen_i, axis=0).any()
    np.testing.assert_array_equal(test.user_features[:, :3], data.user_features[:, :3])


def test_with_id_dropout_rejects_bad_arguments():
    data = append_one_hot_ids(small_data())
    with pytest.raises(ValueError, match="fraction"):
        with_id_dropout(data, user_id_columns=40, fraction=0.0, seed=0)
    with pytest.raises(ValueError, match="user_id_columns > 0 or item_id_columns > 0"):
        with_id_dropout(data, seed=0)


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
    """End to end on MovieLens: hybrid fit with user-id dropout, cold users scored
    through their covariates; a short fit, so only sanity is checked."""
    data = load_movielens(movielens_dir, user_ids=True, item_ids=True)
    split = cold_start_split(data, user_fraction=0.2, test_fraction=0.2,
                             validation_fraction=0.1, seed=0)
    aug = with_id_dropout(split.train, split.validation, user_id_columns=943, fraction=0.5,
                          seed=0)
    reg = TwoTowerRegressor(
        ModelConfig(hidden=(), embedding_dim=16, standardize=False),
        TrainConfig(optimizer="adam", learning_rate=3e-3, batch_size=8192, penalty_weight=3e-4,
                    max_epochs=6, eval_every_epochs=2),
        seed=0, progress=False,
    ).fit(aug.train, aug.validation)
    test = zero_unseen_ids(split.test, split.train, user_id_columns=943, item_id_columns=1682)
    ev = evaluate(reg.model_, test, split.train)
    assert ev.cold_user.n > 10_000 and ev.warm.n > 10_000
    # Better than the global mean (≈1.12) on both groups even after a few epochs.
    assert ev.warm.rmse < 1.05 and ev.cold_user.rmse < 1.1
