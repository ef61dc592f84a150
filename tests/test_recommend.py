"""Top-k recommendation: exact against brute force, seen items excluded, known and new
users and items, embedding export."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttm_jax import (
    ModelConfig,
    TwoTowerRegressor,
    embed_items,
    embed_users,
    export_embeddings,
    init_model,
    make_synthetic,
    predict_pairs,
    recommend,
    top_k,
)
from ttm_jax.serving import index_items


def brute_force_top_k(scores: np.ndarray, seen: np.ndarray, k: int) -> np.ndarray:
    """The k best scores per row of ``scores [n, m]`` with ``seen [n, m]`` masked out."""
    masked = np.where(seen, -np.inf, scores)
    return -np.sort(-masked, axis=1)[:, :k]


@settings(max_examples=15)
@given(
    n=st.integers(1, 40),
    m=st.integers(1, 70),
    k_frac=st.floats(0.0, 1.0),
    seen_frac=st.sampled_from([0.0, 0.3, 0.9]),
    ties=st.booleans(),
    user_batch=st.sampled_from([4, 16]),
    item_chunk=st.sampled_from([8, 32]),
    seed=st.integers(0, 2**31 - 1),
)
def test_top_k_matches_brute_force_and_never_returns_a_seen_item(
    n, m, k_frac, seen_frac, ties, user_batch, item_chunk, seed
):
    rng = np.random.default_rng(seed)
    k = 1 + int(k_frac * (min(m, 8) - 1))
    # Small integer embeddings make many exact ties; Gaussian ones make none.
    def draw(shape):
        return rng.integers(-2, 3, shape) if ties else rng.normal(size=shape)

    u = draw((n, 3)).astype(np.float32)
    v = draw((m, 3)).astype(np.float32)
    seen = rng.random((n, m)) < seen_frac
    rows, items = np.nonzero(seen)

    recs = top_k(u, v, k, offset=0.5, exclude=(rows, items), user_batch=user_batch,
                 item_chunk=item_chunk)

    exact = u.astype(np.float64) @ v.T.astype(np.float64) + 0.5
    want = brute_force_top_k(exact, seen, k)
    assert recs.item_ids.shape == recs.scores.shape == (n, k)
    np.testing.assert_allclose(recs.scores, want, rtol=1e-5, atol=1e-5)
    for r in range(n):
        ids = recs.item_ids[r]
        valid = ids >= 0
        # Padding (-1, -inf) exactly where the user has fewer than k unseen items.
        assert valid.sum() == min(k, m - seen[r].sum())
        assert np.all(np.isneginf(recs.scores[r][~valid]))
        got = ids[valid]
        assert np.unique(got).size == got.size
        assert not seen[r, got].any()
        # Each id's own score is the one reported (ties may pick either item).
        np.testing.assert_allclose(exact[r, got], recs.scores[r][valid], rtol=1e-5, atol=1e-5)


def test_an_item_index_answers_like_the_raw_embeddings():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(5, 3)), rng.normal(size=(100, 3))
    index = index_items(v, item_chunk=16)  # built once, queried many times
    assert index.n_items == 100 and index.item_chunk == 16
    direct, indexed = top_k(u, v, 4, item_chunk=16), top_k(u, index, 4)
    assert np.array_equal(direct.item_ids, indexed.item_ids)
    assert np.array_equal(direct.scores, indexed.scores)
    with pytest.raises(ValueError, match="k=20 exceeds the index's item_chunk=16"):
        top_k(u, index, 20)


@pytest.fixture(scope="module")
def model_and_data():
    data, truth = make_synthetic(60, 45, 800, intrinsic_dim=3, ambient_dim=5, seed=0)
    model = init_model(ModelConfig(hidden=(8,), embedding_dim=4), data, key=jax.random.key(0))
    return model, data, truth


def _all_scores(model, user_x, item_x):
    n, m = user_x.shape[0], item_x.shape[0]
    uu, ii = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
    return predict_pairs(model, user_x, item_x, uu.ravel(), ii.ravel()).reshape(n, m)


def test_known_users_get_their_best_unseen_items(model_and_data):
    model, data, _ = model_and_data
    users = np.array([0, 7, 7, 59])
    recs = recommend(model, users, k=5, data=data, item_chunk=16)

    scores = _all_scores(model, data.user_features[users], data.item_features)
    seen = np.zeros((data.n_users, data.n_items), bool)
    seen[data.user_ids, data.item_ids] = True
    np.testing.assert_allclose(recs.scores, brute_force_top_k(scores, seen[users], 5),
                               rtol=1e-5, atol=1e-6)
    for row, user in enumerate(users):
        assert not seen[user, recs.item_ids[row]].any()
    assert np.array_equal(recs.item_ids[1], recs.item_ids[2])  # a repeated user, same list

    everything = recommend(model, users, k=5, data=data, exclude_seen=False)
    np.testing.assert_allclose(everything.scores, brute_force_top_k(scores, seen[users] & False, 5),
                               rtol=1e-5, atol=1e-6)


def test_new_users_and_new_items_are_scored_from_covariates(model_and_data):
    model, data, truth = model_and_data
    new_users = truth.sample_users(6, 1)
    new_items = truth.sample_items(30, 2)
    recs = recommend(model, new_users, k=4, items=new_items)
    scores = _all_scores(model, new_users, new_items)
    np.testing.assert_allclose(recs.scores, brute_force_top_k(scores, scores < -np.inf, 4),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(scores, recs.item_ids, 1), recs.scores,
                               rtol=1e-5, atol=1e-6)
    # A known user passed by covariates is the same user, minus the exclusion of seen items.
    by_features = recommend(model, data.user_features[[3]], k=4, data=data)
    by_id = recommend(model, np.array([3]), k=4, data=data, exclude_seen=False)
    np.testing.assert_allclose(by_features.scores, by_id.scores, rtol=1e-6)


def test_candidate_items_given_by_id_return_catalogue_ids(model_and_data):
    model, data, _ = model_and_data
    candidates = np.array([40, 3, 17, 8, 22, 31])
    recs = recommend(model, np.array([1, 2]), k=3, data=data, items=candidates)
    assert np.isin(recs.item_ids[recs.item_ids >= 0], candidates).all()
    seen = set(zip(data.user_ids.tolist(), data.item_ids.tolist()))
    for row, user in enumerate([1, 2]):
        assert not any((user, int(i)) in seen for i in recs.item_ids[row])


def test_exported_embeddings_reproduce_the_scores(model_and_data, tmp_path):
    model, data, _ = model_and_data
    tables = export_embeddings(model, data.user_features, data.item_features)
    assert tables.users.shape == (60, 4) and tables.items.shape == (45, 4)
    direct = _all_scores(model, data.user_features, data.item_features)
    np.testing.assert_allclose(tables.offset + tables.users @ tables.items.T, direct,
                               rtol=1e-5, atol=1e-6)
    folder = tables.save(tmp_path / "emb")
    loaded = np.load(folder / "item_embeddings.npy", allow_pickle=False)
    assert np.array_equal(loaded, tables.items)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k=0), "k=0 must be a positive integer"),
        (dict(k=46), "k=46 exceeds the 45 candidate items"),
        (dict(users=np.zeros((2, 9))), "covariates have 9 columns but the model expects 5"),
        (dict(users=np.array([0.5])), "must hold integers"),
        (dict(users=np.array([60])), "id 60 is out of range"),
        (dict(items=np.array([1, 1])), "candidate ids must be distinct"),
    ],
)
def test_bad_requests_are_named(model_and_data, kwargs, message):
    model, data, _ = model_and_data
    args = dict(users=np.array([0]), k=3, data=data) | kwargs
    with pytest.raises(ValueError, match=message):
        recommend(model, **args)


def _with_nan(x: np.ndarray, row: int, col: int) -> np.ndarray:
    x = np.array(x, np.float64)
    x[row, col] = np.nan
    return x


def test_nan_covariates_are_refused_by_argument_and_row_never_ranked(model_and_data):
    model, data, _ = model_and_data
    users = _with_nan(data.user_features[:4], 2, 1)
    with pytest.raises(ValueError, match=r"users: row 2, column 1: value nan; a model cannot "
                                         "score covariates that are not finite"):
        recommend(model, users, k=3, data=data)
    items = _with_nan(data.item_features[:10], 7, 0)
    items[8, 0] = np.inf
    with pytest.raises(ValueError, match=r"items: row 7, column 0: value nan.*\(2 row\(s\)"):
        recommend(model, data.user_features[:2], k=3, items=items)
    with pytest.raises(ValueError, match="user_features: row 2, column 1"):
        embed_users(model, users)
    with pytest.raises(ValueError, match="item_features: row 7, column 0"):
        embed_items(model, items)
    too_big = np.array(data.item_features[:3], np.float64)
    too_big[1, 1] = 1e39
    with pytest.raises(ValueError, match=r"item_features: row 1, column 1: value 1e\+39 does "
                                         "not fit in float32"):
        embed_items(model, too_big)


def test_predict_pairs_checks_the_rows_it_scores(model_and_data):
    model, data, _ = model_and_data
    x_u = _with_nan(data.user_features, 5, 0)
    # Row 5 is never scored here, so it does not matter ...
    ok = predict_pairs(model, x_u, data.item_features, np.array([0, 1]), np.array([0, 1]))
    assert np.isfinite(ok).all()
    # ... and when it is, it is named by its row in the table.
    with pytest.raises(ValueError, match="user_features: row 5, column 0: value nan"):
        predict_pairs(model, x_u, data.item_features, np.array([0, 5]), np.array([0, 1]))
    with pytest.raises(ValueError, match="item_ids: id 99 at position 1 is out of range"):
        predict_pairs(model, data.user_features, data.item_features, np.array([0, 1]),
                      np.array([0, 99]))
    with pytest.raises(ValueError, match="user_ids: expected a 1-D array of integer row ids"):
        predict_pairs(model, data.user_features, data.item_features, np.array([0.0]),
                      np.array([0]))


def test_a_fitted_regressor_refuses_nan_covariates(model_and_data):
    model, data, _ = model_and_data
    reg = TwoTowerRegressor(progress=False)
    reg.model_ = model  # as fit() leaves it
    x = _with_nan(data.user_features[:3], 0, 2)
    with pytest.raises(ValueError, match="features: row 0, column 2: value nan"):
        reg.user_embeddings(x)
    with pytest.raises(ValueError, match="user_features: row 0, column 2"):
        reg.predict_matrix(x, data.item_features)


def test_non_finite_embeddings_are_not_ranked():
    users = np.array([[1.0, 0.0], [np.nan, 1.0]])
    with pytest.raises(ValueError, match=r"user_embeddings: row 1 is not finite"):
        top_k(users, np.eye(2), k=1)
