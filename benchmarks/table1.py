"""Table 1 of the paper (SPEC §6): TTM against scikit-surprise on synthetic data.

For each setting (n, m, d) and replication r, a fresh data set is drawn from
seed ``1000 * setting + r`` (|Ω| = 100,000; D = 50, p = 30) and split 70/30
into train/test. Every method chooses its hyperparameters on the training set
only, under one rule (docs/table1.md, "Tuning"): a grid searched until the
chosen value of every hyperparameter is interior (worse values tried on both
sides) or at its natural limit, the chosen values reported with the table.

- ``ttm``: this library, ``ModelConfig()`` / ``TrainConfig()`` through
  :func:`ttm_jax.holdout_then_refit`: λ chosen by validation RMSE on a 20%
  hold-out of the training set from the paper's grid ``{10^(-6+k/3), k = 0..24}``
  (all 25 trained at once under ``vmap``), the epochs by early stopping on
  that hold-out, then the refit on all the training ratings (``--ttm-refit``:
  ``warm``, the library's default, ``scratch`` or ``none``).
- ``svd`` (the paper's rSVD), ``svdpp``, ``knn`` (KNNBasic, msd similarity),
  ``coclustering`` (users and items alike): tuned by cross-validation on the
  training set (:func:`ttm_jax.baselines.tune_baseline`: the grids below,
  widened until interior; epochs and step size searched for SVD and SVD++),
  then refitted on the whole training set and scored on test.

With ``--tune-once`` every method tunes on replication 0 and reuses its
choice: surprise methods their parameters, TTM its λ (later replications run
the protocol with that one λ, early-stopping on their own hold-out).

Every run is cached as one JSON file in ``--cache``, keyed on everything that
determines it (the options, the configurations, the library version), so an
interrupted run resumes and a changed default never reuses an old figure. A
TTM run in progress also checkpoints every 100 epochs (``--checkpoints``).
Outputs in ``--out-dir``: ``table1.md`` (paper's layout, ours beside the
paper's, and the chosen hyperparameters), ``table1_runs.json`` (every run),
``table1.png`` (grouped bars).

Usage:
  python benchmarks/table1.py [--settings 1,2] [--reps 5] [--methods ttm,svd]
                              [--cv-folds 5] [--reduced-grids] [--tune-once] [--quick]
                              [--ttm-lambdas paper|1e-3,...] [--ttm-refit warm|scratch|none]
  python benchmarks/table1.py --time-grid     # vmapped λ grid vs 25 sequential fits
  python benchmarks/table1.py --check-caps 3 --tune-once  # past every cap the searches hit
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import multiprocessing
import resource
import shutil
import site
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
from common import ResultCache, StoredScores, machine, mean_se
from tqdm.auto import tqdm

import ttm_jax
from ttm_jax import (
    ModelConfig,
    TrainConfig,
    evaluate,
    fit,
    fit_lambda_grid,
    holdout_then_refit,
    init_model,
    make_synthetic,
    random_split,
)
from ttm_jax.baselines import (
    LIMITS,
    fit_predict_baseline,
    search_point,
    surprise_params,
    tune_baseline,
)
from ttm_jax.protocols import REFIT_MODES
from ttm_jax.training import PAPER_LAMBDAS, check_lambdas

SETTINGS = [(n, n, d) for n in (1500, 2000, 3000) for d in (20, 30, 40)]
N_RATINGS = 100_000
METHODS = ("ttm", "svd", "knn", "svdpp", "coclustering")
LABELS = {"ttm": "TTM", "svd": "rSVD", "knn": "KNN", "svdpp": "SVDpp",
          "coclustering": "Co-Clust"}
# SPEC §6, Table 1: test RMSE mean (s.e.) over 50 replications, columns as METHODS.
PAPER = {
    (1500, 1500, 20): ((0.496, 0.011), (1.566, 0.008), (1.990, 0.013), (1.507, 0.008), (1.815, 0.012)),
    (1500, 1500, 30): ((1.330, 0.010), (1.742, 0.009), (2.063, 0.011), (1.704, 0.007), (1.944, 0.010)),
    (1500, 1500, 40): ((1.604, 0.011), (1.845, 0.007), (2.075, 0.012), (1.806, 0.007), (2.015, 0.011)),
    (2000, 2000, 20): ((0.438, 0.022), (1.908, 0.010), (2.074, 0.016), (1.849, 0.008), (1.907, 0.013)),
    (2000, 2000, 30): ((1.358, 0.013), (2.041, 0.013), (2.120, 0.012), (1.995, 0.011), (2.027, 0.013)),
    (2000, 2000, 40): ((1.703, 0.009), (2.110, 0.010), (2.150, 0.010), (2.073, 0.009), (2.089, 0.010)),
    (3000, 3000, 20): ((0.373, 0.010), (2.105, 0.023), (2.301, 0.024), (2.198, 0.021), (2.149, 0.022)),
    (3000, 3000, 30): ((1.353, 0.013), (2.196, 0.012), (2.311, 0.012), (2.204, 0.012), (2.246, 0.015)),
    (3000, 3000, 40): ((1.862, 0.010), (2.209, 0.020), (2.338, 0.021), (2.219, 0.019), (2.291, 0.021)),
}
PAPER = {k: dict(zip(METHODS, v)) for k, v in PAPER.items()}

# Surprise grids: the starting points of tune_baseline's search, which widens
# each past an edge until its chosen value is interior or at a natural limit.
# K and cluster counts start from the paper's grids. surprise's default SGD schedule
# (20 epochs at step 0.005) stops far short of convergence on ratings with standard
# deviation ≈ 2.2, so SVD and SVD++ search epochs and step size too, in a second
# stage (with rank and penalty at their best), which keeps the searches affordable.
FULL_GRIDS = {
    "svd": [{"n_factors": [10, 30, 100], "reg_all": [0.1, 0.3, 1.0]},
            {"lr_all": [0.005, 0.01, 0.02], "n_epochs": [50, 100, 200]}],
    # Each SVD++ fit costs several rSVD fits: started where rSVD's searches end (small
    # rank, reg_all ≈ 0.1, a large step, many epochs), one parameter per stage, so that
    # a start at the optimum costs its 8 neighbours and itself.
    "svdpp": [{"n_factors": [5, 10, 20]}, {"reg_all": [0.05, 0.1, 0.2]},
              {"lr_all": [0.01, 0.02, 0.04]}, {"n_epochs": [50, 100, 200]}],
    "knn": {"k": list(range(5, 51, 5))},
    "coclustering": {"n_cltr": list(range(5, 51, 5))},
}
REDUCED_GRIDS = {
    "svd": [{"n_factors": [10, 50], "reg_all": [0.1, 0.5]}, {"lr_all": [0.01], "n_epochs": [100]}],
    "svdpp": [{"n_factors": [10], "reg_all": [0.1, 0.5]}, {"lr_all": [0.01], "n_epochs": [50]}],
    "knn": {"k": [5, 20, 50]},
    "coclustering": {"n_cltr": [5, 20, 50]},
}
QUICK_GRIDS = {
    "svd": [{"n_factors": [5, 10], "reg_all": [0.1]}, {"lr_all": [0.01], "n_epochs": [20]}],
    "svdpp": [{"n_factors": [5], "reg_all": [0.1]}, {"lr_all": [0.01], "n_epochs": [10]}],
    "knn": {"k": [5, 20]},
    "coclustering": {"n_cltr": [3, 5]},
}
#: Bumped whenever the table's protocol changes, so that no cached run of an older one is reused.
PROTOCOL_VERSION = 3
#: The searches' caps (:data:`ttm_jax.baselines.LIMITS`) the cached competitor runs of
#: protocol 3 were made with. A competitor's key names the caps only where they differ
#: from these, so that a changed cap recomputes its runs and the committed runs stay valid.
PROTOCOL_3_LIMITS = {
    "n_factors": [1, 400], "reg_all": [0.0, 50.0], "lr_all": [1e-4, 0.1],
    "n_epochs": [5, 800], "k": [1, 1000], "n_cltr": [1, 100],
}
#: The share of the training set every method tunes on when ``--cv-folds 0`` (and TTM always).
HOLDOUT_FRACTION = 0.2
QUICK_SETTING = (200, 200, 20)
QUICK_RATINGS = 6000
# --quick tunes once, as the committed table does; a test sets False to
# reach the per-replication path at quick cost.
QUICK_TUNE_ONCE = True


def tune_surprise(method, train, grid, folds, seed, memo=None) -> dict:
    """``method``'s parameters, widened until interior: by ``folds``-fold CV on ``train``,
    or (``folds=0``) on the 20% hold-out TTM tunes on (:func:`holdout_split`).

    ``memo``: the search's scores so far (:class:`common.StoredScores`), so that a
    search stopped part-way resumes from its last scored point."""
    if folds:
        res = tune_baseline(method, train, grid, folds=folds, seed=seed, memo=memo)
    else:
        part, holdout = holdout_split(train, seed)
        res = tune_baseline(method, part, grid, validation=holdout, seed=seed, memo=memo)
    return dict(params=res.params, tuning_rmse=res.rmse, settled=res.settled,
                trials=len(res.trials))


#: The bounds of :data:`ttm_jax.baselines.LIMITS` that are the searches' caps (what they
#: could afford), not natural limits of a method, as ``(parameter, 0 low | 1 high)``. A
#: choice at a natural limit (one cluster or neighbour, rank 1, no penalty) is settled; a
#: choice at a cap says only that the optimum is there or beyond, so ``--check-caps``
#: scores one step past it.
CAPS = frozenset({("n_factors", 1), ("reg_all", 1), ("lr_all", 0), ("lr_all", 1),
                  ("n_epochs", 0), ("n_epochs", 1), ("k", 1), ("n_cltr", 1)})


def _reps_text(reps) -> str:
    """``0–4`` for consecutive replications, ``0, 2`` otherwise."""
    if len(reps) > 1 and list(reps) == list(range(reps[0], reps[-1] + 1)):
        return f"{reps[0]}–{reps[-1]}"
    return ", ".join(map(str, reps))


def capped_choices(method, tuned) -> list[tuple[str, object, int]]:
    """``(parameter, chosen value, direction)`` for each choice of a tuning that sits at a
    cap (:data:`CAPS`), ``direction`` +1 at an upper cap and -1 at a lower one."""
    point, out = search_point(method, tuned["params"]), []
    for name, why in tuned["settled"].items():
        value = point[name]
        side = 1 if value == LIMITS[name][1] else 0
        if why == "limit" and (name, side) in CAPS:
            out.append((name, value, 1 if side else -1))
    return out


#: Why a walk past a cap cannot go beyond a value, per ``(parameter, direction)``: the
#: model class stops growing there. An n × m matrix has rank at most min(n, m), and with
#: the penalty on both factors any rank from there on has the same optimum (the
#: nuclear-norm problem; Srebro, Rennie and Jaakkola, NIPS 2004), so more factors add
#: nothing; co-clusters are at most min(n, m); a user has at most n − 1 neighbours; one
#: epoch is the fewest.
NATURAL_LIMITS = {
    ("n_factors", 1): ("rank min(n, m)", lambda n, m: min(n, m)),
    ("n_cltr", 1): ("min(n, m) clusters", lambda n, m: min(n, m)),
    ("k", 1): ("n − 1 neighbours", lambda n, m: n - 1),
    ("n_epochs", -1): ("one epoch", lambda n, m: 1),
}


#: A doubling that changes the tuning RMSE by less than this has reached the fit's
#: fixed point: scikit-surprise's SGD visits the ratings in the same order every epoch,
#: so once it has converged, more epochs return the same predictions. Far below the
#: table's precision (three decimals), so a walk ends there, converged.
CONVERGED = 1e-6


def natural_limit(param: str, direction: int, setting) -> tuple[int | None, str | None]:
    """``(value, why)``: the value a walk from a cap of ``param`` (``direction`` +1 up, −1
    down) stops at, for ``setting`` = (n users, m items, d), and the reason;
    ``(None, None)`` where there is none (step sizes, penalties, epochs upward). See
    :data:`NATURAL_LIMITS`."""
    if (param, direction) not in NATURAL_LIMITS:
        return None, None
    why, value = NATURAL_LIMITS[(param, direction)]
    return value(setting[0], setting[1]), why


def walk_past_cap(value, value_score: float, direction: int, score, steps: int,
                  limit=None) -> tuple[list, str]:
    """From a choice ``value`` at a cap (tuning RMSE ``value_score``), double it
    (``direction`` +1) or halve it (−1), integers rounded, clipped at ``limit``, while
    ``score(v)`` improves, ``steps`` steps at most.

    Returns ``(walk, end)``: ``walk`` the ``(value, score)`` pairs from the cap on, and
    ``end`` why it stopped: ``"converged"`` (the last step changed the score by under
    :data:`CONVERGED`: the fit no longer changes), ``"worse"`` (it scored worse than the
    one before), ``"limit"`` (it reached ``limit`` still improving), ``"steps"`` (``steps``
    taken, still improving) or ``"missing"`` (``score`` returned ``None``: a step not
    cached, under ``--cached-only``)."""
    walk = [(value, value_score)]
    while len(walk) <= steps:
        last = walk[-1][0]
        if limit is not None and (last >= limit if direction > 0 else last <= limit):
            return walk, "limit"
        v = last * 2 if direction > 0 else last / 2
        v = int(round(v)) if isinstance(value, int) else v
        if limit is not None:
            v = min(v, limit) if direction > 0 else max(v, limit)
        out = score(v)
        if out is None:
            return walk, "missing"
        walk.append((v, out))
        if abs(walk[-2][1] - out) < CONVERGED:
            return walk, "converged"
        if out >= walk[-2][1]:
            return walk, "worse"
    if limit is not None and walk[-1][0] == limit:
        return walk, "limit"
    return walk, "steps"


def refit_surprise(m: str, s, s_idx: int, r: int, n_ratings: int, params: dict) -> float:
    """Test RMSE of competitor ``m`` fitted with surprise ``params`` on replication ``r``
    of setting ``s``: its split and seed ``1000 s_idx + r``. The table's own run calls it
    with the tuned values (:func:`run_one`), the check past the caps with other ones."""
    split = train_test(s, s_idx, r, n_ratings)
    return score_surprise(m, params, split.train, split.test, 1000 * s_idx + r)


def check_caps(plan: Plan, settings, methods, out_dir: Path, steps: int = 1, reps: int = 1,
               cached_only: bool = False, jobs: int = 1, log=print) -> list[dict]:
    """For every competitor tuning (replication 0's) whose choice sits at a cap: the
    tuning score past the cap, the other values at their choices, scored exactly as the
    search scored its candidates (the same hold-out or folds, seed and call), walking on
    by doubling (or halving, at a lower cap) while the score improves, ``steps`` steps at
    most and never past the method's natural limit (:func:`walk_past_cap`,
    :func:`natural_limit`). A worse score on the first step: the choice is interior after all (a worse
    value tried on each side). Better: the cap binds; the walk then says how far the
    optimum lies past it and what it gains, and a margin over that method is an upper
    bound, so replications ``0 … reps − 1`` are refitted at the walk's best value and
    scored on test, beside the table's own runs, ``jobs`` of them at once in their own
    processes (scikit-surprise fits on one core; a fit at full rank takes half an hour).
    ``cached_only``: compute nothing, report what is cached (a walk or a replication not
    yet run is left out and said so). Written to ``table1_caps.md`` / ``.json`` in ``out_dir``."""

    def obtain(name, key, compute):
        return plan.cache.load(name, key) if cached_only else plan.cache.get(name, compute, key)

    def tuning_score(m, s, s_idx, point):
        # A grid of one value per parameter: the search scores that point alone, by
        # the very call its tuning scored every candidate with.
        train = train_test(s, s_idx, 0, plan.n_ratings).train
        return tune_surprise(m, train, {k: [x] for k, x in point.items()}, plan.folds,
                             1000 * s_idx)["tuning_rmse"]

    def cap_score(m, s, s_idx, name, chosen, param, v):
        point = {**chosen, param: v}
        out = obtain(f"cap-{name[len('tune-'):]}-{param}-{v}", {**plan.key(m), "point": point},
                     functools.partial(tuning_score, m, s, s_idx, point))
        # Each step as it arrives: one past a cap can take half an hour.
        log(f"{name}: {param} {v:g}: "
            + ("not cached" if out is None else f"tuning RMSE {out:.4f}"))
        return out

    def refit_all(m, s, s_idx, param, best, params) -> dict:
        """Test RMSE of replications ``0 … reps − 1`` refitted at ``params``, by
        replication (``None``: not cached and ``cached_only``). Those not cached yet run
        ``jobs`` at a time, each stored as it ends."""
        key = {**plan.key(m), "params": params}
        name = {r: f"capfit-{plan.run_name(s, s_idx, r, m)}-{param}-{best}" for r in range(reps)}
        tests = {r: plan.cache.load(name[r], key) for r in range(reps)}
        todo = [r for r, test in tests.items() if test is None]
        if cached_only or not todo:
            return tests

        def done(r, test):
            plan.cache.store(name[r], test, key)
            log(f"{name[r]}: test RMSE {test:.4f}")
            tests[r] = test

        if jobs == 1:
            for r in todo:
                done(r, refit_surprise(m, s, s_idx, r, plan.n_ratings, params))
            return tests
        # Spawned, not forked: jax's threads are running in this process. The workers
        # find this module (and common.py) where it lies, however it was imported.
        with ProcessPoolExecutor(min(jobs, len(todo)),
                                 mp_context=multiprocessing.get_context("spawn"),
                                 initializer=site.addsitedir,
                                 initargs=(str(Path(__file__).resolve().parent),)) as pool:
            futures = {pool.submit(refit_surprise, m, s, s_idx, r, plan.n_ratings, params): r
                       for r in todo}
            for future in as_completed(futures):
                done(futures[future], future.result())
        return tests

    rows = []
    for s in settings:
        s_idx = SETTINGS.index(s) + 1 if s in SETTINGS else 0
        for m in methods:
            if m not in plan.grids:
                continue
            name = "tune-" + plan.run_name(s, s_idx, 0, m)
            tuned = plan.cache.load(name, plan.key(m))
            if tuned is None:
                log(f"{name}: not tuned yet (run the table first); not checked")
                continue
            chosen = search_point(m, tuned["params"])
            for param, value, direction in capped_choices(m, tuned):
                limit, limit_why = natural_limit(param, direction, s)
                walk, end = walk_past_cap(
                    value, tuned["tuning_rmse"], direction,
                    functools.partial(cap_score, m, s, s_idx, name, chosen, param), steps, limit)
                log(f"{name}: {param} at the cap {value}, then past it: "
                    + ", ".join(f"{v:g}: {e:.4f}" for v, e in walk) + f" (ended: {end})")
                # Converged: the last doubling changed nothing, so the value before it is
                # the same fit at half the cost.
                best = min(walk[:-1] if end == "converged" else walk, key=lambda vs: vs[1])
                row = dict(setting=list(s), method=m, parameter=param, cap=value,
                           chosen_rmse=tuned["tuning_rmse"], walk=walk,
                           binds=best[0] != value, best=best[0], best_rmse=best[1],
                           end=end, limit=limit, limit_why=limit_why,
                           test_rmse=[], table_rmse=[], reps=[])
                if row["binds"]:
                    # What the row would read at the better value: each replication refitted
                    # and scored on test as run_one does, beside the table's own runs.
                    params = surprise_params(m, {**chosen, param: best[0]}, 1000 * s_idx)
                    for r, test in refit_all(m, s, s_idx, param, best[0], params).items():
                        run = plan.cache.load(plan.run_name(s, s_idx, r, m), plan.key(m))
                        if run is not None and test is not None:
                            row["reps"].append(r)
                            row["test_rmse"].append(test)
                            row["table_rmse"].append(run["test_rmse"])
                    if row["reps"]:
                        log(f"{name}: test RMSE at {param} {best[0]}: "
                            f"{_fmt(*mean_se(row['test_rmse']))}; the table's: "
                            f"{_fmt(*mean_se(row['table_rmse']))} (replications {row['reps']})")
                rows.append(row)
    lines = ["| (n, m, d) | method | parameter | at the cap: value, tuning RMSE | past it "
             "(value: tuning RMSE) | verdict | test RMSE: the table's → at the best value "
             "(replications) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        n, mm, d = r["setting"]
        past = ", ".join(f"{v:g}: {e:.4f}" for v, e in r["walk"][1:])
        if len(r["walk"]) == 1:
            verdict = "not checked (no step past the cap cached)"
        elif not r["binds"]:
            verdict = "interior: no better past the cap"
        else:
            verdict = (f"the cap binds: best {r['best']:g} "
                       f"({r['best_rmse'] - r['chosen_rmse']:+.4f}), "
                       + ("worse past it" if r["end"] == "worse" else
                          f"converged (the last doubling changed it by under {CONVERGED:g})"
                          if r["end"] == "converged" else
                          f"still improving up to its natural limit {r['limit']:g} "
                          f"({r['limit_why']})" if r["end"] == "limit" else
                          f"still improving after {len(r['walk']) - 1} step(s)"
                          + (" (no further step cached)" if r["end"] == "missing" else "")))
        test = ("" if not r["binds"] else "not refitted" if not r["reps"] else
                f"{_fmt(*mean_se(r['table_rmse']))} → {_fmt(*mean_se(r['test_rmse']))} "
                f"({_reps_text(r['reps'])})")
        lines.append(f"| ({n},{mm},{d}) | {LABELS[r['method']]} | {r['parameter']} | "
                     f"{r['cap']:g}, {r['chosen_rmse']:.4f} | {past} | {verdict} | {test} |")
    text = "\n".join(lines) + "\n"
    (out_dir / "table1_caps.md").write_text(text)
    (out_dir / "table1_caps.json").write_text(json.dumps(rows, indent=1))
    print(text)
    return rows


def holdout_split(train, seed):
    """``(rest, hold-out)``: the same 20% of ``train`` that TTM's protocol holds out on the
    replication seeded ``seed`` (``holdout_then_refit(..., split_seed=seed + 1)``, :func:`score_ttm`)."""
    split = random_split(train, HOLDOUT_FRACTION, seed=seed + 1)
    return split.train, split.test


def score_surprise(method, params, train, test, seed):
    """Fit ``method`` with ``params`` on all of ``train``; test RMSE."""
    pred = fit_predict_baseline(method, train, test, params=params, seed=seed).predictions
    return evaluate(pred, test).overall.rmse


def score_ttm(train, test, seed, model_cfg, train_cfg, lambdas, refit="warm",
              checkpoint_dir=None, progress=False) -> dict:
    """The library's protocol (:func:`ttm_jax.holdout_then_refit`) on ``train``: λ from
    ``lambdas`` and the epochs by early stopping on a 20% hold-out, then the refit; the
    test RMSE of the model it returns, and of the early-stopped one.

    ``checkpoint_dir``: where both fits save their state every 100 epochs, and
    resume from when run again. ``progress``: the fits' own reports under the
    table's bar."""
    t0 = time.perf_counter()
    out = holdout_then_refit(model_cfg, train, train_cfg, lambdas=lambdas, refit=refit,
                             validation_fraction=HOLDOUT_FRACTION, split_seed=seed + 1,
                             init_key=jax.random.key(seed),
                             key=jax.random.key(seed + 1), progress=progress,
                             checkpoint_dir=checkpoint_dir,
                             checkpoint_every=max(1, 100 // train_cfg.eval_every_epochs))
    chosen = out.grid.best_index
    return dict(test_rmse=evaluate(out.model, test).overall.rmse,
                validated_test_rmse=evaluate(out.selection.model, test).overall.rmse,
                best_lambda=out.penalty_weight,
                lambda_interior=bool(0 < chosen < len(out.grid.lambdas) - 1),
                val_rmse=[round(float(v), 5) for v in out.grid.val_rmse],
                best_epoch=float(out.selection.best_epoch), epochs_run=out.grid.epochs_run,
                stop=str(out.grid.stop_reason), refit=refit, refit_epochs=out.epochs,
                fit_seconds=time.perf_counter() - t0)


@functools.lru_cache(maxsize=2)
def train_test(s, s_idx, r, n_ratings):
    """Replication ``r``'s 70/30 train/test split of setting ``s``, from seed ``1000 s_idx + r``.

    Built on first use (a cached run needs none) and kept for the replication's
    other methods."""
    seed = 1000 * s_idx + r
    data, _ = make_synthetic(s[0], s[1], n_ratings, intrinsic_dim=s[2], seed=seed)
    return random_split(data, 0.3, seed=seed)


def variant_tag(model_cfg: ModelConfig, train_cfg: TrainConfig, base_model: ModelConfig,
                base_train: TrainConfig) -> str:
    """What the ``--ttm-*`` flags changed from ``base_*``, as a suffix of TTM's cache
    names (``"-hidden150x150-epochs4000"``; ``""`` for none): runs with other towers or
    budgets sit beside the default's instead of replacing its committed files."""
    fields = (("hidden", model_cfg, base_model, "hidden", lambda v: "x".join(map(str, v))),
              ("epochs", train_cfg, base_train, "max_epochs", str),
              ("seconds", train_cfg, base_train, "max_seconds", "{:g}".format))
    return "".join(f"-{label}{fmt(getattr(cfg, name))}" for label, cfg, base, name, fmt in fields
                   if getattr(cfg, name) != getattr(base, name))


class Plan(NamedTuple):
    """The options of one invocation that every run shares."""

    cache: ResultCache
    n_ratings: int
    grids: dict
    folds: int
    tune_once: bool
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    lambdas: tuple
    refit: str
    checkpoints: Path | None
    progress: bool
    #: Appended to TTM's cache names when the ``--ttm-*`` flags change its towers or
    #: budget (:func:`variant_tag`), so such runs sit beside the default's instead of
    #: replacing them.
    ttm_tag: str = ""

    def run_name(self, s, s_idx, r, m) -> str:
        """The cache name of method ``m`` on replication ``r`` of setting ``s``."""
        return f"s{s_idx}-{s[0]}x{s[1]}x{s[2]}-r{r}-{m}" + (self.ttm_tag if m == "ttm" else "")

    def key(self, m: str) -> dict:
        """Everything that determines a run of method ``m``: its cache key."""
        common = dict(protocol=PROTOCOL_VERSION, ttm_jax=ttm_jax.__version__,
                      n_ratings=self.n_ratings, tune_once=self.tune_once)
        if m == "ttm":
            return dict(common, model=dataclasses.asdict(self.model_cfg),
                        train=dataclasses.asdict(self.train_cfg), lambdas=list(self.lambdas),
                        refit=self.refit)
        import surprise

        key = dict(common, grid=self.grids[m], folds=self.folds, surprise=surprise.__version__)
        limits = {name: list(bounds) for name, bounds in LIMITS.items()}
        if limits != PROTOCOL_3_LIMITS:
            key["limits"] = limits
        return key


def run_one(m, s, s_idx, r, plan: Plan) -> dict:
    """Test RMSE (and details) of method ``m`` on replication ``r`` of setting ``s``."""
    t0 = time.perf_counter()
    seed = 1000 * s_idx + r
    if m == "ttm":
        split = train_test(s, s_idx, r, plan.n_ratings)
        lambdas = list(plan.lambdas)
        if plan.tune_once and r > 0:
            # Replication 0 chose λ; this one runs the protocol at that λ alone.
            lambdas = [plan.cache.get(plan.run_name(s, s_idx, 0, m),
                                      lambda: run_one(m, s, s_idx, 0, plan),
                                      plan.key(m))["best_lambda"]]
        ckpt = None if plan.checkpoints is None else plan.checkpoints / plan.run_name(s, s_idx, r, m)
        out = score_ttm(split.train, split.test, seed, plan.model_cfg, plan.train_cfg, lambdas,
                        plan.refit, ckpt, plan.progress)
    else:
        tune_rep = 0 if plan.tune_once else r
        name = "tune-" + plan.run_name(s, s_idx, tune_rep, m)
        # Each scored point is kept as it comes (an SVD++ search at n = 3000 takes an
        # hour), under the tuning's own key, so a change that voids one voids both;
        # once the tuning itself is cached the scores have done their work.
        tuned = plan.cache.get(
            name,
            lambda: tune_surprise(m, train_test(s, s_idx, tune_rep, plan.n_ratings).train,
                                  plan.grids[m], plan.folds, 1000 * s_idx + tune_rep,
                                  StoredScores(plan.cache, "scores-" + name, plan.key(m))),
            plan.key(m))
        plan.cache.remove("scores-" + name)
        out = dict(test_rmse=refit_surprise(m, s, s_idx, r, plan.n_ratings, tuned["params"]),
                   params=tuned["params"], tuning_rmse=tuned["tuning_rmse"],
                   settled=tuned["settled"], trials=tuned["trials"])
    out.update(setting=list(s), rep=r, method=m, seed=seed, seconds=time.perf_counter() - t0)
    return out


def _fmt(m, s):
    if math.isnan(m):
        return "–"
    return f"{m:.3f} ({s:.3f})" if not math.isnan(s) else f"{m:.3f} (–)"


def _improvement(row, methods):
    """Relative improvement of TTM over the best competitor, (best − TTM) / best."""
    comp = [row[m][0] for m in methods if m != "ttm" and not math.isnan(row[m][0])]
    if "ttm" not in methods or not comp or math.isnan(row["ttm"][0]):
        return "–"
    best = min(comp)
    return f"{100 * (best - row['ttm'][0]) / best:.1f}%"


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (all cores summed)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def chosen_values(runs, settings, methods) -> list[str]:
    """The hyperparameters each method chose, per setting (replication 0's choice), and
    whether each is interior to what its search tried."""
    lines = ["", "Chosen hyperparameters (replication 0; interior: worse values were tried on "
             "both sides; limit: at a natural limit; rounds: the search stopped at an edge):", "",
             "| (n, m, d) | method | chosen | settled |", "|---|---|---|---|"]
    for s in settings:
        for m in methods:
            run = next((r for r in runs if tuple(r["setting"]) == tuple(s) and r["method"] == m
                        and r["rep"] == 0), None)
            if run is None:
                continue
            if m == "ttm":
                chosen = f"λ = {run['best_lambda']:.2g}, best epoch {run['best_epoch']:g}"
                settled = "interior" if run.get("lambda_interior") else "edge of the λ grid"
            else:
                params = {k: v for k, v in run["params"].items()
                          if k not in ("random_state", "verbose", "sim_options", "n_cltr_i")}
                chosen = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                                   for k, v in params.items())
                settled = ", ".join(f"{k}: {v}" for k, v in run.get("settled", {}).items())
            lines.append(f"| ({s[0]},{s[1]},{s[2]}) | {LABELS[m]} | {chosen} | {settled} |")
    return lines


def write_table(results, settings, methods, notes, path: Path, extra=()):
    head = "| (n, m, d) | source | " + " | ".join(LABELS[m] for m in methods)
    lines = [*notes, "", "Test RMSE, mean (standard error) over replications; improvement = "
             "(best competitor − TTM) / best competitor.", "",
             head + " | TTM vs best competitor |", "|---|---|" + "---|" * (len(methods) + 1)]
    for s in settings:
        ours = {m: mean_se(results[s][m]) for m in methods}
        counts = {m: len(results[s][m]) for m in methods}
        label = (f"{next(iter(counts.values()))} rep." if len(set(counts.values())) == 1 else
                 ", ".join(f"{LABELS[m]} {c}" for m, c in counts.items()) + " rep.")
        name = f"({s[0]},{s[1]},{s[2]})"
        lines.append(f"| {name} | ours ({label}) | "
                     + " | ".join(_fmt(*ours[m]) for m in methods)
                     + f" | {_improvement(ours, methods)} |")
        if s in PAPER:
            paper = {m: PAPER[s][m] for m in methods}
            lines.append(f"| {name} | paper (50 rep.) | "
                         + " | ".join(_fmt(*paper[m]) for m in methods)
                         + f" | {_improvement(paper, methods)} |")
    text = "\n".join([*lines, *extra]) + "\n"
    path.write_text(text)
    return text


def write_figure(results, settings, methods, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(settings)) + 1.5, 4), layout="constrained")
    width = 0.8 / (2 * len(methods))
    x = np.arange(len(settings))
    colors = plt.get_cmap("tab10")
    for j, m in enumerate(methods):
        ours = np.array([mean_se(results[s][m]) for s in settings])
        paper = np.array([PAPER[s][m] if s in PAPER else (np.nan, np.nan) for s in settings])
        off = (2 * j - len(methods)) * width
        ax.bar(x + off, ours[:, 0], width, yerr=np.nan_to_num(ours[:, 1]), color=colors(j),
               label=f"{LABELS[m]} (ours)", capsize=2)
        ax.bar(x + off + width, paper[:, 0], width, yerr=np.nan_to_num(paper[:, 1]),
               color=colors(j), alpha=0.4, hatch="//", label=f"{LABELS[m]} (paper)", capsize=2)
    ax.set_xticks(x, [f"({s[0]},{s[1]},{s[2]})" for s in settings])
    ax.set_ylabel("test RMSE")
    ax.set_title("Table 1: ours (solid) and the paper's (hatched), ± s.e.")
    # outside the axes: inside, it hid the first setting's bars
    fig.legend(fontsize=7, loc="outside right upper")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def time_grid(n=300, n_ratings=20_000, epochs=100, seed=0):
    """Wall time of the 25-point λ grid: one vmapped fit vs 25 sequential ``fit`` calls.

    Fixed epochs (no early stopping: patience larger than the budget), so both
    do the same number of steps. Both are timed twice, the first time with their
    compilations (one for the grid, and one shared by the 25 fits, which differ
    only in λ), the second time warm.
    """
    data, _ = make_synthetic(n, n, n_ratings, seed=seed)
    split = random_split(data, 0.3, 0.2, seed=seed)
    cfg = TrainConfig(max_epochs=epochs, patience=10 * epochs)
    model = init_model(ModelConfig(), split.train, key=jax.random.key(seed))
    out = {}
    for run in ("cold", "warm"):
        t0 = time.perf_counter()
        grid = fit_lambda_grid(model, split.train, split.validation, cfg, lambdas=PAPER_LAMBDAS,
                               key=jax.random.key(1), progress=False)
        t_vmap = time.perf_counter() - t0
        t0 = time.perf_counter()
        seq = [fit(model, split.train, split.validation, cfg.replace(penalty_weight=float(lam)),
                   key=jax.random.key(1), progress=False).best_val_rmse for lam in PAPER_LAMBDAS]
        t_seq = time.perf_counter() - t0
        out[run] = dict(vmap_s=t_vmap, sequential_s=t_seq, speedup=t_seq / t_vmap)
        print(f"{run}: vmapped grid {t_vmap:.1f} s, 25 sequential fits {t_seq:.1f} s, "
              f"speed-up ×{t_seq / t_vmap:.2f}", flush=True)
    gap = float(np.max(np.abs(np.asarray(seq) - grid.val_rmse)))
    print(f"max |val RMSE, vmapped − sequential| over the grid: {gap:.2e}")
    out.update(n=n, n_ratings=n_ratings, epochs=epochs, max_val_rmse_gap=gap,
               device=str(jax.devices()[0]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default="1-9",
                    help="1-based indices into the 9 settings, e.g. '1,4' or '1-3'")
    ap.add_argument("--reps", type=int, default=None,
                    help="replications per setting (default: 50, the paper's; 1 with --quick)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--cv-folds", type=int, default=0,
                    help="the competitors' tuning: k-fold CV on the training set (the paper: "
                    "5), or 0 (default) for the 20%% hold-out TTM tunes on, one fit per point")
    ap.add_argument("--reduced-grids", action="store_true",
                    help="smaller surprise grids (listed in the output)")
    ap.add_argument("--tune-once", action="store_true",
                    help="tune on replication 0 only and reuse: surprise parameters, and TTM's λ "
                    "(the vmapped grid runs once per setting; later replications refit at its λ)")
    ap.add_argument("--ttm-lambdas", default="paper",
                    help="TTM's λ grid: 'paper' (the 25 values 1e-6 … 1e2) or a comma list, "
                    "e.g. '1e-3' to skip tuning")
    ap.add_argument("--ttm-refit", default="warm", choices=REFIT_MODES,
                    help="how TTM refits on all the training ratings after early stopping on "
                    "its 20%% hold-out (holdout_then_refit; default: warm, the library's)")
    ap.add_argument("--ttm-max-epochs", type=int, default=None,
                    help="cap TrainConfig().max_epochs (default: no cap, 4000)")
    ap.add_argument("--ttm-max-seconds", type=float, default=None,
                    help="wall-clock budget of each TTM λ-grid fit (default: none)")
    ap.add_argument("--ttm-hidden", default=None, metavar="WIDTHS",
                    help="TTM's hidden layer widths, a comma list such as '150,150' "
                    "(default: ModelConfig().hidden); runs with other towers are cached "
                    "under their own names, beside the default's")
    ap.add_argument("--quick", action="store_true",
                    help=f"one small setting {QUICK_SETTING} with |Ω|={QUICK_RATINGS}, one "
                    "replication, small grids, 2 folds, a small TTM: a smoke test")
    ap.add_argument("--cache", default="benchmarks/table1_cache")
    ap.add_argument("--out-dir", default="benchmarks/out/table1")
    ap.add_argument("--checkpoints", default=None,
                    help="folder for TTM's checkpoints, saved every 100 epochs so that an "
                    "interrupted run resumes from its last one (default: OUT_DIR/checkpoints; "
                    "'none': save none)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--cached-only", action="store_true",
                    help="train nothing: report the runs already in --cache, leave out the rest")
    ap.add_argument("--time-grid", action="store_true",
                    help="only time the vmapped λ grid against 25 sequential fits")
    ap.add_argument("--check-caps", type=int, nargs="?", const=1, default=0, metavar="STEPS",
                    help="train no table: for each cached competitor tuning whose choice sits at "
                    "a cap of the search (CAPS), score past it, doubling while the score "
                    "improves, STEPS steps at most (default 1; table1_caps.md)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="with --check-caps: refit this many replications at once, each in "
                    "its own process (one core each; default 1)")
    args = ap.parse_args(argv)
    if args.check_caps < 0:
        raise ValueError(f"--check-caps={args.check_caps} must be a number of steps >= 1")
    if args.jobs < 1 or (args.jobs > 1 and not args.check_caps):
        raise ValueError(f"--jobs={args.jobs} must be >= 1, and above 1 only with --check-caps "
                         "(the refits past the caps are what it runs in parallel)")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.time_grid:
        res = time_grid()
        (out_dir / "time_grid.json").write_text(json.dumps(res, indent=1))
        return res

    methods = [m for m in args.methods.split(",") if m]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"--methods has unknown {bad}; choose from {list(METHODS)}")
    model_cfg, train_cfg, lambdas = ModelConfig(), TrainConfig(), PAPER_LAMBDAS
    if args.quick:
        settings, reps, n_ratings = [QUICK_SETTING], 1 if args.reps is None else args.reps, QUICK_RATINGS
        grids, folds, tune_once = QUICK_GRIDS, 2, QUICK_TUNE_ONCE
        model_cfg = ModelConfig(hidden=(16,))
        train_cfg = TrainConfig(batch_size=512, max_epochs=20, eval_every_epochs=5, patience=2)
        lambdas = PAPER_LAMBDAS[::6]
    base_model, base_train = model_cfg, train_cfg  # what the flags below change
    if not args.quick:
        idx = []
        for part in args.settings.split(","):
            lo, _, hi = part.partition("-")
            idx += list(range(int(lo), int(hi or lo) + 1))
        if not idx or min(idx) < 1 or max(idx) > len(SETTINGS):
            raise ValueError(f"--settings={args.settings!r} must name settings 1..{len(SETTINGS)}")
        settings, n_ratings = [SETTINGS[i - 1] for i in idx], N_RATINGS
        reps = 50 if args.reps is None else args.reps
        grids = REDUCED_GRIDS if args.reduced_grids else FULL_GRIDS
        folds, tune_once = args.cv_folds, args.tune_once
        if args.ttm_lambdas != "paper":
            try:
                lambdas = check_lambdas([float(v) for v in args.ttm_lambdas.split(",")])
            except ValueError as err:
                raise ValueError(f"--ttm-lambdas={args.ttm_lambdas!r} must be 'paper' or a comma "
                                 f"list of finite numbers >= 0 such as '1e-4,1e-3' ({err})") from None
        if args.ttm_max_epochs:
            train_cfg = train_cfg.replace(max_epochs=args.ttm_max_epochs)
        if args.ttm_max_seconds:
            train_cfg = train_cfg.replace(max_seconds=args.ttm_max_seconds)
    if args.ttm_hidden is not None:
        try:
            widths = tuple(int(v) for v in args.ttm_hidden.split(","))
        except ValueError:
            widths = ()
        if not widths or min(widths) < 1:
            raise ValueError(f"--ttm-hidden={args.ttm_hidden!r} must be a comma list of "
                             "layer widths >= 1, such as '150,150'")
        model_cfg = model_cfg.replace(hidden=widths)
    ttm_tag = variant_tag(model_cfg, train_cfg, base_model, base_train)
    # With --check-caps, --reps 0 walks past the caps and refits nothing.
    if reps < (0 if args.check_caps else 1) or folds < 0 or folds == 1:
        raise ValueError(f"--reps={reps} must be >= 1 (>= 0 with --check-caps: no refits) "
                         f"and --cv-folds={folds} 0 (hold-out) or >= 2")

    notes = [
        "Command: `python benchmarks/table1.py " + " ".join(argv if argv is not None
                                                            else sys.argv[1:]) + "`",
        "",
        f"- |Ω| = {n_ratings}, 70/30 train/test; {reps} replication(s) per setting.",
    ]
    if "ttm" in methods:
        notes.append(
            f"- TTM: {model_cfg}, {train_cfg}; "
            + (f"λ fixed at {lambdas[0]:g} (no λ tuning: NOT the paper's protocol)"
               if len(lambdas) == 1 else
               f"λ from {len(lambdas)} grid points ({lambdas[0]:.0e} … {lambdas[-1]:.0e}), "
               "trained together under vmap"
               + (" on replication 0 and reused" if tune_once else ", per replication"))
            + f"; epochs by early stopping on a 20% hold-out; refit: {args.ttm_refit}.")
    if any(m in grids for m in methods):
        notes += [
            "- Surprise tuning: "
            + (f"{folds}-fold CV on the training set"
               + (" (reduced from the paper's 5)" if folds < 5 else "") if folds else
               f"the {HOLDOUT_FRACTION:.0%} hold-out of the training set TTM tunes on (one fit "
               "per point; the paper: 5-fold CV)")
            + ("; tuned on replication 0 and reused" if tune_once else "; tuned per replication")
            + "; grids widened until every chosen value is interior or at its natural limit.",
            "- Starting grids" + (" (reduced)" if grids is not FULL_GRIDS else "") + ": "
            + "; ".join(f"{m}: {grids[m]}" for m in methods if m in grids) + ".",
        ]
    if args.quick:
        notes.append("- --quick: a smoke test on a small setting, not comparable with the paper.")
    print("\n".join(notes), flush=True)

    checkpoints = (None if args.checkpoints == "none"
                   else Path(args.checkpoints or out_dir / "checkpoints"))
    plan = Plan(ResultCache(args.cache), n_ratings, grids, folds, tune_once, model_cfg,
                train_cfg, tuple(map(float, lambdas)), args.ttm_refit, checkpoints,
                not args.no_progress, ttm_tag)
    if args.check_caps:
        return check_caps(plan, settings, methods, out_dir, steps=args.check_caps, reps=reps,
                          cached_only=args.cached_only, jobs=args.jobs)
    results = {s: {m: [] for m in methods} for s in settings}
    runs, missing = [], []
    bar = tqdm(total=len(settings) * reps * len(methods), disable=not plan.progress, unit="run")
    t_start, cpu_start = time.perf_counter(), _cpu_seconds()
    try:
        for s in settings:
            s_idx = SETTINGS.index(s) + 1 if s in SETTINGS else 0
            for r in range(reps):
                for m in methods:
                    bar.set_description(f"({s[0]},{s[1]},{s[2]}) rep {r} {LABELS[m]}")
                    name = plan.run_name(s, s_idx, r, m)
                    if args.cached_only and plan.cache.load(name, plan.key(m)) is None:
                        missing.append(name)
                        bar.update(1)
                        continue
                    run = plan.cache.get(name, functools.partial(run_one, m, s, s_idx, r, plan),
                                         plan.key(m))
                    if m == "ttm" and checkpoints is not None:
                        # Cached: its checkpoints (ours, under its name) are not needed again.
                        shutil.rmtree(checkpoints / name, ignore_errors=True)
                    results[s][m].append(run["test_rmse"])
                    runs.append(run)
                    bar.update(1)
                    bar.write(f"{name}: test RMSE {run['test_rmse']:.4f} ({run['seconds']:.1f} s)")
    finally:
        bar.close()
        if checkpoints is not None and checkpoints.is_dir() and not any(checkpoints.iterdir()):
            checkpoints.rmdir()  # every run finished: leave no empty folder behind

    wall, cpu = time.perf_counter() - t_start, _cpu_seconds() - cpu_start
    notes.append(f"- Wall time of this invocation: {wall:.0f} s, CPU time {cpu:.0f} s "
                 f"({machine()['cores']} cores; cached runs cost nothing).")
    if missing:
        notes.append(f"- --cached-only: {len(missing)} of {len(settings) * reps * len(methods)} "
                     "runs are not in the cache yet and are left out; the replication counts "
                     "per row say what is in.")
    text = write_table(results, settings, methods, notes, out_dir / "table1.md",
                       chosen_values(runs, settings, methods))
    (out_dir / "table1_runs.json").write_text(json.dumps(
        {"options": {m: plan.key(m) for m in methods}, "methods": methods, "runs": runs,
         "wall_seconds": wall, "cpu_seconds": cpu, "machine": machine()},
        indent=1, default=str))
    write_figure(results, settings, methods, out_dir / "table1.png")
    print(text)
    return results


if __name__ == "__main__":
    main()
