"""Accuracy of a trained model: RMSE and MAE, overall and by warm/cold pairs,
and the excess risk ``‖R̂ − R*‖²_{L2(μ_u × μ_i)}`` against a known truth."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ttm_jax.data.ratings import RatingData
from ttm_jax.model.towers import TwoTower
from ttm_jax.serving.inference import predict_pairs

__all__ = ["Metrics", "Evaluation", "ExcessRisk", "evaluate", "metrics", "excess_risk"]


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
