"""MovieLens-100K: the two-tower model against scikit-surprise, warm and cold start.

Three studies, each result cached per (study, method, seed) in ``--cache`` under
a key holding everything that determines it (the method's settings, the data
options, the library version), so an interrupted run resumes where it stopped
and a changed setting is recomputed:

1. Table 3 layout (SPEC §7 on MovieLens): for each seed, 20% of users are held
   out entirely (all their ratings are cold-start test pairs) and 20% of the
   remaining ratings are warm test pairs (``cold_start_split``). RMSE overall,
   on warm pairs and on cold-start (held-out user) pairs, mean (s.e.) over seeds.
2. 5-fold cross-validated RMSE on all 100,000 ratings (random folds), directly
   comparable with scikit-surprise's published ML-100K table.
3. Top-10 ranking on the same folds (recall@10, NDCG@10, MAP@10; a held-out
   rating of 4 or more is relevant; items the user rated in training are
   excluded): TTM (hybrid) against scikit-surprise SVD and a popularity baseline.
   Tuned columns are tuned per fold for the 5-fold CV only.

Methods: TTM on covariates only; hybrid TTM (covariates plus id embedding
tables; held-out users read the id table's unknown row, so their covariates
carry them) twice: **tuned**, its two penalties chosen per split, and
**preset**, ``ttm_jax.presets.movielens_100k()`` fitted exactly as the README
shows (``TwoTowerRegressor(*movielens_100k(), seed=s).fit(train)``; its
penalties were chosen on seed 0's training set, which overlaps the other
splits' test sets); the preset with the user covariates zeroed (a control:
what the demographics add); scikit-surprise SVD and SVD++ at their library
defaults (the settings of its published table) and **tuned**, KNNBaseline,
CoClustering, BaselineOnly; global mean. Surprise methods score cold users by
their fallback (``ttm_jax.baselines.FALLBACK``).

Every tuned column is tuned the same way, inside each split's own training
set and never on its test pairs (``benchmarks/tune_movielens.py``,
``tune_split``): candidates fitted on an inner split, scored by their inner
validation RMSE, grids widened until every choice is interior.

Usage:
  python benchmarks/movielens.py --data ../shared/datasets/ml-100k --seeds 5
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import time
from pathlib import Path

import numpy as np
from common import ResultCache, machine, mean_se
from tune_movielens import RANK_K, RELEVANT, split_of, top_k_regressor, tune_split

import ttm_jax
from ttm_jax import ModelConfig, RatingData, TrainConfig, TwoTowerRegressor, evaluate
from ttm_jax.baselines import FALLBACK, fit_predict_baseline
from ttm_jax.data import read_movielens
from ttm_jax.evaluate import evaluate_ranking
from ttm_jax.presets import MOVIELENS_TITLE_WORDS, movielens_100k, movielens_100k_top_k

SURPRISE = ("svd", "svd_tuned", "svdpp", "svdpp_tuned", "knn_baseline", "coclustering",
            "baseline_only", "global_mean")
TTM = ("ttm_cov", "ttm_ensemble", "ttm_tuned", "ttm_hybrid", "ttm_ids", "ttm_mnar")
#: Members of the ensemble column: the tuned model fitted with seeds s .. s + 4, averaged.
ENSEMBLE = 5
LABELS = {
    "ttm_cov": "TTM (covariates)",
    "ttm_ensemble": "TTM (hybrid, tuned, mean of 5)",
    "ttm_tuned": "TTM (hybrid, tuned)",
    "ttm_hybrid": "TTM (hybrid, preset)",
    "ttm_ids": "TTM (hybrid preset, no user cov.)",
    "ttm_mnar": "TTM (hybrid, top-k)",
    "svd": "SVD",
    "svdpp": "SVD++",
    "svd_tuned": "SVD (tuned)",
    "svdpp_tuned": "SVD++ (tuned)",
    "knn_baseline": "KNNBaseline",
    "coclustering": "CoClustering",
    "baseline_only": "BaselineOnly",
    "global_mean": "Global mean",
    "popularity": "Popularity",
}
# SVD++ caches its ratings (speed only); the library defaults otherwise.
SURPRISE_PARAMS = {"svdpp": {"cache_ratings": True}, "svdpp_tuned": {"cache_ratings": True}}
#: The scikit-surprise class behind each column.
SURPRISE_METHOD = {"svd_tuned": "svd", "svdpp_tuned": "svdpp"}
#: The tuned columns, and what each is tuned as by benchmarks/tune_movielens.tune_split: on
#: an inner split of each split's own training set, so never on a test pair it is scored on.
TUNED = {"ttm_ensemble": "ttm", "ttm_tuned": "ttm", "svd_tuned": "svd", "svdpp_tuned": "svdpp",
         "ttm_mnar": "ttm_mnar"}
#: The columns of the CV study only: the top-k model is a ranking model, scored where the
#: ranking study is.
CV_ONLY = ("ttm_mnar",)
# The methods ranked in the top-k study (on the CV folds), besides the popularity baseline.
RANKED = ("ttm_mnar", "ttm_ensemble", "ttm_tuned", "ttm_hybrid", "svd", "svd_tuned")

# The covariate-only model keeps the settings (and the optimiser) RESULTS.md §5 measured it
# with: Adam, batch 4096, a constant step, the early-stopped model.
TTM_COV = dict(
    model=ModelConfig(hidden=(64,), embedding_dim=32),
    train=TrainConfig(optimizer="adam", batch_size=4096, decay_rate=1.0, learning_rate=3e-3,
                      penalty_weight=1e-4, max_epochs=300, eval_every_epochs=2, patience=6,
                      max_seconds=60),
)
VALIDATION_FRACTION = 0.1  # of the covariate-only model's early stopping


def _settings(method: str, tuned: dict | None = None):
    """What determines a method's fit (its cache key holds it): ``tuned`` is the split's
    tuned parameters of a :data:`TUNED` column."""
    if method == "ttm_cov":
        return TTM_COV
    if method in TTM:
        model, train = movielens_100k_top_k() if method == "ttm_mnar" else movielens_100k()
        return dict(model=model, train=train.replace(**(tuned or {})))
    return {**SURPRISE_PARAMS.get(method, {}), **(tuned or {})} or None


def _without_user_covariates(data: RatingData) -> RatingData:
    """The control ``ttm_ids``: every user's covariates zeroed, so a user is its id alone."""
    return RatingData(np.zeros_like(data.user_features), data.item_features, data.user_ids,
                      data.item_ids, data.ratings)


def _fit_ttm(method, train, test, seed, tuned=None):
    t0 = time.perf_counter()
    if method == "ttm_cov":
        # refit="none": the protocol RESULTS.md §5 measured (the early-stopped model).
        reg = TwoTowerRegressor(TTM_COV["model"], TTM_COV["train"],
                                validation_fraction=VALIDATION_FRACTION, seed=seed,
                                refit="none", progress=False)
    elif method == "ttm_mnar":
        # The top-k preset as its docstring says to fit it: all epochs, no hold-out.
        reg = top_k_regressor(_settings(method, tuned)["train"], seed)
    else:
        # Exactly what a user of the preset runs (with the split's tuned penalties in
        # ttm_tuned): the regressor's own hold-out and refit.
        settings = _settings(method, tuned)
        reg = TwoTowerRegressor(settings["model"], settings["train"], seed=seed,
                                progress=False,
                                ensemble=ENSEMBLE if method == "ttm_ensemble" else 1)
    reg.fit(train if method != "ttm_ids" else _without_user_covariates(train))
    pred = reg.predict(test if method != "ttm_ids" else _without_user_covariates(test))
    info = dict(epochs=reg.result_.epochs_run, best_epoch=reg.result_.best_epoch,
                stop=str(reg.result_.stop_reason))
    return pred, time.perf_counter() - t0, info, reg


def _all_pairs(data: RatingData) -> RatingData:
    u, i = np.divmod(np.arange(data.n_users * data.n_items), data.n_items)
    return RatingData(data.user_features, data.item_features, u.astype(np.int32),
                      i.astype(np.int32), np.zeros(u.size, np.float32))


def _score(method, train: RatingData, test: RatingData, seed: int, *, rank: bool = False,
           tuned: dict | None = None):
    """RMSE (overall, warm, cold) of ``method`` trained on ``train``; with ``rank``, also its
    recall/NDCG/MAP at ``RANK_K`` on ``test`` (items ``train`` rated excluded). ``tuned``:
    the split's tuned parameters of a :data:`TUNED` column."""
    ranking = None
    if method in TTM:
        pred, secs, info, reg = _fit_ttm(method, train, test, seed, tuned)
        if rank:
            ranking = evaluate_ranking(reg.model_, test, train, k=RANK_K, threshold=RELEVANT)
    else:
        algo = SURPRISE_METHOD.get(method, method)
        params = _settings(method, tuned)
        res = fit_predict_baseline(algo, train, test, params=params, seed=seed)
        pred, secs, info = res.predictions, res.fit_seconds, dict(
            fallback_pairs=int(res.fallback.sum()))
        if rank:
            # Unclipped estimates: clipping at 5 would tie every item estimated above it.
            full = fit_predict_baseline(algo, train, _all_pairs(train), params=params,
                                        seed=seed, clip=False)
            scores = full.predictions.reshape(train.n_users, train.n_items)
            ranking = evaluate_ranking(scores, test, train, k=RANK_K, threshold=RELEVANT)
    ev = evaluate(np.asarray(pred, np.float64), test, train)
    out = {k: (None if m is None else m.rmse) for k, m in ev._asdict().items()}
    out.update(seconds=secs, **info)
    if ranking is not None:
        out["ranking"] = ranking._asdict()
    return out


def _popularity(train: RatingData, test: RatingData) -> dict:
    """The popularity baseline's ranking: every user gets the most-rated items they have not rated."""
    counts = np.bincount(train.item_ids, minlength=train.n_items).astype(np.float64)
    scores = np.broadcast_to(counts, (train.n_users, train.n_items))
    return evaluate_ranking(scores, test, train, k=RANK_K, threshold=RELEVANT)._asdict()


def _cached(cache: ResultCache, name: str, method: str, compute, tuned=None):
    """``compute()``'s result for ``name``, reused only while nothing that determines it
    has changed: the method's settings (tuned ones included) and the library version are
    part of its key."""
    key = {"method": method, "settings": repr(_settings(method, tuned)),
           "validation_fraction": VALIDATION_FRACTION, "title_words": MOVIELENS_TITLE_WORDS,
           "rank": [RANK_K, RELEVANT], "ttm_jax": ttm_jax.__version__}
    if method == "ttm_ensemble":
        key["ensemble"] = ENSEMBLE
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
    ap.add_argument("--json", default="benchmarks/out/movielens.json",
                    help="every split's figures (published as benchmarks/results/movielens.json)")
    args = ap.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    cache = ResultCache(args.cache)
    t_start = time.perf_counter()
    data = read_movielens(args.data, title_words=MOVIELENS_TITLE_WORDS).data

    def tuned_params(train, study, index):
        """The split's tuned parameters per TUNED column (tuned on its own training set)."""
        wanted = sorted({TUNED[m] for m in methods
                         if m in TUNED and (study == "cv" or m not in CV_ONLY)})
        if not wanted:
            return {}
        tuned = tune_split(train, study, index, cache, methods=wanted)
        choices.append((study, index, tuned))
        return {m: tuned[TUNED[m]]["params"] for m in methods if TUNED.get(m) in tuned}

    choices = []

    cold_methods = [m for m in methods if m not in CV_ONLY]
    table = {m: [] for m in cold_methods}
    for seed in range(args.seeds):
        train, test = split_of(data, "cold", seed)
        print(f"seed {seed}: train {train.n_ratings}, test {test.n_ratings}", flush=True)
        tuned = tuned_params(train, "cold", seed)
        for m in cold_methods:
            table[m].append(_cached(cache, f"cold-{m}-seed{seed}", m,
                                    functools.partial(_score, m, train, test, seed,
                                                      tuned=tuned.get(m)), tuned.get(m)))

    cv = {m: [] for m in methods}
    popularity = []
    for k in range(args.folds):
        train, test = split_of(data, "cv", k, n_folds=args.folds)
        print(f"fold {k}: train {train.n_ratings}, test {test.n_ratings}", flush=True)
        tuned = tuned_params(train, "cv", k) if args.folds == 5 else {}
        for m in methods:
            if m in TUNED and m not in tuned:
                continue  # tuned per fold only for the 5-fold CV
            cv[m].append(_cached(cache, f"cv-{m}-fold{k}", m,
                                 functools.partial(_score, m, train, test, k,
                                                   rank=m in RANKED, tuned=tuned.get(m)),
                                 tuned.get(m)))
        popularity.append(_popularity(train, test))

    command = (f"python benchmarks/movielens.py --data {args.data} --seeds {args.seeds} "
               f"--folds {args.folds}")
    lines = [
        f"Command: `{command}`",
        "",
        f"### Cold-start study: RMSE, mean (s.e.) over {args.seeds} seeds",
        "",
        "20% of users held out entirely (cold-start rows are their ratings); 20% of the other "
        "ratings are warm test pairs.",
        "",
        "| RMSE (s.e.) | " + " | ".join(LABELS[m] for m in cold_methods) + " |",
        "|---|" + "---|" * len(cold_methods),
    ]
    for row, key in (("Overall", "overall"), ("Warm-start", "warm"), ("Cold-start", "cold_user")):
        lines.append(f"| {row} | " + " | ".join(_fmt([r[key] for r in table[m]])
                                                for m in cold_methods) + " |")
    lines.append("| fit seconds | " + " | ".join(
        f"{mean_se([r['seconds'] for r in table[m]])[0]:.1f}" for m in cold_methods) + " |")
    ours = next((m for m in ("ttm_ensemble", "ttm_tuned", "ttm_hybrid") if m in cold_methods),
                None)
    if ours and args.seeds > 1:
        lines += ["", f"Paired difference on cold-start RMSE, {LABELS[ours]} minus each method "
                  "(same seeds; negative: TTM better):", ""]
        base = np.array([r["cold_user"] for r in table[ours]])
        for m in cold_methods:
            if m == ours:
                continue
            d = base - np.array([r["cold_user"] for r in table[m]])
            lines.append(f"- vs {LABELS[m]}: {_fmt(d)}")
        base = np.array([r["warm"] for r in table[ours]])
        for m in ("svd", "svdpp", "svd_tuned", "svdpp_tuned"):
            if m in cold_methods:
                d = base - np.array([r["warm"] for r in table[m]])
                lines.append(f"- warm-start, vs {LABELS[m]}: {_fmt(d)}")
    lines += ["", "Cold-start fallbacks of the methods without covariates:", ""]
    lines += [f"- {LABELS[m]}: {FALLBACK[SURPRISE_METHOD.get(m, m)]}" for m in cold_methods
              if SURPRISE_METHOD.get(m, m) in FALLBACK]
    if args.folds:
        lines += ["", f"### {args.folds}-fold cross-validated RMSE on all 100,000 ratings, "
                  "mean (s.e.) over folds", "",
                  "| " + " | ".join(LABELS[m] for m in methods) + " |",
                  "|" + "---|" * len(methods),
                  "| " + " | ".join(_fmt([r["overall"] for r in cv[m]]) for m in methods) + " |"]
        ranked = {m: [r["ranking"] for r in cv[m]] for m in RANKED if cv.get(m)}
        ranked["popularity"] = popularity
        lines += ["", f"### Top-{RANK_K} ranking on the {args.folds} CV folds, mean (s.e.) over "
                  "folds", "",
                  f"Each user with a held-out rating of at least {RELEVANT:g} (relevant items) "
                  "gets a list of the items they did not rate in the fold's training set; "
                  "SVD ranks by its unclipped estimates, the popularity baseline by the number "
                  "of training ratings, the TTM columns by their scores (the top-k model's "
                  "trained with the missing-rating term).", "",
                  f"| method | recall@{RANK_K} | NDCG@{RANK_K} | MAP@{RANK_K} | users |",
                  "|---|---|---|---|---|"]
        for m, rows in ranked.items():
            lines.append(f"| {LABELS[m]} | " + " | ".join(
                _fmt([r[name] for r in rows]) for name in ("recall", "ndcg", "map"))
                + f" | {rows[0]['n_users']} |")
    if choices:
        names = sorted({m for _, _, tuned in choices for m in tuned})
        lines += ["", "### What tuning chose, per split (on an inner split of that split's "
                  "training set; benchmarks/tune_movielens.py)", "",
                  "| split | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for study, index, tuned in choices:
            cells = []
            for m in names:
                if m not in tuned:  # a CV-only column, on a cold-start split
                    cells.append("—")
                    continue
                params, settled = tuned[m]["params"], tuned[m]["settled"]
                text = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                 for k, v in params.items())
                off = [f"{k}: {v}" for k, v in settled.items() if v != "interior"]
                cells.append(text + (f" ({'; '.join(off)})" if off else ""))
            lines.append(f"| {study} {index} | " + " | ".join(cells) + " |")
        lines += ["", "Every value is interior (a worse one tried on each side) unless marked."]
    lines += ["", f"Wall time of this invocation: {time.perf_counter() - t_start:.0f} s "
              "(cached entries cost nothing)."]
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    report = dict(
        meta=dict(command=command, date=datetime.date.today().isoformat(), machine=machine()),
        cold={m: {k: [r[k] for r in table[m]] for k in ("overall", "warm", "cold_user")}
              for m in cold_methods},
        cv={m: [r["overall"] for r in cv[m]] for m in methods if cv.get(m)},
        ranking=({m: {k: [r[k] for r in rows] for k in ("recall", "ndcg", "map")}
                  for m, rows in ranked.items()} if args.folds else {}),
        choices=[dict(study=study, index=index,
                      params={m: t["params"] for m, t in tuned.items()})
                 for study, index, tuned in choices])
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(text)


if __name__ == "__main__":
    main()
