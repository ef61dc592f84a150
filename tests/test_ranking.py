"""Ranking metrics of top-k lists (recall@k, NDCG@k, MAP@k): a worked example by hand, the
oracle list scores 1, items rated in training never enter a list, and a model ranks as
its own score matrix does."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ttm_jax as ttm
from ttm_jax import RatingData
from ttm_jax.evaluate import evaluate_ranking, ranking_metrics


def ratings(n_users, n_items, pairs, values=None):
    u, i = (np.array(x, np.int32) for x in zip(*pairs))
    r = np.full(u.size, 5.0) if values is None else np.asarray(values, np.float64)
    return RatingData(np.zeros((n_users, 1)), np.zeros((n_items, 1)), u, i, r)


def test_a_worked_example():
    # User 0 likes items 1 and 4 and is shown [4, 2, 1]; user 1 likes item 0, shown [3, 5, 6].
    test = ratings(2, 7, [(0, 1), (0, 4), (1, 0)])
    got = ranking_metrics(np.array([[4, 2, 1], [3, 5, 6]]), np.array([0, 1]), test)
    dcg, ideal = 1 / math.log2(2) + 1 / math.log2(4), 1 / math.log2(2) + 1 / math.log2(3)
    assert got.k == 3 and got.n_users == 2
    assert got.recall == pytest.approx((2 / 2 + 0) / 2)
    assert got.ndcg == pytest.approx((dcg / ideal + 0) / 2)
    assert got.map == pytest.approx(((1 / 1 + 2 / 3) / 2 + 0) / 2)


def test_the_threshold_decides_what_is_relevant():
    test = ratings(1, 4, [(0, 0), (0, 1)], values=[5.0, 2.0])
    lists = np.array([[1, 0]])
    assert ranking_metrics(lists, np.array([0]), test).map == pytest.approx((1 + 1) / 2)
    # Only item 0 is relevant at 4 stars: found second.
    liked = ranking_metrics(lists, np.array([0]), test, threshold=4.0)
    assert liked.map == pytest.approx(0.5) and liked.recall == 1.0


@given(st.integers(0, 2**31 - 1), st.integers(1, 8))
def test_the_oracle_list_scores_one_and_a_reversed_one_less(seed, k):
    rng = np.random.default_rng(seed)
    n_users, n_items = 6, 12
    held = rng.random((n_users, n_items)) < 0.3
    held[:, 0] = True  # every user has a relevant item
    held[:, -1] = False  # the last item each user rated in training
    test = ratings(n_users, n_items, list(zip(*np.nonzero(held))))
    train = ratings(n_users, n_items, [(u, n_items - 1) for u in range(n_users)])
    oracle = evaluate_ranking(held.astype(np.float64) + rng.random(held.shape) * 0.1, test,
                              train, k=k)
    assert (oracle.recall, oracle.ndcg, oracle.map) == pytest.approx((1.0, 1.0, 1.0))
    worst = evaluate_ranking(-held.astype(np.float64), test, train, k=k)
    assert worst.ndcg <= oracle.ndcg and worst.recall <= oracle.recall


def test_items_rated_in_training_never_enter_a_list():
    # The scores put item 0 first for everyone, but user 0 rated it in training.
    train = ratings(2, 3, [(0, 0), (1, 1)])
    test = ratings(2, 3, [(0, 1), (1, 0)])
    scores = np.array([[9.0, 1.0, 0.0], [9.0, 1.0, 0.0]])
    got = evaluate_ranking(scores, test, train, k=1)
    assert got.recall == 1.0  # user 0's list is [1], user 1's is [0]


def test_a_model_ranks_as_its_score_matrix():
    data, _ = ttm.make_synthetic(40, 30, 600, intrinsic_dim=2, ambient_dim=3, seed=0)
    split = ttm.random_split(data, 0.3, seed=0)
    model = ttm.init_model(ttm.ModelConfig(hidden=(8,), embedding_dim=3, user_ids=True),
                           split.train, key=jax.random.key(0))
    u, i = np.divmod(np.arange(40 * 30), 30)
    scores = ttm.predict_pairs(model, data.user_features, data.item_features, u, i)
    by_model = evaluate_ranking(model, split.test, split.train, k=5, threshold=0.0)
    by_scores = evaluate_ranking(np.asarray(scores).reshape(40, 30), split.test, split.train,
                                 k=5, threshold=0.0)
    assert by_model == pytest.approx(by_scores, rel=1e-6)


def test_bad_arguments_are_named():
    test = ratings(2, 3, [(0, 1)])
    with pytest.raises(ValueError, match="k=0 must be an integer in 1 .. 3"):
        evaluate_ranking(np.zeros((2, 3)), test, test, k=0)
    with pytest.raises(ValueError, match=r"expected \[n_users, n_items\] = \[2, 3\]"):
        evaluate_ranking(np.zeros((3, 2)), test, test, k=1)
    with pytest.raises(ValueError, match="must be"):
        ranking_metrics(np.zeros(3, np.int64), np.zeros(3, np.int64), test)
