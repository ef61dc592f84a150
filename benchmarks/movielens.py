"""MovieLens-100K: the two-tower model against scikit-surprise, warm and cold start.

Two studies, both cached per (study, method, seed) in ``--cache`` so an
interrupted run resumes where it stopped:

1. Table 3 layout (SPEC §7 on MovieLens): for each seed, 20% of users are held
   out entirely (all their ratings are cold-start test pairs) and 20% of the
   remaining ratings are warm test pairs (``cold_start_split``). RMSE overall,
   on warm pairs and on cold-start (held-out user) pairs, mean (s.e.) over seeds.
2. 5-fold cross-validated RMSE on all 100,000 ratings (random folds), directly
   comparable with scikit-surprise's published ML-100K table.

Methods: TTM on covariates only; hybrid TTM (covariates plus one-hot ids, with
user-id dropout so held-out users are scored through their covariates);
scikit-surprise SVD, SVDpp, KNNBaseline, CoClustering, BaselineOnly; global
mean. Surprise methods use their library defaults (the settings of its
published table), not re-tuned; they score cold users by their fallback
(``ttm_jax.baselines.FALLBACK``). TTM settings were chosen on a validation split
carved out of seed 0's *training* set (see ``TTM_SETTINGS``), never on test.

Usage:
  python benchmarks/movielens.py --data ../shared/datasets/ml-100k --seeds 5
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from pathlib import Path

import numpy as np
from common import ResultCache, mean_se

import ttm_jax
from ttm_jax import ModelConfig, RatingData, TrainConfig, TwoTowerRegressor, evaluate
from ttm_jax.baselines import FALLBACK, fit_predict_baseline
from ttm_jax.data import cold_start_split, read_movielens, with_id_dropout, zero_unseen_ids

SURPRISE = ("svd", "svdpp", "knn_baseline", "coclustering", "baseline_only", "global_mean")
TTM = ("ttm_cov", "ttm_hybrid", "ttm_ids")
LABELS = {
    "ttm_cov": "TTM (covariates)",
    "ttm_hybrid": "TTM (hybrid)",
    "ttm_ids": "TTM (hybrid, no user cov.)",
    "svd": "SVD",
    "svdpp": "SVD++",
    "knn_baseline": "KNNBaseline",
    "coclustering": "CoClustering",
    "baseline_only": "BaselineOnly",
    "global_mean": "Global mean",
}
SURPRISE_PARAMS = {"svdpp": {"cache_ratings": True}}

# Chosen on seed 0: its training set was split again (20% of its users held
# out, 15% of the rest as test, 10% validation) and configurations compared on
# that inner test; the outer test sets were never looked at. Inner-test RMSE
# (warm / cold user) of the candidates that decided it:
#   hybrid, linear towers, full-scale user covariates      0.9286 / 1.0297
#   same, user covariates scaled by 0.03                   0.9182 / 1.0142   <- chosen
#   same, plus user-id dropout 0.5 (with_id_dropout)       0.9240 / 1.0179
#   same, user covariates left out                         0.9238 / 1.0154 (with dropout)
#   one hidden layer of 64 or 128 (SiLU), dropout 0.5      0.9406-0.9440 / 1.035-1.040
#   standardised inputs (ids then scale like sqrt(n))      1.4073 / 1.1930
#   user covariates + item ids only (no user ids)          1.0039 / 1.0315
#   BaselineOnly / SVD on the same inner split             0.9458 / 1.0247, 0.9500 / 1.0239
# A second round on the same inner split, from the chosen one (0.9182 / 1.0142):
#   batch 1024 (λ 1e-4 or 3e-4)                            0.9206 / 1.0163, 0.9205 / 1.0155
#   embedding 64                                           0.9161 / 1.0153
#   + 100 title words on the item side                     0.9144 / 1.0151
#   + 100 title words, embedding 128                       0.9166 / 1.0154
#   + 100 title words, embedding 64, step 5e-4             0.9147 / 1.0139   <- chosen
# The optimiser these settings were tuned and measured with (RESULTS.md §5), pinned so
# that a change of TrainConfig()'s defaults cannot change this benchmark: Adam, batch
# 4096, a constant step.
_MEASURED_WITH = dict(optimizer="adam", batch_size=4096, decay_rate=1.0)
TTM_SETTINGS = {
    "ttm_cov": dict(
        model=ModelConfig(hidden=(64,), embedding_dim=32),
        train=TrainConfig(learning_rate=3e-3, penalty_weight=1e-4, max_epochs=300,
                          eval_every_epochs=2, patience=6, max_seconds=60, **_MEASURED_WITH),
    ),
    "ttm_hybrid": dict(
        model=ModelConfig(hidden=(), embedding_dim=64, standardize=False),
        train=TrainConfig(learning_rate=5e-4, penalty_weight=3e-4, max_epochs=400,
                          eval_every_epochs=2, patience=6, max_seconds=120, **_MEASURED_WITH),
        id_dropout=0.0,
        user_covariate_scale=0.03,
    ),
}
# The same with the user covariates left out (scale 0): a control that shows
# what the demographics add for cold users.
TTM_SETTINGS["ttm_ids"] = dict(TTM_SETTINGS["ttm_hybrid"], user_covariate_scale=0.0)
VALIDATION_FRACTION = 0.1
TITLE_WORDS = 100  # item covariates include the 100 most frequent title words


def _strip_ids(data: RatingData, n_users: int, n_items: int) -> RatingData:
    return RatingData(data.user_features[:, :-n_users], data.item_features[:, :-n_items],
                      data.user_ids, data.item_ids, data.ratings)


def _scale_user_covariates(data: RatingData, n_users: int, scale: float) -> RatingData:
    # Scaling the covariate block down is a stronger penalty and a smaller Adam
    # step on its weights; at full scale the dense demographic columns overfit
    # before the id embeddings have learnt (tuning split: warm 0.939 vs 0.924).
    uf = np.array(data.user_features, np.float32, copy=True)
    uf[:, :-n_users] *= scale
    return RatingData(uf, data.item_features, data.user_ids, data.item_ids, data.ratings)


def _fit_ttm(method, train, test, seed, n_users, n_items, *, id_dropout=True):
    cfg = TTM_SETTINGS[method]
    t0 = time.perf_counter()
    if method == "ttm_cov":
        train, test = _strip_ids(train, n_users, n_items), _strip_ids(test, n_users, n_items)
        # refit="none": the protocol RESULTS.md §5 measured (the early-stopped model),
        # from before the refit became TwoTowerRegressor's default; the hybrid and
        # id variants pass their own validation set and so never refit.
        reg = TwoTowerRegressor(cfg["model"], cfg["train"],
                                validation_fraction=VALIDATION_FRACTION, seed=seed,
                                refit="none", progress=False).fit(train)
        pred = reg.predict(test)
    else:
        c = cfg["user_covariate_scale"]
        train, test = (_scale_user_covariates(x, n_users, c) for x in (train, test))
        split_seed = seed + 10_000
        from ttm_jax import random_split

        inner = random_split(train, VALIDATION_FRACTION, seed=split_seed)
        fit_train, fit_val = inner.train, inner.test
        if id_dropout and cfg.get("id_dropout"):
            fit_train, fit_val = with_id_dropout(fit_train, fit_val, user_id_columns=n_users,
                                                 fraction=cfg["id_dropout"], seed=seed)
        reg = TwoTowerRegressor(cfg["model"], cfg["train"], seed=seed,
                                progress=False).fit(fit_train, fit_val)
        pred = reg.predict(zero_unseen_ids(test, train, user_id_columns=n_users,
                                           item_id_columns=n_items))
    info = dict(epochs=reg.result_.epochs_run, best_epoch=reg.result_.best_epoch,
                stop=str(reg.result_.stop_reason))
    return pred, time.perf_counter() - t0, info


def _score(method, train, test, seed, n_users, n_items, **kw):
    if method in TTM:
        pred, secs, info = _fit_ttm(method, train, test, seed, n_users, n_items, **kw)
    else:
        res = fit_predict_baseline(method, _strip_ids(train, n_users, n_items),
                                   _strip_ids(test, n_users, n_items),
                                   params=SURPRISE_PARAMS.get(method), seed=seed)
        pred, secs, info = res.predictions, res.fit_seconds, dict(
            fallback_pairs=int(res.fallback.sum()))
    ev = evaluate(np.asarray(pred, np.float64), test, train)
    out = {k: (None if m is None else m.rmse) for k, m in ev._asdict().items()}
    out.update(seconds=secs, **info)
    return out


def _cached(cache: ResultCache, name: str, method: str, compute):
    """``compute()``'s result for ``name``, reused only while nothing that determines it
    has changed: the method's settings and the library version are part of its key."""
    key = {"method": method, "settings": repr(TTM_SETTINGS.get(method, SURPRISE_PARAMS.get(method))),
           "validation_fraction": VALIDATION_FRACTION, "title_words": TITLE_WORDS,
           "ttm_jax": ttm_jax.__version__}
    t0 = time.perf_counter()
    value = cache.load(name, key)
    if value is None:
        value = compute()
        cache.store(name, value, key)
        print(f"  {name}: {value.get('overall'):.4f} overall, {time.perf_counter() - t0:.1f}s",
              flush=True)
    return value


def _fmt(xs):
    m, s = mean_se(xs)
    return "–" if math.isnan(m) else f"{m:.4f} ({s:.4f})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/datasets/ml-100k")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--folds", type=int, default=5, help="CV folds (0: skip the CV study)")
    ap.add_argument("--methods", default=",".join(TTM + SURPRISE))
    ap.add_argument("--cache", default="benchmarks/out/movielens_cache")
    ap.add_argument("--out", default="benchmarks/out/movielens_table.md")
    args = ap.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    cache = ResultCache(args.cache)
    t_start = time.perf_counter()
    ml = read_movielens(args.data, user_ids=True, item_ids=True, title_words=TITLE_WORDS)
    data = ml.data
    nu, ni = data.n_users, data.n_items

    table = {m: [] for m in methods}
    for seed in range(args.seeds):
        split = cold_start_split(data, user_fraction=0.2, test_fraction=0.2, seed=seed)
        print(f"seed {seed}: train {split.train.n_ratings}, test {split.test.n_ratings}",
              flush=True)
        for m in methods:
            table[m].append(_cached(cache, f"cold-{m}-seed{seed}", m,
                                    functools.partial(_score, m, split.train, split.test, seed, nu, ni)))

    cv = {m: [] for m in methods}
    if args.folds:
        perm = np.random.default_rng(0).permutation(data.n_ratings)
        folds = np.array_split(perm, args.folds)
        for k, fold in enumerate(folds):
            test = data.subset(np.sort(fold))
            train = data.subset(np.sort(np.concatenate([f for j, f in enumerate(folds) if j != k])))
            print(f"fold {k}: train {train.n_ratings}, test {test.n_ratings}", flush=True)
            for m in methods:
                cv[m].append(_cached(cache, f"cv-{m}-fold{k}", m,
                                     functools.partial(_score, m, train, test, k, nu, ni,
                                                       id_dropout=False)))

    lines = [
        f"Command: `python benchmarks/movielens.py --data {args.data} --seeds {args.seeds} "
        f"--folds {args.folds}`",
        "",
        f"### Cold-start study: RMSE, mean (s.e.) over {args.seeds} seeds",
        "",
        "20% of users held out entirely (cold-start rows are their ratings); 20% of the other "
        "ratings are warm test pairs.",
        "",
        "| RMSE (s.e.) | " + " | ".join(LABELS[m] for m in methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for row, key in (("Overall", "overall"), ("Warm-start", "warm"), ("Cold-start", "cold_user")):
        lines.append(f"| {row} | " + " | ".join(_fmt([r[key] for r in table[m]])
                                                for m in methods) + " |")
    lines.append("| fit seconds | " + " | ".join(
        f"{mean_se([r['seconds'] for r in table[m]])[0]:.1f}" for m in methods) + " |")
    if "ttm_hybrid" in methods and args.seeds > 1:
        lines += ["", "Paired difference on cold-start RMSE, TTM (hybrid) minus each method "
                  "(same seeds; negative: TTM better):", ""]
        base = np.array([r["cold_user"] for r in table["ttm_hybrid"]])
        for m in methods:
            if m == "ttm_hybrid":
                continue
            d = base - np.array([r["cold_user"] for r in table[m]])
            lines.append(f"- vs {LABELS[m]}: {_fmt(d)}")
        base = np.array([r["warm"] for r in table["ttm_hybrid"]])
        if "svd" in methods:
            d = base - np.array([r["warm"] for r in table["svd"]])
            lines.append(f"- warm-start, vs SVD: {_fmt(d)}")
    lines += ["", "Cold-start fallbacks of the methods without covariates:", ""]
    lines += [f"- {LABELS[m]}: {FALLBACK[m]}" for m in methods if m in FALLBACK]
    if args.folds:
        lines += ["", f"### {args.folds}-fold cross-validated RMSE on all 100,000 ratings, "
                  "mean (s.e.) over folds", "",
                  "| " + " | ".join(LABELS[m] for m in methods) + " |",
                  "|" + "---|" * len(methods),
                  "| " + " | ".join(_fmt([r["overall"] for r in cv[m]]) for m in methods) + " |"]
    lines += ["", f"Wall time of this invocation: {time.perf_counter() - t_start:.0f} s "
              "(cached entries cost nothing)."]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
