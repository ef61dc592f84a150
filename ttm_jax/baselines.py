"""scikit-surprise competitors, tuned by cross-validation and scored on a
:class:`~ttm_jax.data.RatingData` split: the one adapter every benchmark uses.

scikit-surprise is the optional ``bench`` extra, so it is imported only when a
baseline is fitted. Methods without covariates cannot score a user or item
that has no training rating; they fall back exactly as scikit-surprise does
(:data:`FALLBACK`), and :class:`BaselinePrediction` marks which test pairs
took the fallback, so a report can say so.
"""

from __future__ import annotations

import itertools
import time
from typing import NamedTuple

import numpy as np

from ttm_jax.data.ratings import RatingData

__all__ = ["FALLBACK", "LIMITS", "METHODS", "BaselinePrediction", "TuneResult",
           "fit_predict_baseline", "surprise_dataset", "tune_baseline"]

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
      cv_rmse: their cross-validated RMSE.
      trials: every point evaluated, as ``(params, cv_rmse)``, in order.
      settled: per searched parameter, why its value is final: ``"interior"``
        (a worse value was tried on each side), ``"limit"`` (at a natural limit
        of :data:`LIMITS`) or ``"rounds"`` (still at an edge when the search's
        rounds ran out).
    """

    params: dict
    cv_rmse: float
    trials: tuple
    settled: dict


def _surprise_params(method: str, point: dict, seed: int) -> dict:
    if method == "knn":
        return {"k": int(point["k"]), "sim_options": {"name": "msd", "user_based": True},
                "verbose": False}
    if method == "coclustering":
        c = int(point["n_cltr"])
        return {"n_cltr_u": c, "n_cltr_i": c, "random_state": seed}
    return {**point, "random_state": seed}


def _step_beyond(name: str, values: list, upward: bool):
    """The next value past the end of a sorted grid: the grid's own step (geometric
    for positive log-spaced grids, arithmetic otherwise), clipped to the limit."""
    lo, hi = LIMITS[name]
    a, b = (values[-2], values[-1]) if upward else (values[1], values[0])
    if a > 0 and b > 0 and (max(a, b) / min(a, b) >= 1.5 or name not in _INTEGER):
        nxt = b * (b / a)
    else:
        nxt = b + (b - a)
    nxt = min(hi, max(lo, nxt))
    return int(round(nxt)) if name in _INTEGER else float(nxt)


def tune_baseline(method: str, train: RatingData, grid: dict | list[dict], *, folds: int,
                  seed: int, max_rounds: int = 6) -> TuneResult:
    """The parameters of ``method`` with the lowest ``folds``-fold cross-validated RMSE on
    ``train``, with the search widened until every chosen value is interior.

    The full product of ``grid`` is evaluated first (or, for a list of grids,
    each stage's product in turn with the earlier stages' parameters at their
    best, which keeps four-parameter searches affordable). Then, for as many as
    ``max_rounds`` coordinate rounds, both neighbours of each parameter's best
    value are evaluated with the other parameters at their best; a best value
    on an edge of its list (and not at its natural limit, :data:`LIMITS`) gets
    one more value beyond that edge, in the grid's own spacing. A chosen value
    is reported ``"interior"`` only when worse values were tried on both sides
    of it, with every other parameter at its chosen value.

    Args:
      method: a key of :data:`METHODS` with a scikit-surprise class.
      train: the ratings to cross-validate on (covariates are not used).
      grid: ``{parameter: [values]}``, or a list of them (stages); for ``"knn"``
        ``k`` (msd similarity,
        user-based); for ``"coclustering"`` ``n_cltr``, tied between users and items.
        Parameters with one value are held fixed.
      folds: CV folds (``surprise.model_selection.KFold``, seeded).
      seed: seeds the folds and the methods' initialisation.
      max_rounds: widening rounds at most.

    Returns:
      A :class:`TuneResult`.
    """
    if METHODS.get(method) is None:
        raise ValueError(f"method={method!r} has nothing to tune; choose one of "
                         f"{sorted(m for m, c in METHODS.items() if c)}")
    surprise = _surprise()
    from surprise.model_selection import KFold, cross_validate

    cls = getattr(surprise, METHODS[method])
    data = surprise_dataset(train)
    stages = [grid] if isinstance(grid, dict) else list(grid)
    values = {k: sorted(v) for stage in stages for k, v in stage.items()}
    for name in values:
        if name not in LIMITS and len(values[name]) > 1:
            raise ValueError(f"grid[{name!r}]: only {sorted(LIMITS)} can be searched")
    scores: dict[tuple, float] = {}
    trials = []

    def score(point: dict) -> float:
        key = tuple(sorted(point.items()))
        if key not in scores:
            out = cross_validate(cls(**_surprise_params(method, point, seed)), data,
                                 measures=["rmse"], cv=KFold(folds, random_state=seed),
                                 verbose=False)
            scores[key] = float(np.mean(out["test_rmse"]))
            trials.append((dict(point), scores[key]))
        return scores[key]

    # Until a stage has chosen them, parameters sit at the middle of their lists.
    best = {n: v[len(v) // 2] for n, v in values.items()}
    for stage in stages:
        # Each stage's product, with the earlier stages' parameters at their best.
        names = list(stage)
        for combo in itertools.product(*(values[n] for n in names)):
            score({**best, **dict(zip(names, combo))})
        best = dict(min(scores.items(), key=lambda kv: kv[1])[0])
    searched = [n for n in values if len(values[n]) > 1]

    def evaluated(point: dict) -> bool:
        return tuple(sorted(point.items())) in scores

    for _ in range(max_rounds):
        # Coordinate line searches: from the best point, walk each parameter down and
        # up its list (widened past an edge, up to the natural limit) while the CV
        # RMSE improves. A round that moves nothing has checked both neighbours of
        # every chosen value with the others at theirs.
        moved = False
        for name in searched:
            for step in (-1, 1):
                while True:
                    best = dict(min(scores.items(), key=lambda kv: kv[1])[0])
                    vals = values[name]
                    at = vals.index(best[name])
                    if not 0 <= at + step < len(vals):
                        if best[name] in LIMITS[name]:
                            break
                        nxt = _step_beyond(name, vals, step > 0)
                        if nxt in vals:
                            break
                        values[name] = vals = sorted([*vals, nxt])
                        at = vals.index(best[name])
                    neighbour = {**best, name: vals[at + step]}
                    if evaluated(neighbour) or score(neighbour) >= score(best):
                        break
                    moved = True
        if not moved:
            break
    best_key, best_rmse = min(scores.items(), key=lambda kv: kv[1])
    best = dict(best_key)
    settled = {}
    for name in searched:
        tried = sorted({p[name] for p, _ in trials
                        if all(p[o] == best[o] for o in searched if o != name)})
        v = best[name]
        if v in LIMITS[name]:
            settled[name] = "limit"
        elif tried[0] < v < tried[-1]:
            settled[name] = "interior"
        else:
            settled[name] = "rounds"
    return TuneResult(_surprise_params(method, best, seed), best_rmse, tuple(trials), settled)


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
