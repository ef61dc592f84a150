"""Tuning on seed 0's training set of MovieLens-100K: the preset's penalties, and SVD and SVD++.

``ttm_jax.presets.movielens_100k`` penalises the covariate weights (``λ``) and
the id tables (``λ_id``) apart. This script chooses the pair on a *tuning
split*: seed 0's training set of the cold-start study (``cold_start_split(...,
seed=0)``) split again the same way (20% of its users held out, 15% of the
other ratings as inner test), each candidate fitted as the benchmark fits it
(``TwoTowerRegressor(model, train, seed=0).fit(inner_train)``: a 20% hold-out
for early stopping, then the warm refit). The choice: the lowest inner warm
RMSE plus inner cold RMSE. Seed 0's outer test pairs are never read; the
other seeds' and folds' test sets do overlap this tuning data (the limits of
a 100,000-rating dataset; RESULTS.md §5 says so).

The scikit-surprise competitors are tuned on the same data (seed 0's training
set of the cold-start study, all of it) by 3-fold cross-validation with
``ttm_jax.baselines.tune_baseline``, which widens each grid until every chosen
value is interior (or at its natural limit); ``benchmarks/movielens.py`` runs
the chosen values as "SVD (tuned)" and "SVD++ (tuned)" beside the library
defaults of surprise's published table.

Usage:
  python benchmarks/tune_movielens.py --data ../shared/datasets/ml-100k
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from common import ResultCache

import ttm_jax
from ttm_jax import TwoTowerRegressor, cold_start_split, evaluate, read_movielens
from ttm_jax.baselines import tune_baseline
from ttm_jax.presets import MOVIELENS_TITLE_WORDS, movielens_100k

#: The competitors' starting grids (stages: the second is searched with the first's
#: best); tune_baseline widens them past an edge while the optimum sits on it.
BASELINE_GRIDS = {
    "svd": [{"n_factors": [50, 100, 200], "reg_all": [0.02, 0.05, 0.1]},
            {"lr_all": [0.005, 0.01], "n_epochs": [20, 40]}],
    "svdpp": [{"n_factors": [20, 50], "reg_all": [0.02, 0.05, 0.1]},
              {"lr_all": [0.005, 0.01], "n_epochs": [20, 40]}],
}
BASELINE_FOLDS = 3


def tuning_data(data):
    """Seed 0's training set of the cold-start study (what the tuning may look at)."""
    return cold_start_split(data, user_fraction=0.2, test_fraction=0.2, seed=0).train


def tuning_split(data):
    """Seed 0's training set, split again: ``(inner_train, inner_test)``."""
    outer = cold_start_split(data, user_fraction=0.2, test_fraction=0.2, seed=0)
    inner = cold_start_split(outer.train, user_fraction=0.2, test_fraction=0.15, seed=1)
    return inner.train, inner.test


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/datasets/ml-100k")
    ap.add_argument("--penalty-weights", type=float, nargs="+", default=[3e-3, 3e-2, 3e-1])
    ap.add_argument("--id-penalty-weights", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3])
    ap.add_argument("--baselines", nargs="*", default=sorted(BASELINE_GRIDS),
                    choices=sorted(BASELINE_GRIDS), help="competitors to tune (default: all)")
    ap.add_argument("--cache", default="benchmarks/out/tune_movielens_cache")
    ap.add_argument("--out", default="benchmarks/out/tune_movielens.md")
    args = ap.parse_args(argv)
    cache = ResultCache(args.cache)
    data = read_movielens(args.data, title_words=MOVIELENS_TITLE_WORDS).data
    train, test = tuning_split(data)
    model_config, base = movielens_100k()
    rows = []
    t_start = time.perf_counter()
    for lam, lam_id in itertools.product(args.penalty_weights, args.id_penalty_weights):
        train_config = base.replace(penalty_weight=lam, id_penalty_weight=lam_id)
        key = {"model": repr(model_config), "train": repr(train_config),
               "ttm_jax": ttm_jax.__version__, "split": "cold_start seed0 / inner seed1 0.2 0.15"}

        def compute(train_config=train_config):
            t0 = time.perf_counter()
            reg = TwoTowerRegressor(model_config, train_config, seed=0, progress=False).fit(train)
            ev = evaluate(reg.predict(test), test, train)
            return {"warm": ev.warm.rmse, "cold": ev.cold_user.rmse,
                    "epochs": float(reg.result_.best_epoch), "seconds": time.perf_counter() - t0}

        r = cache.get(f"lam{lam:g}-id{lam_id:g}", compute, key)
        rows.append((lam, lam_id, r))
        print(f"λ={lam:g} λ_id={lam_id:g}: warm {r['warm']:.4f} cold {r['cold']:.4f} "
              f"({r['epochs']:.0f} epochs, {r['seconds']:.0f} s)", flush=True)
    best = min(rows, key=lambda row: row[2]["warm"] + row[2]["cold"])
    lines = [f"Command: `python benchmarks/tune_movielens.py --data {args.data}`", "",
             "| λ (covariates) | λ_id (id tables) | inner warm RMSE | inner cold RMSE | "
             "kept epoch | seconds |", "|---|---|---|---|---|---|"]
    for lam, lam_id, r in rows:
        mark = " **chosen**" if (lam, lam_id) == best[:2] else ""
        lines.append(f"| {lam:g} | {lam_id:g} | {r['warm']:.4f} | {r['cold']:.4f}{mark} | "
                     f"{r['epochs']:.0f} | {r['seconds']:.0f} |")
    for method in args.baselines:
        key = {"grid": BASELINE_GRIDS[method], "folds": BASELINE_FOLDS, "seed": 0,
               "ttm_jax": ttm_jax.__version__, "data": "cold_start seed0 train"}

        def tune(method=method):
            t0 = time.perf_counter()
            res = tune_baseline(method, tuning_data(data), BASELINE_GRIDS[method],
                                folds=BASELINE_FOLDS, seed=0)
            params = {k: v for k, v in res.params.items() if k != "random_state"}
            return {"params": params, "cv_rmse": res.cv_rmse, "settled": res.settled,
                    "trials": len(res.trials), "seconds": time.perf_counter() - t0}

        r = cache.get(f"baseline-{method}", tune, key)
        print(f"{method}: {r['params']} CV RMSE {r['cv_rmse']:.4f} ({r['settled']}, "
              f"{r['trials']} trials, {r['seconds']:.0f} s)", flush=True)
        if method == args.baselines[0]:
            lines += ["", f"Competitors, {BASELINE_FOLDS}-fold CV on seed 0's training set "
                      "(`tune_baseline`, grids widened until interior):", "",
                      "| method | chosen | CV RMSE | settled | trials | seconds |",
                      "|---|---|---|---|---|---|"]
        lines.append(f"| {method} | {r['params']} | {r['cv_rmse']:.4f} | {r['settled']} | "
                     f"{r['trials']} | {r['seconds']:.0f} |")
    lines += ["", f"Wall time: {time.perf_counter() - t_start:.0f} s (cached entries cost "
              "nothing)."]
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
