"""Tuning on MovieLens-100K, nested inside each split: TTM's penalties and SVD's and SVD++'s
settings, chosen on data disjoint from the test set they are reported on.

For every split ``benchmarks/movielens.py`` reports (each seed of the
cold-start study, each fold of the 5-fold CV), :func:`tune_split` splits that
split's *training set* again into an inner train and an inner validation set,
as the outer split was made (cold-start study: 20% of its users held out and
15% of the other ratings; CV: 20% of the ratings at random), and every method
is tuned by the same protocol:

- each candidate is fitted on the inner train exactly as the benchmark fits it
  (TTM: ``TwoTowerRegressor(model, train, seed=s).fit(inner_train)``, with its
  own hold-out for early stopping and its warm refit; scikit-surprise: a fit
  on the inner train) and scored by its RMSE on the inner validation set;
- the grid is widened until every chosen value is interior or at a natural
  limit (:func:`ttm_jax.search.widening_search`, through
  :func:`ttm_jax.baselines.tune_baseline` for the competitors).

The outer test pairs are never read. ``python benchmarks/tune_movielens.py``
prints one split's search in full (default: the cold-start study's seed 0, the
split the preset's penalties were first chosen on).

Usage:
  python benchmarks/tune_movielens.py --data ../shared/datasets/ml-100k [--study cold --index 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import ResultCache, StoredScores

import ttm_jax
from ttm_jax import (
    RatingData,
    TwoTowerRegressor,
    cold_start_split,
    evaluate,
    random_split,
    read_movielens,
)
from ttm_jax.baselines import search_point, tune_baseline
from ttm_jax.evaluate import evaluate_ranking
from ttm_jax.presets import MOVIELENS_TITLE_WORDS, movielens_100k, movielens_100k_top_k
from ttm_jax.search import widening_search

#: TTM's penalties: the covariate weights (λ) and the id tables (λ_id), around the preset's.
TTM_GRID = {"penalty_weight": [1e-2, 3e-2, 1e-1], "id_penalty_weight": [1e-4, 3e-4, 1e-3]}
TTM_LIMITS = {"penalty_weight": (0.0, 100.0), "id_penalty_weight": (0.0, 100.0)}
#: The competitors' starting grids, around the optimum an earlier search found. SVD: two
#: stages (rank and penalty, then step size and epochs with the first stage's best). SVD++,
#: whose fits cost ten of SVD's: one parameter per stage, so that when the start is the
#: optimum, its 8 neighbours are all the search fits.
BASELINE_GRIDS = {
    "svd": [{"n_factors": [100, 200, 400], "reg_all": [0.05, 0.1, 0.2]},
            {"lr_all": [0.005, 0.01, 0.02], "n_epochs": [40, 80, 160]}],
    "svdpp": [{"n_factors": [10, 20, 40]}, {"reg_all": [0.05, 0.1, 0.2]},
              {"lr_all": [0.005, 0.01, 0.02]}, {"n_epochs": [20, 40, 80]}],
}
#: The top-k model (``ttm_mnar``): Steck's missing-rating term, weight ``w_m`` and rating
#: ``r_m``, then the epochs (it trains without early stopping, which would stop on the
#: observed pairs' RMSE), on the split's tuned penalties; scored by inner NDCG@10.
MNAR_GRID = [{"missing_weight": [0.03, 0.1, 0.3], "missing_rating": [0.0, 1.0, 2.0]},
             {"max_epochs": [50, 100, 200]}]
MNAR_LIMITS = {"missing_weight": (0.0, 100.0), "missing_rating": (-5.0, 5.0),
               "max_epochs": (1, 3200)}
#: The ranking study's list length and relevance threshold (benchmarks/movielens.py's too).
RANK_K = 10
RELEVANT = 4.0  # a held-out item is relevant when rated at least this

#: How each study's inner split is made from an outer training set.
INNER = {"cold": "cold_start_split(train, user_fraction=0.2, test_fraction=0.15, seed=s + 100)",
         "cv": "random_split(train, 0.2, seed=s + 100)"}


def split_of(data: RatingData, study: str, index: int, n_folds: int = 5):
    """The outer split ``(train, test)`` of ``benchmarks/movielens.py``: seed ``index`` of the
    cold-start study (20% of users held out, 20% of the other ratings), or fold ``index``
    of the ``n_folds``-fold CV (one permutation, seed 0, of all the ratings)."""
    if study == "cold":
        split = cold_start_split(data, user_fraction=0.2, test_fraction=0.2, seed=index)
        return split.train, split.test
    perm = np.random.default_rng(0).permutation(data.n_ratings)
    folds = np.array_split(perm, n_folds)
    rest = np.sort(np.concatenate([f for j, f in enumerate(folds) if j != index]))
    return data.subset(rest), data.subset(np.sort(folds[index]))


def inner_split(train: RatingData, study: str, index: int):
    """``(inner_train, inner_validation)`` of an outer training set (:data:`INNER`)."""
    if study == "cold":
        inner = cold_start_split(train, user_fraction=0.2, test_fraction=0.15, seed=index + 100)
    else:
        inner = random_split(train, 0.2, seed=index + 100)
    return inner.train, inner.test


def top_k_regressor(train_config, seed: int) -> TwoTowerRegressor:
    """The top-k model as the benchmark and its tuning fit it, as
    :func:`ttm_jax.presets.movielens_100k_top_k` says to: every one of ``train_config``'s
    epochs on all the data it is fitted on (no hold-out, no early stopping)."""
    model_config, _ = movielens_100k_top_k()
    return TwoTowerRegressor(model_config, train_config, validation_fraction=0.0, seed=seed,
                             progress=False)


def tune_split(train: RatingData, study: str, index: int, cache: ResultCache,
               methods=("ttm", "svd", "svdpp"), log=print) -> dict:
    """Every method's choice on the inner split of ``train`` (outer split ``index`` of
    ``study``): ``{method: {"params", "rmse", "settled", "trials", "seconds"}}``; for
    ``ttm_mnar`` (the top-k model, tuned on ``ttm``'s penalties) ``"ndcg"`` in place of
    ``"rmse"``. ``"seconds"`` is the wall time of the run that finished the search: a
    search resumed from its stored scores counts only the points it scored itself.

    Cached per (study, index, method) under a key holding the grids, the inner
    split's definition, the model and the library version."""
    inner_train, inner_val = inner_split(train, study, index)
    model_config, base = movielens_100k()
    out = {}
    if "ttm_mnar" in methods and "ttm" not in methods:
        methods = ("ttm", *methods)
    for method in sorted(methods, key=lambda m: m == "ttm_mnar"):  # its penalties first
        grid = {"ttm": TTM_GRID, "ttm_mnar": MNAR_GRID}.get(method) or BASELINE_GRIDS[method]
        key = {"study": study, "index": index, "inner": INNER[study], "grid": grid,
               "ttm_jax": ttm_jax.__version__, "title_words": MOVIELENS_TITLE_WORDS}
        if method == "ttm":
            key.update(model=repr(model_config), train=repr(base))
        penalties, top_k = {}, base
        if method == "ttm_mnar":
            penalties = out["ttm"]["params"]
            # The RMSE preset on the split's penalties; the search sets the rest.
            top_k = base.replace(**penalties)
            key.update(model=repr(model_config), train=repr(top_k),
                       metric=f"NDCG@{RANK_K}, relevant >= {RELEVANT:g}")

        name = f"tune-{study}{index}-{method}"

        def compute(method=method, penalties=penalties, top_k=top_k, name=name, key=key):
            t0 = time.perf_counter()
            # Scores kept as they come, so a search stopped part-way resumes.
            memo = StoredScores(cache, "scores-" + name, key)
            if method == "ttm_mnar":
                def ndcg(point):
                    reg = top_k_regressor(top_k.replace(**point), index).fit(inner_train)
                    return evaluate_ranking(reg.model_, inner_val, inner_train, k=RANK_K,
                                            threshold=RELEVANT).ndcg

                res = widening_search(lambda point: -ndcg(point), MNAR_GRID,
                                      limits=MNAR_LIMITS, integer={"max_epochs"}, memo=memo)
                return {"params": {**penalties, **res.best}, "ndcg": -res.score,
                        "settled": res.settled,
                        "trials": [[dict(p), -r] for p, r in res.trials],
                        "seconds": time.perf_counter() - t0}
            if method == "ttm":
                def score(point):
                    cfg = base.replace(**point)
                    reg = TwoTowerRegressor(model_config, cfg, seed=index, progress=False)
                    return evaluate(reg.fit(inner_train).predict(inner_val), inner_val).overall.rmse

                res = widening_search(score, TTM_GRID, limits=TTM_LIMITS, memo=memo)
                params, rmse, trials, settled = res.best, res.score, res.trials, res.settled
            else:
                res = tune_baseline(method, inner_train, BASELINE_GRIDS[method],
                                    validation=inner_val, seed=index, memo=memo)
                params = search_point(method, res.params)
                rmse, trials, settled = res.rmse, res.trials, res.settled
            return {"params": params, "rmse": rmse, "settled": settled,
                    "trials": [[dict(p), r] for p, r in trials],
                    "seconds": time.perf_counter() - t0}

        r = cache.get(name, compute, key)
        cache.remove("scores-" + name)  # the search's scores, needed only until it finished
        figure = (f"inner NDCG@{RANK_K} {r['ndcg']:.4f}" if method == "ttm_mnar"
                  else f"inner RMSE {r['rmse']:.4f}")
        log(f"  tuned {method} on {study} split {index}: {r['params']} {figure} "
            f"({r['settled']}, {len(r['trials'])} trials, {r['seconds']:.0f} s)")
        out[method] = r
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/datasets/ml-100k")
    ap.add_argument("--study", default="cold", choices=sorted(INNER))
    ap.add_argument("--index", type=int, default=0, help="the seed (cold) or fold (cv)")
    ap.add_argument("--methods", default="ttm,svd,svdpp",
                    help="of ttm, svd, svdpp, ttm_mnar (the top-k model, on ttm's penalties)")
    ap.add_argument("--cache", default="benchmarks/out/movielens_cache")
    ap.add_argument("--out", default="benchmarks/out/tune_movielens.md")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    data = read_movielens(args.data, title_words=MOVIELENS_TITLE_WORDS).data
    train, _ = split_of(data, args.study, args.index)
    methods = tuple(m for m in args.methods.split(",") if m)
    unknown = sorted(set(methods) - {"ttm", "ttm_mnar", *BASELINE_GRIDS})
    if unknown:
        ap.error(f"--methods: unknown {unknown}; choose from ttm, svd, svdpp, ttm_mnar")
    tuned = tune_split(train, args.study, args.index, ResultCache(args.cache), methods=methods)
    lines = [f"Command: `python benchmarks/tune_movielens.py --data {args.data} --study "
             f"{args.study} --index {args.index} --methods {args.methods}`", "",
             f"Inner split of the outer training set: `{INNER[args.study]}`; every candidate "
             "scored by its RMSE on the inner validation set (ttm_mnar: by its NDCG@"
             f"{RANK_K} there, relevant items rated at least {RELEVANT:g}, inner training "
             "items excluded).", ""]
    for method, r in tuned.items():
        metric = f"NDCG@{RANK_K}" if method == "ttm_mnar" else "RMSE"
        best = r["ndcg"] if method == "ttm_mnar" else r["rmse"]
        lines += [f"#### {method}: chosen {r['params']} (inner {metric} {best:.4f}; "
                  f"{r['settled']})", "", f"| candidate | inner {metric} |", "|---|---|"]
        chosen = {k: v for k, v in r["params"].items()
                  if method != "ttm_mnar" or k not in tuned["ttm"]["params"]}
        lines += [f"| {p} | {v:.4f}{' **chosen**' if p == chosen else ''} |"
                  for p, v in sorted(r["trials"], key=lambda t: -t[1] if method == "ttm_mnar"
                                     else t[1])]
        lines.append("")
    lines.append(f"Wall time: {time.perf_counter() - t0:.0f} s (cached entries cost nothing).")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
