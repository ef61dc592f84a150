"""Measured convergence rate of the two-tower model against Theorem 2 (SPEC §5).

For each configuration (β, d) and each |Ω| on a doubling grid, draws ``--reps``
data sets from :func:`ttm_jax.data.holder.make_holder_synthetic` (β-smooth true
maps on a d-dimensional support, |Ω| iid pairs from μ_u × μ_i; replication r keeps
one truth at every |Ω|), trains one two-tower model per data set, step size and
epoch budget (every replication and step size of a point in one ``vmap``,
:func:`ttm_jax.fit_members`), keeps per replication the choice with the best
validation RMSE, and estimates the excess risk ``‖R̂ − R*‖²_{L2(μ_u × μ_i)}`` by
Monte Carlo on fresh users and items (:func:`ttm_jax.excess_risk`).

Then, per configuration, a mechanical window rule (docs/rate_sweep.md §0)
picks the |Ω| where the curve is in its asymptotic regime, extending the grid
by doubling |Ω| when it must; the rate ``a`` (excess risk ≈ c |Ω|^{−a}) is
fitted over that window with one slope per replication
(``theory.fit_rate(method="per_replication")``) and compared with
``theory.theorem2_exponent(β, d, d) = 2β/(2β + d)``; pairs of configurations
are ordered only from disjoint intervals (``theory.rate_ordering``).

Run:  python benchmarks/rate_sweep.py            (default sweep; see RESULTS.md §3 for its time)
      python benchmarks/rate_sweep.py --quick    (smoke run: seconds)
Writes OUT/rate_sweep.png, OUT/rate_sweep.json, OUT/rate_sweep.md and a cache
OUT/rate_sweep_cache/ (one JSON per configuration and |Ω|; reruns resume, --fresh redoes).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import jax
import numpy as np
from common import ResultCache, provenance
from scipy import stats
from tqdm.auto import tqdm

import theory
from ttm_jax import (
    FitResult,
    ModelConfig,
    StopReason,
    TrainConfig,
    TrainingDivergedError,
    embed_items,
    embed_users,
    excess_risk,
    fit,
    fit_members,
    init_model,
)
from ttm_jax.data.holder import default_levels, make_holder_synthetic
from ttm_jax.optim import Hyperparams

CACHE_VERSION = 3

#: The window rule's constants (docs/rate_sweep.md §0), fixed before the run.
LEARNT_SHARE = 0.2
MIN_WINDOW = 4
CONFIDENCE = 0.95

#: What ``--gpu`` changes (auto: on when ``jax.default_backend() == "gpu"``). The
#: CPU defaults aim at the 10-minute budget on 2 cores: the d-ordering at β = 1
#: (d = 2 with 10 replications, its intervals being the widest, against d = 4) and
#: the β-ordering at d = 4 (docs/rate_sweep.md §9 says how this was decided). An
#: accelerator spends its speed on larger |Ω| (one more doubling in the base grid,
#: extensions up to 1,024,000 pairs), d = 8, β = 2 and ∞ at d = 2, 10 replications
#: everywhere, and batches that grow with |Ω|.
CPU_DEFAULTS = dict(configs="1:2x10,1:4,2:4", n_points=5, n_cap=32000, reps=6,
                    batch_scaling="fixed")
GPU_DEFAULTS = dict(configs="1:2,1:4,1:8,2:2,2:4,inf:2", n_points=6, n_cap=1024000, reps=10,
                    batch_scaling="sqrt")

#: The ``--quick`` smoke run: two configurations, a tiny grid, few epochs.
QUICK = dict(configs="inf:2,1:2", grid=[300, 600, 1200], n_cap=1200, reps=2,
             width_schedule="fixed", width=16, max_epochs=[30], check_epochs=5, mc_size=300,
             patience=3, learning_rates=[1e-2])


@dataclasses.dataclass(frozen=True)
class RateConfig:
    """One panel of the sweep: smoothness β and intrinsic dimension d (``d_u = d_i = d``).

    ``reps``: this configuration's replications (``BETA:DxREPS`` in ``--configs``);
    ``None`` takes ``--reps``. It is not part of the panel's identity.
    """

    beta: float
    d: int
    reps: int | None = dataclasses.field(default=None, compare=False)

    def replications(self, args) -> int:
        """Replications per point: this configuration's own count, else ``--reps``."""
        return args.reps if self.reps is None else self.reps

    @property
    def label(self) -> str:
        b = "inf" if math.isinf(self.beta) else f"{self.beta:g}"
        return f"beta={b},d={self.d}"

    @property
    def title(self) -> str:
        return f"β = {self.beta_text}, d = {self.d}"

    @property
    def beta_text(self) -> str:
        return "∞" if math.isinf(self.beta) else f"{self.beta:g}"

    @property
    def predicted(self) -> float:
        return theory.theorem2_exponent(self.beta, self.d, self.d)


def parse_configs(text: str) -> list[RateConfig]:
    """``"inf:2,1:8x10"`` → configurations (β, d); β may be ``inf``; ``xR`` gives that
    configuration R replications instead of ``--reps``."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            b, d = item.split(":")
            d, _, r = d.partition("x")
            beta = math.inf if b.strip().lower() in ("inf", "infinity", "∞") else float(b)
            dim = int(d)
            reps = int(r) if r else None
        except ValueError:
            raise ValueError(
                f"--configs: {item!r} is not BETA:D or BETA:DxREPS (e.g. 1:2, 0.5:1, inf:2, "
                "1:2x10)"
            ) from None
        if not (beta > 0) or dim < 1:
            raise ValueError(f"--configs: {item!r} needs β > 0 and an integer d >= 1")
        if reps is not None and reps < 2:
            raise ValueError(f"--configs: {item!r}: the per-replication intervals need "
                             ">= 2 replications")
        cfg = RateConfig(beta, dim, reps)
        if cfg in out:
            raise ValueError(f"--configs: {item!r}: β = {cfg.beta_text}, d = {dim} is "
                             "given twice")
        out.append(cfg)
    if not out:
        raise ValueError("--configs: no configuration given")
    return out


def geometric_grid(n_min: int, n_max: int, n_points: int) -> list[int]:
    """``n_points`` values of |Ω| from ``n_min`` to ``n_max``, equally spaced in log."""
    if n_min < 10 or n_max <= n_min or n_points < 2:
        raise ValueError(
            f"grid: need 10 <= n_min < n_max and n_points >= 2 (got {n_min}, {n_max}, {n_points})"
        )
    grid = np.unique(np.round(np.geomspace(n_min, n_max, n_points)).astype(int))
    return [int(n) for n in grid]


def default_n_min(cfg: RateConfig) -> int:
    """The base grid's first |Ω|, ``250 · 2^d``: the coarsest level of a β-smooth truth has
    ``2^d`` signs per output, and the take-off ends at a multiple of that (d = 2: 1000,
    d = 4: 4000, d = 8: 64000)."""
    return 250 * 2**cfg.d


def base_grid(cfg: RateConfig, args) -> list[int]:
    """The |Ω| computed before the window rule asks for more: ``--grid``, a geometric grid
    from ``--n-min`` to ``--n-max``, or ``--n-points`` doublings from ``--n-min``
    (default :func:`default_n_min`)."""
    if args.grid:
        return sorted(set(args.grid))
    n_min = args.n_min or default_n_min(cfg)
    if args.n_max:
        return geometric_grid(n_min, args.n_max, args.n_points)
    return [n_min * 2**k for k in range(args.n_points)]


def grid_cap(grid: list[int], args) -> int:
    """The largest |Ω| the window rule may extend to: ``--n-cap``, never below the base
    grid's top."""
    return max(int(args.n_cap), max(grid))


def params_per_tower(width: int, hidden_layers: int, in_dim: int, out_dim: int) -> int:
    """Weights and biases of one tower with ``hidden_layers`` layers of ``width`` (``Z`` if dense)."""
    widths = [in_dim] + [width] * hidden_layers + [out_dim]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))


def width_for_params(params: float, hidden_layers: int, in_dim: int, out_dim: int) -> float:
    """The real hidden width ``w`` whose tower has ``params`` parameters (bisection on the
    increasing count ``(D+1)w + (L−1)(w+1)w + (w+1)p``)."""

    def count(w: float) -> float:
        return (in_dim + 1) * w + (hidden_layers - 1) * (w + 1) * w + (w + 1) * out_dim

    lo, hi = 0.0, 1.0
    while count(hi) < params:
        hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if count(mid) < params else (lo, mid)
    return 0.5 * (lo + hi)


def schedule_widths(cfg: RateConfig, grid: list[int], args) -> dict[int, int]:
    """Hidden width per |Ω|: ``--width`` everywhere (``--width-schedule fixed``), or
    Theorem 2's ``W = c |Ω|^{d/(2β+d)} log|Ω|`` parameters per tower with ``c`` fixed so
    that ``--width-anchor`` gets ``--width`` units, clipped to ``[--min-width,
    --max-width]``. The anchor is one |Ω| for every configuration and grid, so an
    extension never changes a computed point's width."""
    if args.width_schedule == "fixed":
        return {n: int(args.width) for n in grid}
    ref = params_per_tower(args.width, args.hidden_layers, args.ambient_dim,
                           args.embedding_dim)
    constant = ref / float(theory.theorem2_width(args.width_anchor, cfg.beta, cfg.d, cfg.d))
    out = {}
    for n in grid:
        w = float(theory.theorem2_width(n, cfg.beta, cfg.d, cfg.d, constant=constant))
        h = width_for_params(w, args.hidden_layers, args.ambient_dim, args.embedding_dim)
        out[n] = int(min(args.max_width, max(args.min_width, round(h))))
    return out


def batch_size(n_train: int, args) -> int:
    """Minibatch size at ``n_train`` ratings: ``--batch-size`` (``fixed``), or growing as
    ``√(n_train / 4096)`` above 4096 ratings (``sqrt``), a multiple of 64 and at most 8192."""
    if args.batch_scaling == "fixed":
        return int(args.batch_size)
    grow = max(1.0, math.sqrt(n_train / 4096.0))
    return int(min(8192, max(args.batch_size, 64 * round(args.batch_size * grow / 64))))


def learning_rates(n_train: int, args) -> list[float]:
    """The step sizes tried at a point; with ``--batch-scaling sqrt`` each grows with the
    batch as ``√(B / B₀)`` (the square-root rule for Adam, Malladi et al. 2022)."""
    scale = math.sqrt(batch_size(n_train, args) / args.batch_size)
    return [float(lr) * scale for lr in args.learning_rates]


def epoch_budgets(cfg: RateConfig, args) -> list[int]:
    """The epoch budgets tried per replication (the best validation RMSE is kept):
    ``--max-epochs``, or 100 and ``100 · 2^(4−d)`` (400 at d = 2; 100 alone at d ≥ 4).

    A fixed budget is wrong one way or the other (docs/rate_sweep.md §2): at β = 1,
    d = 2, 400 instead of 100 epochs lowers the excess risk by 10–20% at |Ω| ≥ 16000,
    while at β = 2 and β = ∞ it raises it (the step size is still high when those
    truths are learnt). At d ≥ 4 more epochs gain at most 4% and cost the most, so
    only 100 are tried there.
    """
    if args.max_epochs:
        return sorted({int(e) for e in args.max_epochs})
    return sorted({100, 100 * 2 ** max(0, 4 - cfg.d)})


def train_config(args, n_train: int, cfg: RateConfig, epochs: int | None = None) -> TrainConfig:
    """Adam over ``epochs`` (default the largest of :func:`epoch_budgets`), the step size
    annealed geometrically by ``--anneal`` over the budget, L2 penalty, early stopping."""
    lrs = learning_rates(n_train, args)
    epochs = max(epoch_budgets(cfg, args)) if epochs is None else int(epochs)
    return TrainConfig(
        optimizer="adam",
        learning_rate=max(lrs),
        decay_rate=float(args.anneal) ** (-1.0 / epochs),
        decay_epochs=1.0,
        min_learning_rate=min(lrs) / (10.0 * args.anneal),  # below every annealed step: no floor
        batch_size=batch_size(n_train, args),
        max_epochs=epochs,
        penalty="l2",
        penalty_weight=args.penalty_weight,
        eval_every_epochs=args.check_epochs or max(1, epochs // 10),
        patience=args.patience,
    )


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0]
               >> np.uint64(2))


def _beta_code(beta: float) -> int:
    return 10**9 if math.isinf(beta) else int(round(beta * 1000))


def _json_float(x: float):
    return "inf" if math.isinf(x) else float(x)


def _from_json(x) -> float:
    return math.inf if x == "inf" else float(x)


def point_settings(cfg: RateConfig, n: int, width: int, levels: int, args) -> dict:
    """Everything that determines a point's result; the cache is keyed on it."""
    n_train = n - round(args.val_fraction * n)
    return {
        "version": CACHE_VERSION,
        "beta": _json_float(cfg.beta),
        "d": cfg.d,
        "n_obs": n,
        "reps": cfg.replications(args),
        "seed": args.seed,
        "width": width,
        "hidden_layers": args.hidden_layers,
        "levels": levels,
        "ambient_dim": args.ambient_dim,
        "embedding_dim": args.embedding_dim,
        "noise_var": args.noise_var,
        "val_fraction": args.val_fraction,
        "mc_size": args.mc_size,
        "replications": args.replications,
        "learning_rates": learning_rates(n_train, args),
        "epoch_budgets": epoch_budgets(cfg, args),
        "train": dataclasses.asdict(train_config(args, n_train, cfg)),
    }


def run_point(cfg: RateConfig, n: int, width: int, levels: int, args) -> dict:
    """Train the configuration's replications × the step sizes × the epoch budgets at one |Ω|,
    keep each replication's best-validation choice, and measure its excess risk."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    n_val = round(args.val_fraction * n)
    n_train = n - n_val
    lrs = learning_rates(n_train, args)
    budgets = epoch_budgets(cfg, args)
    datasets, trains, vals, models, keys = [], [], [], [], []
    mcfg = ModelConfig(hidden=(width,) * args.hidden_layers, embedding_dim=args.embedding_dim)
    n_reps = cfg.replications(args)
    for r in range(n_reps):
        # One truth per (configuration, replication), shared by every |Ω|: the
        # curve follows one f*, g* as the sample grows (Theorem 2's setting).
        map_seed = _seed(args.seed, _beta_code(cfg.beta), cfg.d, r)
        data_seed = _seed(args.seed, _beta_code(cfg.beta), cfg.d, r, n)
        synth = make_holder_synthetic(
            n, smoothness=cfg.beta, intrinsic_dim=cfg.d, ambient_dim=args.ambient_dim,
            embedding_dim=args.embedding_dim, levels=levels, noise_var=args.noise_var,
            seed=data_seed, map_seed=map_seed,
        )
        # Pairs are iid, so the last n_val of them are an independent validation set
        # of fresh users and items.
        train = synth.data.subset(np.arange(n_train))
        datasets.append(synth)
        trains.append(train)
        vals.append(synth.data.subset(np.arange(n_train, n)))
        init_key, fit_key = jax.random.split(jax.random.key(data_seed % 2**31))
        models.append(init_model(mcfg, train, key=init_key))
        keys.append(fit_key)
    t_data = time.perf_counter() - t0
    # Member (r, j) is replication r with step size j: the same data, initial
    # parameters and minibatches for every step size and budget, so the choice
    # between them is paired.
    members = [(r, j) for r in range(n_reps) for j in range(len(lrs))]
    hyper = [Hyperparams(np.float32(lrs[j]), np.float32(args.penalty_weight))
             for _, j in members]
    m_models = [models[r] for r, _ in members]
    m_trains = [trains[r] for r, _ in members]
    m_vals = [vals[r] for r, _ in members]
    m_keys = [keys[r] for r, _ in members]
    fits = []
    for epochs in budgets:
        tc = train_config(args, n_train, cfg, epochs)
        if args.replications == "vmap":
            fits.append(fit_members(m_models, m_trains, m_vals, tc, keys=m_keys,
                                    hyperparams=hyper, progress=False))
        else:
            fits.append(_fit_one_by_one(m_models, m_trains, m_vals, tc, m_keys,
                                        [lrs[j] for _, j in members]))
    t_fit = time.perf_counter() - t0 - t_data
    reps = []
    for r, synth in enumerate(datasets):
        choices = [(b, k) for b in range(len(budgets))
                   for k, (rr, _) in enumerate(members) if rr == r]
        val = np.array([fits[b].best_val_rmse[k] for b, k in choices], np.float64)
        b, k = choices[int(np.argmin(np.where(np.isfinite(val), val, np.inf)))]
        res = fits[b]
        model = res.models[k]
        offset = float(model.offset[...])

        def predict(x_u, x_i, model=model, offset=offset):
            return embed_users(model, x_u) @ embed_items(model, x_i).T + offset

        mc_seed = _seed(args.seed, 77, r, n)
        risk = excess_risk(predict, synth.truth, n_users=args.mc_size, n_items=args.mc_size,
                           seed=mc_seed)
        mean_rating = float(np.mean(trains[r].ratings))

        def constant(x_u, x_i, value=mean_rating):
            return np.full((x_u.shape[0], x_i.shape[0]), value)

        # The trivial predictor (the training mean) on the same fresh pairs: a
        # model whose excess risk sits at this level has learned nothing.
        null = excess_risk(constant, synth.truth, n_users=args.mc_size, n_items=args.mc_size,
                           seed=mc_seed)
        reps.append({
            "excess_risk": risk.value,
            "stderr": risk.stderr,
            "null_risk": null.value,
            "learning_rate": lrs[members[k][1]],
            "epoch_budget": budgets[b],
            "val_rmse_per_choice": [
                {"epochs": budgets[bb], "learning_rate": lrs[members[kk][1]],
                 "val_rmse": float(v)} for (bb, kk), v in zip(choices, val)],
            "best_epoch": float(res.best_epoch[k]),
            "epochs_run": float(res.epochs_run[k]),
            "val_rmse": float(res.best_val_rmse[k]),
            "diverged": bool(res.diverged[k]),
        })
    return {
        "n_obs": n,
        "n_train": n_train,
        "width": width,
        "params_per_tower": params_per_tower(width, args.hidden_layers, args.ambient_dim,
                                             args.embedding_dim),
        "levels": levels,
        "batch_size": batch_size(n_train, args),
        "learning_rates": lrs,
        "epoch_budgets": budgets,
        "epochs_run": float(max(np.max(f.epochs_run) for f in fits)),
        "stop_reason": "/".join(sorted({str(r) for f in fits for r in f.stop_reason})),
        "data_seconds": t_data,
        "fit_seconds": t_fit,
        "mc_seconds": time.perf_counter() - t0 - t_data - t_fit,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - cpu0,
        "reps": reps,
    }


def usable_cores() -> list[int]:
    """The cores this process may run on; empty where the platform has no CPU affinity
    (then no worker is pinned)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return []


def claim_core(claims: str, cores: list[int]) -> int | None:
    """The first of ``cores`` that no one has claimed in the folder ``claims``, now claimed
    (the file ``core<c>``, created exclusively, so two processes never take the same
    core); ``None`` when every one is taken."""
    for core in cores:
        try:
            os.close(os.open(os.path.join(claims, f"core{core}"),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        return core
    return None


#: The core this worker process pinned itself to (``-1``: unpinned); ``None``: not yet asked.
_OWN_CORE: int | None = None


def run_point_on_own_core(claims: str | None, cfg: RateConfig, n: int, width: int,
                          levels: int, args) -> dict:
    """:func:`run_point` in a worker process that first pins itself to a core no other
    worker of the sweep holds (:func:`claim_core` in the folder ``claims``; ``None``: run
    unpinned). The result records the core as ``worker_core``."""
    global _OWN_CORE
    if _OWN_CORE is None:
        core = claim_core(claims, usable_cores()) if claims is not None else None
        if core is not None:
            os.sched_setaffinity(0, {core})
        _OWN_CORE = -1 if core is None else core
    return {**run_point(cfg, n, width, levels, args), "worker_core": _OWN_CORE}


def _fit_one_by_one(models, trains, vals, tc, keys, lrs) -> FitResult:
    """``--replications sequential``: each member through ``ttm_jax.fit`` in turn
    (the same result as the vmap up to rounding; for timing the two)."""
    t0 = time.perf_counter()
    fits = []
    for model, train, val, key, lr in zip(models, trains, vals, keys, lrs):
        config = tc.replace(learning_rate=lr, min_learning_rate=tc.min_learning_rate)
        try:
            fits.append(fit(model, train, val, config, key=key, progress=False))
        except TrainingDivergedError as err:
            fits.append(err.result)
    return FitResult(
        models=tuple(f.model for f in fits),
        history=None,
        best_epoch=np.array([f.best_epoch for f in fits]),
        best_val_rmse=np.array([f.best_val_rmse for f in fits]),
        epochs_run=np.array([f.epochs_run for f in fits]),
        stop_reason=tuple(StopReason(f.stop_reason) for f in fits),
        seconds=time.perf_counter() - t0,
        tower_mode=fits[0].tower_mode,
        learning_rate=np.array([f.learning_rate for f in fits]),
        penalty_weight=np.array([f.penalty_weight for f in fits]),
    )


def cache_name(cfg: RateConfig, n: int) -> str:
    """A point's name in the cache: one folder per configuration, one file per |Ω|."""
    return cfg.label.replace("=", "").replace(",", "_") + f"/n{n}"


# --------------------------------------------------------------------------- the rules


def curve_arrays(points: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``|Ω| [k]``, excess risk ``[k, r]`` and trivial predictor's excess risk ``[k, r]``."""
    n = np.array([p["n_obs"] for p in points], np.float64)
    err = np.array([[r["excess_risk"] for r in p["reps"]] for p in points], np.float64)
    null = np.array([[r["null_risk"] for r in p["reps"]] for p in points], np.float64)
    return n, err, null


def learnt_share(err: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``ρ_j``: geometric mean excess risk over replications / mean trivial excess risk."""
    return np.exp(np.log(err).mean(axis=1)) / null.mean(axis=1)


def curvature(n: np.ndarray, err: np.ndarray, confidence: float = CONFIDENCE) -> dict:
    """Per replication, ``log e = c₀ + c₁ x + c₂ x²`` with ``x`` = log|Ω| centred; the mean
    ``c₂`` and its t interval over replications. ``curved``: the interval excludes 0."""
    x = np.log(n) - np.log(n).mean()
    design = np.stack([np.ones_like(x), x, x * x], axis=1)
    coef, *_ = np.linalg.lstsq(design, np.log(err), rcond=None)
    c2 = coef[2]
    r = c2.size
    mean = float(c2.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, r - 1) * c2.std(ddof=1) / math.sqrt(r))
    low, high = mean - half, mean + half
    return {"c2": mean, "ci_low": low, "ci_high": high, "curved": bool(low > 0 or high < 0)}


def choose_window(n: np.ndarray, err: np.ndarray, null: np.ndarray, *,
                  share: float = LEARNT_SHARE, min_points: int = MIN_WINDOW,
                  confidence: float = CONFIDENCE) -> dict:
    """The window rule of docs/rate_sweep.md §0 on one configuration's curve.

    Args:
      n: ``[k]`` increasing |Ω|; err, null: ``[k, r]`` excess risks of the model
        and of the trivial predictor (r ≥ 2 replications).

    Returns a dict: ``start``, ``stop`` (grid indices, stop exclusive) of the
    window, ``met`` (the rule holds for it), ``extend`` (the rule asks for the
    next grid point), ``reason``, ``dropped`` (points removed for curvature, with
    the curvature that removed each), ``curvature`` of the final window and
    ``share`` (``ρ_j`` per grid point).
    """
    k = len(n)
    rho = learnt_share(err, null)
    start = k
    while start > 0 and rho[start - 1] <= share:
        start -= 1
    out = {"share": [float(x) for x in rho], "dropped": [], "curvature": None}
    if k - start < min_points:
        lo = max(0, k - min_points)
        return {**out, "start": lo, "stop": k, "met": False, "extend": True,
                "reason": f"only {k - start} grid point(s) with excess risk ≤ {share:g} × the "
                          f"trivial predictor's; the rule needs {min_points}"}
    while True:
        curv = curvature(n[start:], err[start:], confidence)
        if not curv["curved"]:
            return {**out, "start": start, "stop": k, "met": True, "extend": False,
                    "curvature": curv,
                    "reason": f"{k - start} learnt points, no curvature (c₂ "
                              f"[{curv['ci_low']:.3f}, {curv['ci_high']:.3f}] contains 0)"}
        if k - start > min_points:
            out["dropped"].append({"n_obs": float(n[start]), **curv})
            start += 1
            continue
        return {**out, "start": start, "stop": k, "met": False, "extend": True,
                "curvature": curv,
                "reason": f"the top {min_points} learnt points are still curved (c₂ "
                          f"[{curv['ci_low']:.3f}, {curv['ci_high']:.3f}] excludes 0)"}


def local_slopes(n: np.ndarray, err: np.ndarray, confidence: float = CONFIDENCE) -> list[dict]:
    """Rate between each pair of neighbouring grid points: one slope per replication,
    their mean and t interval (``theory.fit_rate(method="per_replication")``)."""
    out = []
    for j in range(len(n) - 1):
        f = theory.fit_rate(n[j:j + 2], err[j:j + 2], method="per_replication",
                            confidence=confidence)
        out.append({"n_low": float(n[j]), "n_high": float(n[j + 1]), "exponent": f.exponent,
                    "ci_low": f.ci_low, "ci_high": f.ci_high})
    return out


def fit_window(cfg: RateConfig, points: list[dict], window: dict) -> dict:
    """Plain and (log|Ω|)²-corrected per-replication fits over the window."""
    n, err, _ = curve_arrays(points[window["start"]:window["stop"]])
    out = {}
    for name, power in (("plain", 0.0), ("log2", 2.0)):
        f = theory.fit_rate(n, err, log_power=power, predicted=cfg.predicted,
                            method="per_replication", confidence=CONFIDENCE)
        out[name] = f._asdict()
    return out


def orderings(results: list[dict]) -> list[dict]:
    """Neighbouring configurations compared by their plain intervals: in d at each β, in β
    at each d. ``as_predicted``: resolved with the smaller d (larger β) faster."""
    out = []
    for kind, fixed_key, vary_key in (("d", "beta", "d"), ("β", "d", "beta")):
        groups: dict[str, list[dict]] = {}
        for res in results:
            groups.setdefault(str(res[fixed_key]), []).append(res)
        for group in groups.values():
            group = sorted(group, key=lambda r: _from_json(r[vary_key]))
            for a, b in zip(group, group[1:]):
                # Theorem 2: smaller d is faster; larger β is faster.
                fast, slow = (a, b) if kind == "d" else (b, a)
                o = theory.rate_ordering(theory.RateFit(**fast["fits"]["plain"]),
                                         theory.RateFit(**slow["fits"]["plain"]))
                out.append({
                    "kind": kind,
                    "fixed": f"{'β' if kind == 'd' else 'd'} = "
                             f"{_config_of(a).beta_text if kind == 'd' else a['d']}",
                    "predicted_faster": fast["label"],
                    "predicted_slower": slow["label"],
                    "resolved": o.resolved,
                    "as_predicted": None if not o.resolved else o.faster == "a",
                    "reason": o.reason,
                    "both_windows_met": bool(fast["window"]["met"] and slow["window"]["met"]),
                })
    return out


def _config_of(res: dict) -> RateConfig:
    return RateConfig(_from_json(res["beta"]), int(res["d"]))


# --------------------------------------------------------------------------- output


HEADER = [
    "a: the measured rate, excess risk ≈ c·|Ω|^(−a); one least-squares slope per replication "
    "over the window, their mean and 95% t interval over replications.",
    "consistent: the interval reaches the predicted a = 2β/(2β+d) or above (one-sided: "
    "Theorem 2 is an upper bound, so a faster decay is consistent; only an interval wholly "
    "below the prediction is not).",
    f"window (docs/rate_sweep.md §0): from where the excess risk is ≤ {LEARNT_SHARE:g} × the "
    "trivial predictor's, lowest points dropped while curved, ≥ "
    f"{MIN_WINDOW} doubling grid points.",
]


def _n_text(n: float) -> str:
    n = int(n)
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def summarize(results: list[dict], order: list[dict]) -> list[str]:
    """The printed table (fits 100 columns), the ordering lines and the local slopes."""
    lines = list(HEADER) + [
        "",
        "| β | d | pred. a | window |Ω| (pts) | a, plain [95% CI] | verdict | a − pred "
        "| a, ÷(log|Ω|)² |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        fp, fl = res["fits"]["plain"], res["fits"]["log2"]
        w = res["window"]
        pts = res["points"][w["start"]:w["stop"]]
        span = f"{_n_text(pts[0]['n_obs'])}–{_n_text(pts[-1]['n_obs'])} ({len(pts)})"
        verdict = "consistent" if fp["consistent"] else "INCONSISTENT"
        if not w["met"]:
            verdict += "*"
        lines.append(
            f"| {_config_of(res).beta_text} | {res['d']} | {res['predicted']:.3f} | {span} "
            f"| {fp['exponent']:.3f} [{fp['ci_low']:.3f}, {fp['ci_high']:.3f}] | {verdict} "
            f"| {fp['exponent'] - res['predicted']:+.3f} | {fl['exponent']:.2f} |"
        )
    if not all(res["window"]["met"] for res in results):
        lines.append("* window rule not met (the reason is below): the fit is shown, not claimed.")
    lines.append("")
    lines += summarize_orderings(order)
    for res in results:
        w = res["window"]
        reps = f", {res['reps']} replications" if "reps" in res else ""
        lines += ["", f"{_config_of(res).title}{reps}: window rule "
                  f"{'met' if w['met'] else 'NOT met'}"
                  f" ({w['reason']}); local slopes:"]
        for j, s in enumerate(res["local_slopes"]):
            inside = w["start"] <= j and j + 1 < w["stop"]
            lines.append(
                f"  {_n_text(s['n_low']):>5} → {_n_text(s['n_high']):<5} "
                f"a = {s['exponent']:6.3f} [{s['ci_low']:6.3f}, {s['ci_high']:6.3f}]"
                f"   excess/trivial {w['share'][j + 1]:.3f}{'   in window' if inside else ''}"
            )
    return lines


def summarize_orderings(order: list[dict]) -> list[str]:
    """One line per compared pair: resolved (and which way) or not, and why."""
    if not order:
        return ["Orderings: none (no two configurations share β or d)."]
    lines = []
    for o in order:
        fast, slow = _short(o["predicted_faster"]), _short(o["predicted_slower"])
        if not o["resolved"]:
            state = "UNRESOLVED, the 95% intervals overlap"
        elif o["as_predicted"]:
            state = f"resolved, {fast} faster as Theorem 2 predicts (intervals disjoint)"
        else:
            state = f"resolved AGAINST Theorem 2: {slow} faster (intervals disjoint)"
        note = "" if o["both_windows_met"] else "; a window rule was not met"
        lines.append(f"{o['kind']}-ordering at {o['fixed']}, {fast} vs {slow}: {state}{note}.")
    return lines


def _short(label: str) -> str:
    return label.replace("beta=inf", "β=∞").replace("beta=", "β=").replace(",", " ")


def plot(results: list[dict], order: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    k = len(results)
    fig, axes = plt.subplots(2, k, figsize=(4.3 * k, 7.4), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 2]})
    for col, res in enumerate(results):
        ax, ax2 = axes[0, col], axes[1, col]
        n, err, null = curve_arrays(res["points"])
        w = res["window"]
        se = np.array([[r["stderr"] for r in p["reps"]] for p in res["points"]])
        reps = err.shape[1]
        jitter = np.exp(np.linspace(-0.05, 0.05, reps))
        for r in range(reps):
            ax.errorbar(n * jitter[r], err[:, r], yerr=2 * se[:, r], fmt="o", ms=2.5, alpha=0.4,
                        color="C0", lw=0.7, label="replications (±2 MC s.e.)" if r == 0 else None)
        gmean = np.exp(np.log(err).mean(axis=1))
        ax.plot(n, gmean, "s", color="C0", ms=5, mfc="white", label="geometric mean")
        ax.plot(n, null.mean(axis=1), "-", color="0.6", lw=1, label="trivial predictor")
        lo, hi = n[w["start"]], n[w["stop"] - 1]
        for a in (ax, ax2):
            a.axvspan(lo / 1.2, hi * 1.2, color="C2", alpha=0.08, lw=0)
        fp = res["fits"]["plain"]
        wn = n[w["start"]:w["stop"]]
        werr = err[w["start"]:w["stop"]]
        xs = np.linspace(np.log(wn.min()), np.log(wn.max()), 50)
        xbar, ybar = np.log(wn).mean(), np.log(werr).mean()
        for a_, style, lab in ((fp["exponent"], "-", f"fit: a = {fp['exponent']:.2f}"),
                               (fp["ci_low"], ":", None), (fp["ci_high"], ":", None)):
            ax.plot(np.exp(xs), np.exp(ybar - a_ * (xs - xbar)), style, color="C1", lw=1.4,
                    label=lab)
        pred = res["predicted"]
        ax.plot(np.exp(xs), np.exp(ybar - pred * (xs - xbar)), "--", color="k", lw=1,
                label=f"Theorem 2: a = {pred:.2f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel("excess risk ‖R̂ − R*‖²")
        verdict = "consistent" if fp["consistent"] else "INCONSISTENT"
        if not w["met"]:
            verdict += " (window rule not met)"
        ax.set_title(f"{_config_of(res).title}: {verdict}\n"
                     f"a = {fp['exponent']:.2f} [{fp['ci_low']:.2f}, {fp['ci_high']:.2f}], "
                     f"predicted {pred:.2f}; {err.shape[1]} replications", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6.5, loc="lower left")
        ls = res["local_slopes"]
        mid = np.array([math.sqrt(s["n_low"] * s["n_high"]) for s in ls])
        a_loc = np.array([s["exponent"] for s in ls])
        yerr = np.array([[s["exponent"] - s["ci_low"] for s in ls],
                         [s["ci_high"] - s["exponent"] for s in ls]])
        ax2.errorbar(mid, a_loc, yerr=yerr, fmt="o", color="C0", ms=4, capsize=2,
                     label="local a between neighbours")
        ax2.axhspan(fp["ci_low"], fp["ci_high"], xmin=0, xmax=1, color="C1", alpha=0.2, lw=0,
                    label="window fit")
        ax2.axhline(pred, color="k", ls="--", lw=1, label="predicted")
        ax2.set_xscale("log")
        for a in (ax, ax2):
            # Ticks at the grid points: the default log ticks collide on a short axis.
            a.xaxis.set_major_locator(FixedLocator(n))
            a.xaxis.set_major_formatter(FixedFormatter([_n_text(x) for x in n]))
            a.xaxis.set_minor_formatter(NullFormatter())
        ax2.set_xlabel("|Ω|")
        ax2.set_ylabel("a")
        ax2.grid(True, which="both", alpha=0.3)
        ax2.legend(fontsize=6.5, loc="best")
    resolved = [o for o in order if o["resolved"] and o["as_predicted"]]
    lines = [f"{o['kind']}-ordering at {o['fixed']} ({_short(o['predicted_faster'])} vs "
             f"{_short(o['predicted_slower'])}): "
             + ("resolved" if o in resolved else
                "against" if o["resolved"] else "unresolved") for o in order]
    fig.suptitle(
        "Measured convergence rate vs Theorem 2: excess risk ≈ c·|Ω|^(−a), predicted "
        "a = 2β/(2β+d)\nbands and bars: 95% intervals (over replications); shaded: the "
        "window; " + "; ".join(lines), fontsize=9.5)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- driver


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    g = ap.add_argument_group("what to sweep")
    g.add_argument("--configs", default=None,
                   help=f"comma-separated BETA:D pairs, BETA may be inf; BETA:DxR gives that "
                        f"configuration R replications instead of --reps (default "
                        f"{CPU_DEFAULTS['configs']}; with --gpu {GPU_DEFAULTS['configs']})")
    g.add_argument("--grid", type=int, nargs="+", default=None,
                   help="explicit base |Ω| values for every configuration (overrides --n-min, "
                        "--n-max, --n-points); the window rule may still extend them")
    g.add_argument("--n-min", type=int, default=None,
                   help="smallest |Ω| (default 250·2^d per configuration)")
    g.add_argument("--n-max", type=int, default=None,
                   help="largest base |Ω|, with --n-points values spaced geometrically "
                        "(default: --n-points doublings from --n-min)")
    g.add_argument("--n-points", type=int, default=None,
                   help=f"base grid points (default {CPU_DEFAULTS['n_points']}; with --gpu "
                        f"{GPU_DEFAULTS['n_points']})")
    g.add_argument("--n-cap", type=int, default=None,
                   help="largest |Ω| the window rule may extend the grid to, by doubling "
                        f"(default {CPU_DEFAULTS['n_cap']}; with --gpu {GPU_DEFAULTS['n_cap']})")
    g.add_argument("--reps", type=int, default=None,
                   help=f"replications per point, trained together (default "
                        f"{CPU_DEFAULTS['reps']}; with --gpu {GPU_DEFAULTS['reps']})")
    g.add_argument("--seed", type=int, default=0, help="seeds every draw (default %(default)s)")
    g.add_argument("--gpu", choices=("auto", "on", "off"), default="auto",
                   help="the larger accelerator defaults (auto: on when jax.default_backend() "
                        "is gpu; default %(default)s)")
    g = ap.add_argument_group("data (ttm_jax.data.holder.make_holder_synthetic)")
    g.add_argument("--ambient-dim", type=int, default=16, help="D (default %(default)s)")
    g.add_argument("--embedding-dim", type=int, default=3,
                   help="p of the true maps and of the towers (default %(default)s)")
    g.add_argument("--noise-var", type=float, default=0.25,
                   help="σ² of the rating noise; Var R* = 1 (default %(default)s)")
    g = ap.add_argument_group("towers")
    g.add_argument("--width-schedule", choices=("fixed", "theorem2"), default="theorem2",
                   help="Theorem 2's W ∝ |Ω|^{d/(2β+d)} log|Ω| through --width at "
                        "--width-anchor, or --width at every |Ω| (default %(default)s)")
    g.add_argument("--width", type=int, default=64,
                   help="hidden width at --width-anchor (default %(default)s)")
    g.add_argument("--width-anchor", type=int, default=16000,
                   help="the |Ω| that gets --width under the theorem2 schedule "
                        "(default %(default)s)")
    g.add_argument("--min-width", type=int, default=64,
                   help="floor of the theorem2 schedule (default %(default)s)")
    g.add_argument("--max-width", type=int, default=192,
                   help="ceiling of the theorem2 schedule (default %(default)s)")
    g.add_argument("--fixed-width", type=int, default=None,
                   help="shorthand for --width-schedule fixed --width W")
    g.add_argument("--hidden-layers", type=int, default=2, help="(default %(default)s)")
    g = ap.add_argument_group("training (Adam, annealed step, L2 penalty, early stopping)")
    g.add_argument("--learning-rates", type=float, nargs="+", default=[3e-2],
                   help="initial step sizes tried per replication; the best validation RMSE "
                        "is kept (default %(default)s)")
    g.add_argument("--learning-rate", type=float, default=None,
                   help="shorthand for --learning-rates X (one step size, no choice)")
    g.add_argument("--anneal", type=float, default=300.0,
                   help="the step size falls geometrically by this factor over --max-epochs "
                        "(default %(default)s)")
    g.add_argument("--batch-size", type=int, default=256, help="(default %(default)s)")
    g.add_argument("--batch-scaling", choices=("fixed", "sqrt"), default=None,
                   help="batch --batch-size at every |Ω|, or growing as √|Ω| above 4096 "
                        "ratings with the step sizes by √ of the batch (default "
                        f"{CPU_DEFAULTS['batch_scaling']}; with --gpu "
                        f"{GPU_DEFAULTS['batch_scaling']})")
    g.add_argument("--max-epochs", type=int, nargs="+", default=None,
                   help="epoch budgets tried per replication, the best validation kept "
                        "(default 100 and 100 · 2^(4−d): 100 and 400 at d = 2, 100 at d ≥ 4)")
    g.add_argument("--penalty-weight", type=float, default=0.0,
                   help="λ of the L2 penalty (default %(default)s: Theorem 2 needs "
                        "4 λ |Ω| J(R_0) to fall as |Ω| grows, which no fixed λ > 0 meets; "
                        "see docs/rate_sweep.md §2)")
    g.add_argument("--check-epochs", type=int, default=None,
                   help="epochs between validation checks (default a tenth of each budget)")
    g.add_argument("--patience", type=int, default=4,
                   help="checks without improvement before stopping (default %(default)s)")
    g.add_argument("--workers", type=int, default=None,
                   help="processes computing points in parallel (default: 2 on a CPU with "
                        "2 or more cores, 1 with --gpu or --quick)")
    g.add_argument("--replications", choices=("vmap", "sequential"), default="vmap",
                   help="train a point's members together in one jax.vmap, or one after "
                        "another with ttm_jax.fit (same results up to rounding; default %(default)s)")
    g.add_argument("--val-fraction", type=float, default=0.2,
                   help="fraction of |Ω| held out for early stopping and the step size "
                        "(default %(default)s)")
    g = ap.add_argument_group("measurement and output")
    g.add_argument("--mc-size", type=int, default=1000,
                   help="fresh users and items for the Monte Carlo excess risk "
                        "(mc-size² pairs; default %(default)s)")
    g.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                   help="output folder (default benchmarks/out)")
    g.add_argument("--fresh", action="store_true", help="ignore and delete cached points")
    g.add_argument("--quick", action="store_true",
                   help="smoke run (2 configurations, |Ω| 300–1200, 2 replications, width 16, "
                        "30 epochs): seconds; writes rate_sweep_quick.* so the default outputs stay")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return ap


def resolve_args(args, backend: str | None = None):
    """Fill the defaults that depend on ``--gpu`` (and ``--quick``); returns ``args``."""
    backend = jax.default_backend() if backend is None else backend
    args.gpu_mode = args.gpu == "on" or (args.gpu == "auto" and backend == "gpu")
    defaults = GPU_DEFAULTS if args.gpu_mode else CPU_DEFAULTS
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    if args.workers is None:
        args.workers = 1 if args.gpu_mode or args.quick else min(2, os.cpu_count() or 1)
    if args.fixed_width is not None:
        args.width_schedule, args.width = "fixed", args.fixed_width
    if args.learning_rate is not None:
        args.learning_rates = [args.learning_rate]
    return args


def _validate(args, configs: list[RateConfig]) -> None:
    if args.grid is not None and (len(set(args.grid)) < 2 or min(args.grid) < 10):
        raise ValueError(f"--grid needs at least two |Ω| values >= 10 (got {args.grid})")
    if args.n_points < 2:
        raise ValueError(f"--n-points={args.n_points} must be >= 2")
    if args.reps < 2:
        raise ValueError(f"--reps={args.reps}: the per-replication intervals need >= 2")
    if args.n_cap < 10:
        raise ValueError(f"--n-cap={args.n_cap} must be >= 10")
    if not 0 < args.val_fraction < 0.5:
        raise ValueError(f"--val-fraction={args.val_fraction} must lie in (0, 0.5)")
    if args.fixed_width is not None and args.fixed_width < 1:
        raise ValueError(f"--fixed-width={args.fixed_width} must be >= 1")
    if args.width < 1 or (args.width_schedule == "theorem2"
                          and not 1 <= args.min_width <= args.max_width):
        raise ValueError("--width/--min-width/--max-width: need width >= 1 and "
                         "1 <= min-width <= max-width")
    if any(c.d > args.ambient_dim for c in configs):
        raise ValueError(f"--ambient-dim={args.ambient_dim} is below a configuration's d")
    if args.max_epochs is not None and min(args.max_epochs) < 1:
        raise ValueError(f"--max-epochs={args.max_epochs} must be >= 1")
    if not all(lr > 0 for lr in args.learning_rates) or args.anneal < 1:
        raise ValueError("--learning-rates must be > 0 and --anneal >= 1")
    for c in configs:
        grid = base_grid(c, args)
        if min(grid) < 10 or len(grid) < 2:
            raise ValueError(f"grid for {c.label}: need two |Ω| >= 10 (got {grid})")


class Planner:
    """The points of every configuration: the base grids first, then the extensions the
    window rule asks for, one configuration at a time, as its points come in.

    Points run in ``--workers`` processes (XLA on the CPU trains these small towers
    on one core, so two processes use two cores), the largest |Ω| first; a point's
    result depends only on its settings, so it is the same in any process and
    order. Cached points are read, never recomputed.
    """

    def __init__(self, configs: list[RateConfig], args, cache: ResultCache, bar):
        self.args, self.cache, self.bar = args, cache, bar
        self.state = {}
        for cfg in configs:
            grid = base_grid(cfg, args)
            cap = grid_cap(grid, args)
            self.state[cfg] = {"grid": list(grid), "cap": cap, "points": {}, "window": None,
                               "levels": default_levels(cfg.beta, cfg.d, cap)}
        self.computed = 0
        self.cached = 0

    def settings(self, cfg: RateConfig, n: int) -> tuple[int, int, dict]:
        st = self.state[cfg]
        width = schedule_widths(cfg, [n], self.args)[n]
        return width, st["levels"], point_settings(cfg, n, width, st["levels"], self.args)

    def todo(self, cfg: RateConfig) -> list[int]:
        """Grid points of ``cfg`` not yet known, after reading the cache."""
        st = self.state[cfg]
        out = []
        for n in st["grid"]:
            if n in st["points"]:
                continue
            _, _, key = self.settings(cfg, n)
            result = None if self.args.fresh else self.cache.load(cache_name(cfg, n), key=key)
            if result is None:
                out.append(n)
            else:
                st["points"][n] = result
                self.cached += 1
                self.bar.update(1)
        return out

    def tasks(self, cfg: RateConfig) -> list[tuple[float, RateConfig, int]]:
        """``(relative cost, cfg, |Ω|)`` of the points still to compute: pairs seen
        (epochs × |Ω|) times the tower's parameters, times the replications."""
        out = []
        for n in self.todo(cfg):
            width = schedule_widths(cfg, [n], self.args)[n]
            params = params_per_tower(width, self.args.hidden_layers, self.args.ambient_dim,
                                      self.args.embedding_dim)
            out.append((float(n) * sum(epoch_budgets(cfg, self.args)) * params
                        * cfg.replications(self.args), cfg, n))
        return out

    def done(self, cfg: RateConfig, n: int, result: dict) -> None:
        _, _, key = self.settings(cfg, n)
        self.cache.store(cache_name(cfg, n), result, key=key)
        self.state[cfg]["points"][n] = result
        self.computed += 1
        self.bar.update(1)
        if getattr(self.bar, "disable", False) and not self.args.no_progress:
            # No terminal (a log file, CI): one line per point instead of a bar.
            print(f"rate sweep: {cfg.label} |Ω|={n} done in {result['seconds']:.0f} s "
                  f"(point {self.computed + self.cached} of {self.bar.total} planned)",
                  file=sys.stderr, flush=True)

    def advance(self, cfg: RateConfig) -> bool:
        """With every grid point of ``cfg`` known: apply the window rule, and either add
        the next doubling (True) or settle the window (False)."""
        st = self.state[cfg]
        points = [st["points"][n] for n in st["grid"]]
        window = choose_window(*curve_arrays(points))
        nxt = 2 * st["grid"][-1]
        if window["extend"] and nxt <= st["cap"]:
            st["grid"].append(nxt)
            self.bar.total += 1
            return True
        if window["extend"]:
            window["reason"] += f"; the grid reached its cap |Ω| = {st['cap']}"
        window["cap"] = st["cap"]
        st["window"] = window
        return False

    def run(self) -> None:
        args = self.args
        active = list(self.state)
        if args.workers <= 1:
            for cfg in active:
                while True:
                    for n in self.todo(cfg):
                        width, levels, _ = self.settings(cfg, n)
                        self.bar.set_postfix_str(f"{cfg.label} |Ω|={n}")
                        self.done(cfg, n, run_point(cfg, n, width, levels, args))
                    if not self.advance(cfg):
                        break
            return
        import concurrent.futures as cf
        import multiprocessing
        import site
        import tempfile

        pending: dict = {}
        # Each worker takes a core of its own (a claim file per core in this folder), so
        # two workers never contend for one: 5% off the default run's point time on 2
        # cores (docs/rate_sweep.md §6).
        with contextlib.ExitStack() as stack:
            claims = (stack.enter_context(tempfile.TemporaryDirectory(prefix="rate_sweep_cores_"))
                      if len(usable_cores()) >= args.workers else None)
            # Entered after the folder, so the workers are gone before it is removed.
            pool = stack.enter_context(cf.ProcessPoolExecutor(
                max_workers=args.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=site.addsitedir, initargs=(str(Path(__file__).resolve().parent),),
            ))

            def submit(tasks):
                # The dearest points first (largest-processing-time order), so that
                # the longest ones do not start last and leave one worker idle.
                for _, cfg, n in sorted(tasks, key=lambda t: -t[0]):
                    width, levels, _ = self.settings(cfg, n)
                    fut = pool.submit(run_point_on_own_core, claims, cfg, n, width, levels, args)
                    pending[fut] = (cfg, n)

            def settle(cfg):
                while not any(c == cfg for c, _ in pending.values()):
                    if not self.advance(cfg):
                        return
                    submit(self.tasks(cfg))

            submit([t for cfg in active for t in self.tasks(cfg)])
            for cfg in active:
                settle(cfg)
            while pending:
                finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    cfg, n = pending.pop(fut)
                    self.done(cfg, n, fut.result())
                    settle(cfg)

    def points(self, cfg: RateConfig) -> list[dict]:
        st = self.state[cfg]
        return [st["points"][n] for n in st["grid"]]


def main(argv: list[str] | None = None) -> list[dict]:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        resolve_args(args)
        configs = parse_configs(args.configs)
        _validate(args, configs)
    except ValueError as err:
        ap.error(str(err))

    stem = "rate_sweep_quick" if args.quick else "rate_sweep"
    out = args.out
    cache = ResultCache(out / f"{stem}_cache")
    if args.fresh and cache.folder.exists():
        shutil.rmtree(cache.folder)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    total = sum(len(base_grid(c, args)) for c in configs)
    bar = tqdm(total=total, desc="rate sweep", unit="point", disable=args.no_progress or None)
    planner = Planner(configs, args, cache, bar)
    planner.run()
    computed, cached = planner.computed, planner.cached
    results = []
    for cfg in configs:
        pts, window = planner.points(cfg), planner.state[cfg]["window"]
        n, err, _ = curve_arrays(pts)
        results.append({
            "beta": _json_float(cfg.beta),
            "d": cfg.d,
            "label": cfg.label,
            "reps": cfg.replications(args),
            "predicted": cfg.predicted,
            "levels": pts[0]["levels"],
            "window": window,
            "fits": fit_window(cfg, pts, window),
            "local_slopes": local_slopes(n, err),
            "seconds": float(sum(p["seconds"] for p in pts)),
            "cpu_seconds": float(sum(p["cpu_seconds"] for p in pts)),
            "points": pts,
        })
    bar.close()
    order = orderings(results)
    seconds = time.perf_counter() - t0
    plot(results, order, out / f"{stem}.png")
    table = summarize(results, order)
    report = {
        **provenance(__file__, argv),
        "gpu_mode": args.gpu_mode,
        "wall_seconds": seconds,
        "points_computed": computed,
        "points_cached": cached,
        "rules": {"learnt_share": LEARNT_SHARE, "min_window": MIN_WINDOW,
                  "confidence": CONFIDENCE, "fit": "theory.fit_rate(method='per_replication')",
                  "consistent": "ci_high >= predicted (one-sided)",
                  "ordering": "theory.rate_ordering: disjoint 95% intervals"},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "orderings": order,
        "results": results,
    }
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    (out / f"{stem}.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    print(f"\n{computed + cached} points ({computed} computed, {cached} from cache) in "
          f"{seconds:.0f} s; wrote {out / (stem + '.png')}, {out / (stem + '.json')}")
    return results


if __name__ == "__main__":
    main()
