"""Accuracy of a trained model: RMSE and MAE, overall and by warm/cold pairs; ranking
quality of its top-k lists (recall@k, NDCG@k, MAP@k); and the excess risk
``‖R̂ − R*‖²_{L2(μ_u × μ_i)}`` against a known truth."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ttm_jax.data.ratings import RatingData
from ttm_jax.model.towers import TwoTower
from ttm_jax.serving.inference import predict_pairs
from ttm_jax.serving.recommend import recommend

__all__ = ["Metrics", "Evaluation", "ExcessRisk", "RankingMetrics", "evaluate",
           "evaluate_ranking", "excess_risk", "metrics", "ranking_metrics"]


class Metrics(NamedTuple):
    """RMSE and MAE of ``n`` predictions (rating units)."""

    rmse: float
    mae: float
    n: int


class Evaluation(NamedTuple):
    """Accuracy on a test set, split by whether each pair's user and item were
    seen in training. Groups with no pairs are ``None``.

    Attributes:
      overall: all pairs.
      warm: user and item both have ratings in training.
      cold: every other pair (union of the three below).
      cold_user: user unseen, item seen.
      cold_item: user seen, item unseen.
      cold_both: neither seen.
    """

    overall: Metrics
    warm: Metrics | None
    cold: Metrics | None
    cold_user: Metrics | None
    cold_item: Metrics | None
    cold_both: Metrics | None


def metrics(pred: np.ndarray, target: np.ndarray) -> Metrics:
    """RMSE and MAE of aligned ``[n]`` vectors."""
    pred = np.asarray(pred, np.float64)
    target = np.asarray(target, np.float64)
    if pred.shape != target.shape or pred.ndim != 1:
        raise ValueError(f"pred shape {pred.shape} and target shape {target.shape} must be [n]")
    err = pred - target
    return Metrics(float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err))), int(err.size))


def evaluate(
    model_or_predictions: TwoTower | np.ndarray,
    data: RatingData,
    train: RatingData | None = None,
) -> Evaluation:
    """RMSE/MAE of a model (or of given predictions ``[|Ω|]``) on ``data``.

    Args:
      model_or_predictions: a :class:`TwoTower`, or predictions aligned with
        ``data`` (to score any other method the same way).
      data: the test ratings.
      train: the training ratings; with it, pairs are split into warm and cold.
        Without it every pair counts as warm.
    """
    if isinstance(model_or_predictions, TwoTower):
        pred = predict_pairs(
            model_or_predictions, data.user_features, data.item_features,
            data.user_ids, data.item_ids,
        )
    else:
        pred = np.asarray(model_or_predictions)
        if pred.shape != (data.n_ratings,):
            raise ValueError(
                f"predictions have shape {pred.shape}; expected [{data.n_ratings}], one per rating"
            )
    target = data.ratings
    if train is None:
        seen_u = np.ones(data.n_ratings, bool)
        seen_i = seen_u
    else:
        seen_u = np.isin(data.user_ids, np.unique(train.user_ids))
        seen_i = np.isin(data.item_ids, np.unique(train.item_ids))

    def group(mask):
        return metrics(pred[mask], target[mask]) if mask.any() else None

    return Evaluation(
        overall=metrics(pred, target),
        warm=group(seen_u & seen_i),
        cold=group(~(seen_u & seen_i)),
        cold_user=group(~seen_u & seen_i),
        cold_item=group(seen_u & ~seen_i),
        cold_both=group(~seen_u & ~seen_i),
    )


class RankingMetrics(NamedTuple):
    """Quality of top-``k`` lists against held-out ratings, averaged over users.

    Attributes:
      k: the list length.
      recall: mean over users of ``hits / min(k, |relevant|)`` (so that a
        perfect list scores 1 even for a user with more than ``k`` relevant items).
      ndcg: mean NDCG@k with binary relevance: ``Σ_j rel_j / log2(j + 2)`` over
        the list's positions ``j = 0 .. k-1``, divided by its value for an ideal list.
      map: mean average precision at k: ``Σ_j P@(j+1) · rel_j / min(k, |relevant|)``.
      n_users: users averaged over (those with at least one relevant held-out item).
    """

    k: int
    recall: float
    ndcg: float
    map: float
    n_users: int


def ranking_metrics(top_items: np.ndarray, users: np.ndarray, test: RatingData, *,
                    threshold: float | None = None) -> RankingMetrics:
    """:class:`RankingMetrics` of given top-k lists.

    Args:
      top_items: ``[n, k]`` item ids (rows of the item table), best first; ``-1``
        pads a list shorter than ``k``.
      users: ``[n]`` the user of each list.
      test: the held-out ratings; user ``u``'s relevant items are its items in
        ``test`` (with rating ``>= threshold`` when given).
      threshold: the rating from which a held-out item counts as relevant
        (``None``: every held-out item does).

    Users of ``users`` with no relevant item are left out of the averages.
    """
    top = np.asarray(top_items)
    users = np.asarray(users)
    if top.ndim != 2 or users.shape != (top.shape[0],):
        raise ValueError(f"top_items {top.shape} and users {users.shape} must be [n, k] and [n]")
    k = top.shape[1]
    rel = np.ones(test.n_ratings, bool) if threshold is None else test.ratings >= threshold
    n_items = test.n_items
    rel_keys = np.unique(test.user_ids[rel].astype(np.int64) * n_items + test.item_ids[rel])
    n_rel = np.bincount(test.user_ids[rel], minlength=test.n_users)[users]
    keys = users[:, None].astype(np.int64) * n_items + top
    hits = (top >= 0) & np.isin(keys, rel_keys)
    keep = n_rel > 0
    hits, n_rel = hits[keep], n_rel[keep]
    if not keep.any():
        return RankingMetrics(k, float("nan"), float("nan"), float("nan"), 0)
    cap = np.minimum(n_rel, k)
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    ideal = np.cumsum(discount)[cap - 1]
    precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return RankingMetrics(
        k=k,
        recall=float(np.mean(hits.sum(axis=1) / cap)),
        ndcg=float(np.mean((hits * discount).sum(axis=1) / ideal)),
        map=float(np.mean((precision_at * hits).sum(axis=1) / cap)),
        n_users=int(keep.sum()),
    )


def evaluate_ranking(
    model_or_scores: TwoTower | np.ndarray,
    test: RatingData,
    train: RatingData,
    *,
    k: int = 10,
    threshold: float | None = None,
) -> RankingMetrics:
    """Recall@k, NDCG@k and MAP@k of each user's top ``k`` items against held-out ratings.

    For every user with a relevant item in ``test``, the candidates are all the
    items of the table except those the user rated in ``train``; the model's
    (or the scores') top ``k`` of them are compared with the user's relevant
    held-out items (:func:`ranking_metrics`).

    Args:
      model_or_scores: a :class:`TwoTower` (ranked by :func:`~ttm_jax.recommend`,
        with its id tables when it has them), or scores ``[n_users, n_items]``
        of any other method (ties broken towards the lower item id).
      test: the held-out ratings (sharing ``train``'s tables).
      train: the ratings the model learnt from; they are excluded from the lists.
      k: the list length.
      threshold: a held-out item is relevant when its rating is at least this
        (``None``: every held-out item is).

    Example:
      >>> evaluate_ranking(reg.model_, split.test, split.train, k=10, threshold=4.0).ndcg
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= train.n_items:
        raise ValueError(f"k={k!r} must be an integer in 1 .. {train.n_items} (the items)")
    if (test.n_users, test.n_items) != (train.n_users, train.n_items):
        raise ValueError(f"test {test!r} and train {train!r} must share their tables (the same "
                         "users and items)")
    rel = np.ones(test.n_ratings, bool) if threshold is None else test.ratings >= threshold
    users = np.unique(test.user_ids[rel])
    if isinstance(model_or_scores, TwoTower):
        top = recommend(model_or_scores, users, int(k), data=train).item_ids
    else:
        scores = np.array(model_or_scores, np.float64, copy=True)
        if scores.shape != (train.n_users, train.n_items):
            raise ValueError(f"scores have shape {scores.shape}; expected [n_users, n_items] = "
                             f"[{train.n_users}, {train.n_items}]")
        scores[train.user_ids, train.item_ids] = -np.inf
        block = scores[users]
        # A stable sort of the negated scores: ties go to the lower item id, as top_k does.
        top = np.argsort(-block, axis=1, kind="stable")[:, : int(k)]
        top = np.where(np.isneginf(np.take_along_axis(block, top, axis=1)), -1, top)
    return ranking_metrics(top, users, test, threshold=threshold)


class ExcessRisk(NamedTuple):
    """Monte Carlo estimate of ``‖R̂ − R*‖²_{L2(μ_u × μ_i)}`` with its standard error."""

    value: float
    stderr: float
    n_pairs: int


def excess_risk(
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    truth,
    *,
    n_users: int = 2000,
    n_items: int = 2000,
    seed: int,
) -> ExcessRisk:
    """Estimate ``E_{x_u ~ μ_u, x_i ~ μ_i} (R̂(x_u, x_i) − R*(x_u, x_i))²`` on fresh covariates.

    Draws ``n_users`` new users and ``n_items`` new items from the truth's
    samplers (never observed in training) and averages over all
    ``n_users × n_items`` pairs. Pairs that share a user, or an item, are
    correlated, so the standard error is the two-way one of a mean over a
    product of independent samples: ``√(s²_u / n_users + s²_i / n_items)``, with
    ``s²_u`` and ``s²_i`` the variances of the per-user and per-item means (the
    first-order terms of the mean's Hoeffding decomposition; the residual term,
    of order ``1 / (n_users · n_items)``, is counted in both, slightly).

    Args:
      predict: ``(x_u [n, D_u], x_i [m, D_i]) -> [n, m]`` scores of all pairs
        (e.g. ``regressor.predict_matrix``).
      truth: a ``GroundTruth`` (``user_map``, ``item_map``, samplers).
      n_users, n_items: Monte Carlo sample sizes.
      seed: seeds the fresh covariates.
    """
    rng = np.random.default_rng(seed)
    x_u = truth.sample_users(n_users, rng)
    x_i = truth.sample_items(n_items, rng)
    true = truth.user_map(x_u) @ truth.item_map(x_i).T
    est = np.asarray(predict(x_u, x_i), np.float64)
    if est.shape != true.shape:
        raise ValueError(f"predict returned shape {est.shape}; expected {true.shape}")
    sq = (est - true) ** 2
    var_users = sq.mean(axis=1).var(ddof=1) / n_users
    var_items = sq.mean(axis=0).var(ddof=1) / n_items
    return ExcessRisk(float(sq.mean()), float(np.sqrt(var_users + var_items)), int(sq.size))
