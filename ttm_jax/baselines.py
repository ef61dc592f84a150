"""scikit-surprise competitors, tuned (cross-validation or a hold-out) and scored on a
:class:`~ttm_jax.data.RatingData` split: the one adapter every benchmark uses.

scikit-surprise is the optional ``bench`` extra, so it is imported only when a
baseline is fitted. Methods without covariates cannot score a user or item
that has no training rating; they fall back exactly as scikit-surprise does
(:data:`FALLBACK`), and :class:`BaselinePrediction` marks which test pairs
took the fallback, so a report can say so.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import NamedTuple

import numpy as np

from ttm_jax.data.ratings import RatingData
from ttm_jax.evaluate import evaluate
from ttm_jax.search import widening_search

__all__ = ["FALLBACK", "LIMITS", "METHODS", "BaselinePrediction", "TuneResult",
           "fit_predict_baseline", "search_point", "surprise_dataset", "surprise_params",
           "tune_baseline"]

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


#: The hyperparameters each method's search may widen, with their natural limits
#: (a chosen value at a limit counts as settled: the grid cannot go further).
LIMITS = {
    "n_factors": (1, 400), "reg_all": (0.0, 50.0), "lr_all": (1e-4, 0.1),
    "n_epochs": (5, 800), "k": (1, 1000), "n_cltr": (1, 100),
}
_INTEGER = {"n_factors", "n_epochs", "k", "n_cltr"}


class TuneResult(NamedTuple):
    """What :func:`tune_baseline` returns.

    Attributes:
      params: the chosen parameters, as the scikit-surprise class takes them.
      rmse: their tuning RMSE: cross-validated, or on the hold-out (``validation``).
      trials: every point evaluated, as ``(params, rmse)``, in order.
      settled: per searched parameter, why its value is final: ``"interior"``
        (a worse value was tried on each side), ``"limit"`` (at a natural limit
        of :data:`LIMITS`) or ``"rounds"`` (still at an edge when the search's
        rounds ran out).
    """

    params: dict
    rmse: float
    trials: tuple
    settled: dict


def surprise_params(method: str, point: dict, seed: int) -> dict:
    """The keyword arguments of ``method``'s scikit-surprise class for a point of its
    search (``{parameter: value}``, as :func:`tune_baseline`'s grid names them): KNN's
    ``k`` with msd similarity, Co-Clustering's ``n_cltr`` tied between users and items,
    SVD and SVD++ as given; ``seed`` their ``random_state``. :func:`search_point` inverts it.
    """
    if method == "knn":
        return {"k": int(point["k"]), "sim_options": {"name": "msd", "user_based": True},
                "verbose": False}
    if method == "coclustering":
        c = int(point["n_cltr"])
        return {"n_cltr_u": c, "n_cltr_i": c, "random_state": seed}
    return {**point, "random_state": seed}


def search_point(method: str, params: dict) -> dict:
    """The search point of :func:`surprise_params`'s ``params`` (a tuning's choice, as
    :class:`TuneResult` holds it): the inverse, ``random_state`` left out."""
    if method == "knn":
        return {"k": params["k"]}
    if method == "coclustering":
        return {"n_cltr": params["n_cltr_u"]}
    return {k: v for k, v in params.items() if k != "random_state"}


def tune_baseline(method: str, train: RatingData, grid: dict | list[dict], *, seed: int,
                  folds: int | None = None, validation: RatingData | None = None,
                  max_rounds: int = 6, memo: MutableMapping[str, float] | None = None
                  ) -> TuneResult:
    """The parameters of ``method`` with the lowest tuning RMSE on ``train``, the search
    widened until every chosen value is interior (:func:`ttm_jax.search.widening_search`).

    Each candidate is scored one of two ways, chosen by the arguments: by
    ``folds``-fold cross-validation on ``train``, or, with ``validation``, by a
    fit on ``train`` scored on ``validation`` (the hold-out protocol the
    two-tower model tunes by, so that both are tuned alike).

    Args:
      method: a key of :data:`METHODS` with a scikit-surprise class.
      train: the ratings to tune on (covariates are not used).
      grid: ``{parameter: [values]}``, or a list of them (stages, searched in
        turn); for ``"knn"`` ``k`` (msd similarity, user-based); for
        ``"coclustering"`` ``n_cltr``, tied between users and items. Parameters
        with one value are held fixed; searched ones need a limit in :data:`LIMITS`.
      seed: seeds the folds and the methods' initialisation.
      folds: CV folds (``surprise.model_selection.KFold``, seeded); give this
        or ``validation``.
      validation: held-out ratings to score each candidate on (users and items
        unseen in ``train`` take the method's :data:`FALLBACK`).
      max_rounds: widening rounds at most.
      memo: the search's scores so far, kept as it goes
        (:func:`ttm_jax.search.widening_search`), so that an interrupted tuning
        run again with the same memo resumes; valid only for the same
        ``method``, data, ``seed``, ``folds`` and ``validation``.

    Returns:
      A :class:`TuneResult`.
    """
    if METHODS.get(method) is None:
        raise ValueError(f"method={method!r} has nothing to tune; choose one of "
                         f"{sorted(m for m, c in METHODS.items() if c)}")
    if (folds is None) == (validation is None):
        raise ValueError("tune_baseline: give folds= (cross-validation) or validation= "
                         "(a hold-out), exactly one of them")
    surprise = _surprise()
    cls = getattr(surprise, METHODS[method])

    if validation is not None:
        def score(point: dict) -> float:
            pred = fit_predict_baseline(method, train, validation,
                                        params=surprise_params(method, point, seed),
                                        seed=seed).predictions
            return evaluate(pred, validation).overall.rmse
    else:
        from surprise.model_selection import KFold, cross_validate

        data = surprise_dataset(train)

        def score(point: dict) -> float:
            out = cross_validate(cls(**surprise_params(method, point, seed)), data,
                                 measures=["rmse"], cv=KFold(folds, random_state=seed),
                                 verbose=False)
            return float(np.mean(out["test_rmse"]))

    res = widening_search(score, grid, limits=LIMITS, integer=_INTEGER, max_rounds=max_rounds,
                          memo=memo)
    return TuneResult(surprise_params(method, res.best, seed), res.score, res.trials,
                      res.settled)


def fit_predict_baseline(
    method: str,
    train: RatingData,
    test: RatingData,
    *,
    params: dict | None = None,
    seed: int,
    clip: bool = True,
) -> BaselinePrediction:
    """Fit a scikit-surprise method on ``train`` and predict every pair of ``test``.

    Args:
      method: a key of :data:`METHODS`.
      train: training ratings (only ids and ratings are used; no covariates).
      test: the pairs to score (``test.ratings`` are not looked at).
      params: keyword arguments for the scikit-surprise class (e.g.
        ``{"n_factors": 50}``); ``random_state`` is set from ``seed``.
      seed: seeds the method's initialisation.
      clip: clip the estimates to the rating scale, as scikit-surprise does by
        default (``False`` for ranking: clipping ties every item estimated
        above the top of the scale).

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
        (algo.predict(int(u), int(i), clip=clip).est
         for u, i in zip(test.user_ids.tolist(), test.item_ids.tolist())),
        np.float64, count=test.n_ratings,
    )
    seconds = time.perf_counter() - t0
    return BaselinePrediction(
        method, pred, fallback, seconds, tuple(sorted((k, v) for k, v in params.items()))
    )
