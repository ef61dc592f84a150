"""scikit-surprise competitors, tuned by cross-validation and scored on a
:class:`~ttm_jax.data.RatingData` split: the one adapter every benchmark uses.

scikit-surprise is the optional ``bench`` extra, so it is imported only when a
baseline is fitted. Methods without covariates cannot score a user or item
that has no training rating; they fall back exactly as scikit-surprise does
(:data:`FALLBACK`), and :class:`BaselinePrediction` marks which test pairs
took the fallback, so a report can say so.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from ttm_jax.data.ratings import RatingData

__all__ = ["METHODS", "FALLBACK", "BaselinePrediction", "fit_predict_baseline",
           "surprise_dataset", "tune_baseline"]

#: Methods by name: the scikit-surprise class (``None``: the global mean, no library needed).
METHODS = {
    "global_mean": None,
    "baseline_only": "BaselineOnly",
    "svd": "SVD",
    "svdpp": "SVDpp",
    "knn": "KNNBasic",
    "knn_baseline": "KNNBaseline",
    "coclustering": "CoClustering",
}

#: What each method predicts for a pair whose user and/or item has no training
#: rating (read from scikit-surprise 1.1's ``estimate`` methods). ``μ`` is the
#: training mean, ``b_u``/``b_i`` the learnt biases.
FALLBACK = {
    "global_mean": "μ for every pair",
    "baseline_only": "μ + b_i (cold user) / μ + b_u (cold item) / μ (both): the unknown bias is 0",
    "svd": "μ + b_i / μ + b_u / μ: biases only, the factor term is dropped",
    "svdpp": "μ + b_i / μ + b_u / μ: biases only, the factor term is dropped",
    "knn": "μ (no neighbours to average)",
    "knn_baseline": "its baseline μ + b_i / μ + b_u / μ, no neighbour term",
    "coclustering": "μ (its estimate returns the global mean when either is unknown)",
}


class BaselinePrediction(NamedTuple):
    """Predictions of one fitted baseline on a test set.

    Attributes:
      method: the method's name (a key of :data:`METHODS`).
      predictions: ``[|Ω_test|]`` float64, clipped to the training rating range
        (as scikit-surprise does).
      fallback: ``[|Ω_test|]`` bool, pairs whose user or item was unseen in
        training (scored by :data:`FALLBACK`'s rule).
      fit_seconds: wall-clock time of the fit.
      params: the hyperparameters used, as ``(name, value)`` pairs.
    """

    method: str
    predictions: np.ndarray
    fallback: np.ndarray
    fit_seconds: float
    params: tuple[tuple[str, object], ...]


def _surprise():
    try:
        import surprise
    except ImportError as err:
        raise ImportError(
            "the scikit-surprise baselines need the 'bench' extra: pip install -e '.[bench]' "
            f"(import failed: {err})"
        ) from None
    return surprise


def surprise_dataset(train: RatingData):
    """``train``'s ids and ratings as a scikit-surprise ``Dataset`` (rating scale: its range)."""
    surprise = _surprise()
    import pandas as pd

    frame = pd.DataFrame(
        {"u": train.user_ids.astype(np.int64), "i": train.item_ids.astype(np.int64),
         "r": train.ratings.astype(np.float64)}
    )
    reader = surprise.Reader(rating_scale=(float(train.ratings.min()), float(train.ratings.max())))
    return surprise.Dataset.load_from_df(frame, reader)


def _param_grid(method: str, grid: dict, seed: int) -> dict:
    if method == "knn":
        return {"k": grid["k"], "sim_options": {"name": ["msd"], "user_based": [True]},
                "verbose": [False]}
    return {**grid, "random_state": [seed]}


def tune_baseline(method: str, train: RatingData, grid: dict, *, folds: int,
                  seed: int) -> tuple[dict, float]:
    """The parameters of ``method`` with the lowest ``folds``-fold cross-validated RMSE on ``train``.

    Args:
      method: a key of :data:`METHODS` with a scikit-surprise class.
      train: the ratings to cross-validate on (covariates are not used).
      grid: ``{parameter: [values]}``; for ``"knn"`` only ``k`` (msd similarity,
        user-based); for ``"coclustering"`` ``n_cltr``, tied between users and items.
      folds: CV folds (``surprise.model_selection.KFold``).
      seed: seeds the folds and the methods' initialisation.

    Returns:
      ``(best parameters, their CV RMSE)``.
    """
    if METHODS.get(method) is None:
        raise ValueError(f"method={method!r} has nothing to tune; choose one of "
                         f"{sorted(m for m, c in METHODS.items() if c)}")
    surprise = _surprise()
    from surprise.model_selection import GridSearchCV, KFold

    cls = getattr(surprise, METHODS[method])
    data = surprise_dataset(train)
    if method == "coclustering":
        # GridSearchCV would cross n_cltr_u with n_cltr_i; tying them keeps the
        # paper's grid, so search the diagonal one point at a time.
        best, best_rmse = None, float("inf")
        for c in grid["n_cltr"]:
            gs = GridSearchCV(cls, {"n_cltr_u": [c], "n_cltr_i": [c], "random_state": [seed]},
                              measures=["rmse"], cv=KFold(folds, random_state=seed))
            gs.fit(data)
            if gs.best_score["rmse"] < best_rmse:
                best, best_rmse = gs.best_params["rmse"], float(gs.best_score["rmse"])
        return best, best_rmse
    gs = GridSearchCV(cls, _param_grid(method, grid, seed), measures=["rmse"],
                      cv=KFold(folds, random_state=seed))
    gs.fit(data)
    return gs.best_params["rmse"], float(gs.best_score["rmse"])


def fit_predict_baseline(
    method: str,
    train: RatingData,
    test: RatingData,
    *,
    params: dict | None = None,
    seed: int,
) -> BaselinePrediction:
    """Fit a scikit-surprise method on ``train`` and predict every pair of ``test``.

    Args:
      method: a key of :data:`METHODS`.
      train: training ratings (only ids and ratings are used; no covariates).
      test: the pairs to score (``test.ratings`` are not looked at).
      params: keyword arguments for the scikit-surprise class (e.g.
        ``{"n_factors": 50}``); ``random_state`` is set from ``seed``.
      seed: seeds the method's initialisation.

    Returns:
      A :class:`BaselinePrediction` aligned with ``test``.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not known; choose one of {sorted(METHODS)}")
    params = dict(params or {})
    seen_u = np.isin(test.user_ids, np.unique(train.user_ids))
    seen_i = np.isin(test.item_ids, np.unique(train.item_ids))
    fallback = ~(seen_u & seen_i)
    t0 = time.perf_counter()
    if METHODS[method] is None:
        pred = np.full(test.n_ratings, float(train.ratings.astype(np.float64).mean()))
        return BaselinePrediction(method, pred, fallback, time.perf_counter() - t0, ())
    surprise = _surprise()
    cls = getattr(surprise, METHODS[method])
    if method in ("svd", "svdpp", "coclustering"):
        # Tuned parameters carry the tuning seed; the fit takes this run's.
        params["random_state"] = seed
    if method in ("baseline_only", "knn", "knn_baseline"):
        # ALS baselines and KNN draw no random numbers; the seed is recorded only.
        params.setdefault("verbose", False)
    trainset = surprise_dataset(train).build_full_trainset()
    algo = cls(**params)
    algo.fit(trainset)
    pred = np.fromiter(
        (algo.predict(int(u), int(i)).est
         for u, i in zip(test.user_ids.tolist(), test.item_ids.tolist())),
        np.float64, count=test.n_ratings,
    )
    seconds = time.perf_counter() - t0
    return BaselinePrediction(
        method, pred, fallback, seconds, tuple(sorted((k, v) for k, v in params.items()))
    )
