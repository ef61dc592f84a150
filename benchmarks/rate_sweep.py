"""Measured convergence rate of the two-tower model against Theorem 2 (SPEC §5).

For each configuration (β, d) and each |Ω| on a geometric grid, draws
``--reps`` independent data sets from :func:`ttm_jax.data.holder.make_holder_synthetic`
(β-smooth true maps on a d-dimensional support, |Ω| iid pairs from μ_u × μ_i),
trains one two-tower model per data set (all replications of a point in one
``vmap``, :func:`ttm_jax.fit_members`), and estimates the excess risk
``‖R̂ − R*‖²_{L2(μ_u × μ_i)}`` by Monte Carlo on fresh users and items
(:func:`ttm_jax.excess_risk`; noise excluded). Then fits the log-log slope with
``theory.fit_rate`` (plain, and with Theorem 2's (log|Ω|)² divided out) and
compares it with ``theory.theorem2_exponent(β, d, d) = 2β/(2β + d)``.

Tower width follows Theorem 2's schedule ``W ∝ |Ω|^{d/(2β+d)} log|Ω|`` effective
parameters per tower (``theory.theorem2_width``), its constant set per
configuration so the largest |Ω| gets ``--max-width`` hidden units; or
``--fixed-width``. See docs/rate_sweep.md.

Run:  python benchmarks/rate_sweep.py            (default sweep: 4–8 minutes on 2 shared cores)
      python benchmarks/rate_sweep.py --quick    (smoke run: 20–35 seconds)
Writes OUT/rate_sweep.png, OUT/rate_sweep.json, OUT/rate_sweep.md and a cache
OUT/rate_sweep_cache/ (one JSON per configuration and |Ω|; reruns resume, --fresh redoes).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import platform
import shutil
import sys
import time
from pathlib import Path

import jax
import numpy as np
from common import ResultCache
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

DEFAULT_CONFIGS = "inf:2,1:2,1:4,1:8"
CACHE_VERSION = 2


@dataclasses.dataclass(frozen=True)
class RateConfig:
    """One panel of the sweep: smoothness β and intrinsic dimension d (``d_u = d_i = d``)."""

    beta: float
    d: int

    @property
    def label(self) -> str:
        b = "inf" if math.isinf(self.beta) else f"{self.beta:g}"
        return f"beta={b},d={self.d}"

    @property
    def title(self) -> str:
        b = "∞" if math.isinf(self.beta) else f"{self.beta:g}"
        return f"β = {b}, d = {self.d}"

    @property
    def predicted(self) -> float:
        return theory.theorem2_exponent(self.beta, self.d, self.d)


def parse_configs(text: str) -> list[RateConfig]:
    """``"inf:2,1:8"`` → configurations (β, d); β may be ``inf``."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            b, d = item.split(":")
            beta = math.inf if b.strip().lower() in ("inf", "infinity", "∞") else float(b)
            dim = int(d)
        except ValueError:
            raise ValueError(
                f"--configs: {item!r} is not BETA:D (e.g. 1:2, 0.5:1, inf:2)"
            ) from None
        if not (beta > 0) or dim < 1:
            raise ValueError(f"--configs: {item!r} needs β > 0 and an integer d >= 1")
        out.append(RateConfig(beta, dim))
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
    """Hidden width per |Ω|: Theorem 2's ``W = c |Ω|^{d/(2β+d)} log|Ω|`` with ``c`` fixed so
    the largest |Ω| gets ``--max-width`` units (or ``--fixed-width`` everywhere)."""
    if args.fixed_width:
        return {n: int(args.fixed_width) for n in grid}
    top = params_per_tower(args.max_width, args.hidden_layers, args.ambient_dim,
                           args.embedding_dim)
    constant = top / float(theory.theorem2_width(max(grid), cfg.beta, cfg.d, cfg.d))
    out = {}
    for n in grid:
        w = float(theory.theorem2_width(n, cfg.beta, cfg.d, cfg.d, constant=constant))
        h = width_for_params(w, args.hidden_layers, args.ambient_dim, args.embedding_dim)
        out[n] = int(min(args.max_width, max(args.min_width, round(h))))
    return out


def train_config(args, n_train: int) -> TrainConfig:
    """Adam with a per-epoch decaying step; checks every ``--check-epochs`` (at least
    ``--check-steps`` steps, so small |Ω| is not judged on a handful of steps)."""
    steps_per_epoch = max(1, math.ceil(n_train / args.batch_size))
    every = max(args.check_epochs, math.ceil(args.check_steps / steps_per_epoch))
    return TrainConfig(
        optimizer="adam",
        learning_rate=args.learning_rate,
        decay_rate=args.decay_rate,
        decay_epochs=1.0,
        batch_size=args.batch_size,
        max_epochs=every * math.ceil(args.max_epochs / every),
        penalty="l2",
        penalty_weight=args.penalty_weight,
        eval_every_epochs=every,
        patience=args.patience,
    )


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0]
               >> np.uint64(2))


def _beta_code(beta: float) -> int:
    return 10**9 if math.isinf(beta) else int(round(beta * 1000))


def point_settings(cfg: RateConfig, n: int, width: int, levels: int, args) -> dict:
    """Everything that determines a point's result; the cache is keyed on it."""
    tc = train_config(args, n - round(args.val_fraction * n))
    return {
        "version": CACHE_VERSION,
        "beta": _json_float(cfg.beta),
        "d": cfg.d,
        "n_obs": n,
        "reps": args.reps,
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
        "train": dataclasses.asdict(tc),
    }


def run_point(cfg: RateConfig, n: int, width: int, levels: int, args) -> dict:
    """Train ``args.reps`` replications at one |Ω| and measure their excess risk."""
    t0 = time.perf_counter()
    n_val = round(args.val_fraction * n)
    n_train = n - n_val
    datasets, trains, vals, models, keys = [], [], [], [], []
    mcfg = ModelConfig(hidden=(width,) * args.hidden_layers, embedding_dim=args.embedding_dim)
    for r in range(args.reps):
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
    tc = train_config(args, n_train)
    if args.replications == "vmap":
        res = fit_members(models, trains, vals, tc, keys=keys, progress=False)
    else:
        res = _fit_one_by_one(models, trains, vals, tc, keys)
    reps = []
    for r, (model, synth) in enumerate(zip(res.models, datasets)):
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
            "best_epoch": float(res.best_epoch[r]),
            "val_rmse": float(res.best_val_rmse[r]),
            "diverged": bool(res.diverged[r]),
        })
    return {
        "n_obs": n,
        "n_train": n_train,
        "width": width,
        "params_per_tower": params_per_tower(width, args.hidden_layers, args.ambient_dim,
                                             args.embedding_dim),
        "levels": levels,
        "epochs_run": float(np.max(res.epochs_run)),
        "stop_reason": "/".join(sorted({str(r) for r in res.stop_reason})),
        "data_seconds": t_data,
        "fit_seconds": res.seconds,
        "seconds": time.perf_counter() - t0,
        "reps": reps,
    }


def _fit_one_by_one(models, trains, vals, tc, keys) -> FitResult:
    """``--replications sequential``: each replication through ``ttm_jax.fit`` in turn
    (the same result as the vmap up to rounding; for timing the two)."""
    t0 = time.perf_counter()
    fits = []
    for model, train, val, key in zip(models, trains, vals, keys):
        try:
            fits.append(fit(model, train, val, tc, key=key, progress=False))
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


def _json_float(x: float):
    return "inf" if math.isinf(x) else float(x)


def cache_name(cfg: RateConfig, n: int) -> str:
    """A point's name in the cache: one folder per configuration, one file per |Ω|."""
    return cfg.label.replace("=", "").replace(",", "_") + f"/n{n}"


def fit_config(cfg: RateConfig, points: list[dict]) -> dict:
    """Plain and (log|Ω|)²-corrected rate fits of one configuration."""
    n = np.array([p["n_obs"] for p in points], np.float64)
    err = np.array([[r["excess_risk"] for r in p["reps"]] for p in points], np.float64)
    out = {}
    for name, power in (("plain", 0.0), ("log2", 2.0)):
        fit = theory.fit_rate(n, err, log_power=power, predicted=cfg.predicted)
        out[name] = fit._asdict()
    return out


def summarize(results: list[dict]) -> list[str]:
    """The printed table and the d-ordering check, as lines of Markdown."""
    lines = [
        "| β | d | predicted 2β/(2β+d) | measured (plain) ± 95% CI | verdict (plain) "
        "| measured ((log|Ω|)² divided out) ± 95% CI | verdict (Theorem 2 form) "
        "| excess risk, smallest → largest |Ω| | training-mean predictor |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        fp, fl = res["fits"]["plain"], res["fits"]["log2"]

        def cell(f):
            return f"{f['exponent']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]"

        def verdict(f):
            return "consistent" if f["consistent"] else "**inconsistent**"

        def gmean(point):
            return math.exp(np.mean([math.log(r["excess_risk"]) for r in point["reps"]]))

        nulls = [r.get("null_risk", math.nan) for p in res["points"] for r in p["reps"]]
        b = "∞" if res["beta"] == "inf" else f"{res['beta']:g}"
        lines.append(
            f"| {b} | {res['d']} | {res['predicted']:.3f} | {cell(fp)} | {verdict(fp)} | "
            f"{cell(fl)} | {verdict(fl)} | {gmean(res['points'][0]):.3g} → "
            f"{gmean(res['points'][-1]):.3g} | {float(np.mean(nulls)):.3g} |"
        )
    lines.append("")
    lines.extend(d_ordering(results))
    return lines


def d_ordering(results: list[dict]) -> list[str]:
    """At each β with several d: is the measured rate faster for smaller d?"""
    by_beta: dict[str, list[dict]] = {}
    for res in results:
        by_beta.setdefault(str(res["beta"]), []).append(res)
    lines = []
    for beta, group in by_beta.items():
        if len(group) < 2:
            continue
        group = sorted(group, key=lambda r: r["d"])
        rates = [r["fits"]["plain"]["exponent"] for r in group]
        ordered = all(a > b for a, b in zip(rates, rates[1:]))
        separated = all(
            a["fits"]["plain"]["ci_low"] > b["fits"]["plain"]["ci_high"]
            for a, b in zip(group, group[1:])
        )
        chain = " > ".join(f"d={r['d']}: {x:.3f}" for r, x in zip(group, rates))
        b = "∞" if beta == "inf" else beta
        lines.append(
            f"d-ordering at β = {b} (plain exponents): {chain} — "
            + ("smaller d is faster" if ordered else "NOT monotone in d")
            + ("; every adjacent pair's 95% intervals are disjoint" if separated else
               "; some adjacent 95% intervals overlap")
        )
    return lines


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    k = len(results)
    ncols = min(k, 4)
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.8 * nrows), squeeze=False)
    for ax in axes.flat[k:]:
        ax.set_visible(False)
    for ax, res in zip(axes.flat, results):
        pts = res["points"]
        n = np.array([p["n_obs"] for p in pts], np.float64)
        err = np.array([[r["excess_risk"] for r in p["reps"]] for p in pts])
        se = np.array([[r["stderr"] for r in p["reps"]] for p in pts])
        reps = err.shape[1]
        jitter = np.exp(np.linspace(-0.04, 0.04, reps))
        for r in range(reps):
            ax.errorbar(n * jitter[r], err[:, r], yerr=2 * se[:, r], fmt="o", ms=3, alpha=0.45,
                        color="C0", lw=0.8, label="replications (±2 MC s.e.)" if r == 0 else None)
        gmean = np.exp(np.log(err).mean(axis=1))
        ax.plot(n, gmean, "s", color="C0", ms=5, mfc="white", label="geometric mean")
        fit = res["fits"]["plain"]
        lx, ly = np.log(np.repeat(n, reps)), np.log(err.reshape(-1))
        xbar, ybar = lx.mean(), ly.mean()
        sxx = float(np.sum((lx - xbar) ** 2))
        xs = np.linspace(np.log(n.min()), np.log(n.max()), 50)
        line = ybar - fit["exponent"] * (xs - xbar)
        tq = stats.t.ppf(0.5 + fit["confidence"] / 2, lx.size - 2)
        half = tq * fit["stderr"] * np.sqrt(sxx / lx.size + (xs - xbar) ** 2)
        ax.plot(np.exp(xs), np.exp(line), color="C1",
                label=f"fit: slope −{fit['exponent']:.2f} ± {tq * fit['stderr']:.2f}")
        ax.fill_between(np.exp(xs), np.exp(line - half), np.exp(line + half), color="C1",
                        alpha=0.2, lw=0)
        a = res["predicted"]
        ax.plot(np.exp(xs), np.exp(ybar - a * (xs - xbar)), "--", color="k", lw=1,
                label=f"Theorem 2 slope −{a:.2f}")
        bound = -a * xs + 2 * np.log(xs)
        ax.plot(np.exp(xs), np.exp(bound - bound.mean() + ybar), ":", color="k", lw=1,
                label="bound shape |Ω|⁻ᵃ(log|Ω|)²")
        ax.set_xscale("log")
        ax.set_yscale("log")
        # The trivial predictor (training mean) is drawn only where it is on the
        # data's scale: there it shows that a configuration has learned nothing.
        null = np.array([[r.get("null_risk", np.nan) for r in p["reps"]] for p in pts])
        null_mean = null.mean(axis=1)
        if np.all(np.isfinite(null_mean)) and null_mean.min() < 2.0 * err.max():
            ax.plot(n, null_mean, "-", color="0.55", lw=1.2, label="training-mean predictor")
        flog = res["fits"]["log2"]
        ax.set_title(f"{RateConfig(_from_json(res['beta']), res['d']).title}\n"
                     f"measured {fit['exponent']:.2f} (÷log²: {flog['exponent']:.2f}), "
                     f"predicted {a:.2f}", fontsize=9)
        ax.set_xlabel("|Ω|")
        ax.set_ylabel("excess risk ‖R̂ − R*‖²")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6.5, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _from_json(x) -> float:
    return math.inf if x == "inf" else float(x)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    g = ap.add_argument_group("what to sweep")
    g.add_argument("--configs", default=DEFAULT_CONFIGS,
                   help="comma-separated BETA:D pairs, BETA may be inf (default %(default)s)")
    g.add_argument("--grid", type=int, nargs="+", default=None,
                   help="explicit |Ω| values (overrides --n-min/--n-max/--n-points)")
    g.add_argument("--n-min", type=int, default=500, help="smallest |Ω| (default %(default)s)")
    g.add_argument("--n-max", type=int, default=16000, help="largest |Ω| (default %(default)s)")
    g.add_argument("--n-points", type=int, default=6,
                   help="number of |Ω| values, geometric (default %(default)s)")
    g.add_argument("--reps", type=int, default=3,
                   help="replications per point, trained together in one vmap (default %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="seeds every draw (default %(default)s)")
    g = ap.add_argument_group("data (ttm_jax.data.holder.make_holder_synthetic)")
    g.add_argument("--ambient-dim", type=int, default=16, help="D (default %(default)s)")
    g.add_argument("--embedding-dim", type=int, default=3,
                   help="p of the true maps and of the towers (default %(default)s)")
    g.add_argument("--noise-var", type=float, default=0.25,
                   help="σ² of the rating noise; Var R* = 1 (default %(default)s)")
    g = ap.add_argument_group("towers")
    g.add_argument("--max-width", type=int, default=64,
                   help="hidden width at the largest |Ω|; Theorem 2's schedule below it "
                        "(default %(default)s)")
    g.add_argument("--min-width", type=int, default=8,
                   help="floor of the scheduled width (default %(default)s)")
    g.add_argument("--fixed-width", type=int, default=None,
                   help="use this hidden width at every |Ω| instead of the schedule")
    g.add_argument("--hidden-layers", type=int, default=2, help="(default %(default)s)")
    g = ap.add_argument_group("training (Adam, L2 penalty, early stopping)")
    g.add_argument("--learning-rate", type=float, default=3e-3, help="(default %(default)s)")
    g.add_argument("--decay-rate", type=float, default=0.98,
                   help="step size × this per epoch (default %(default)s)")
    g.add_argument("--batch-size", type=int, default=256, help="(default %(default)s)")
    g.add_argument("--max-epochs", type=int, default=300, help="(default %(default)s)")
    g.add_argument("--penalty-weight", type=float, default=1e-5,
                   help="λ of the L2 penalty (default %(default)s)")
    g.add_argument("--check-epochs", type=int, default=5,
                   help="epochs between validation checks (default %(default)s)")
    g.add_argument("--check-steps", type=int, default=50,
                   help="at least this many steps between checks (default %(default)s)")
    g.add_argument("--patience", type=int, default=10,
                   help="checks without improvement before stopping (default %(default)s)")
    g.add_argument("--replications", choices=("vmap", "sequential"), default="vmap",
                   help="train a point's replications together in one jax.vmap, or one after "
                        "another with ttm_jax.fit (same results up to rounding; default %(default)s)")
    g.add_argument("--val-fraction", type=float, default=0.2,
                   help="fraction of |Ω| held out for early stopping (default %(default)s)")
    g = ap.add_argument_group("measurement and output")
    g.add_argument("--mc-size", type=int, default=2000,
                   help="fresh users and items for the Monte Carlo excess risk "
                        "(mc-size² pairs; default %(default)s)")
    g.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                   help="output folder (default benchmarks/out)")
    g.add_argument("--fresh", action="store_true", help="ignore and delete cached points")
    g.add_argument("--quick", action="store_true",
                   help="smoke run (2 configurations, 3 small |Ω|, 2 replications, width 16): "
                        "under 2 minutes; writes rate_sweep_quick.* so the default outputs stay")
    g.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return ap


QUICK = dict(configs="inf:2,1:2", grid=[300, 600, 1200], reps=2, fixed_width=16, max_epochs=60,
             mc_size=500, patience=4)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    try:
        configs = parse_configs(args.configs)
        grid = sorted(set(args.grid)) if args.grid else geometric_grid(args.n_min, args.n_max,
                                                                       args.n_points)
        if len(grid) < 2 or min(grid) < 10:
            raise ValueError(f"--grid needs at least two |Ω| values >= 10 (got {grid})")
        if args.reps < 1 or len(grid) * args.reps < 3:
            raise ValueError("--reps: need reps >= 1 and at least 3 (|Ω|, replication) points")
        if not 0 < args.val_fraction < 0.5:
            raise ValueError(f"--val-fraction={args.val_fraction} must lie in (0, 0.5)")
        if args.fixed_width is not None and args.fixed_width < 1:
            raise ValueError(f"--fixed-width={args.fixed_width} must be >= 1")
        if args.min_width < 1 or args.max_width < args.min_width:
            raise ValueError("--min-width/--max-width: need 1 <= min-width <= max-width")
        if any(c.d > args.ambient_dim for c in configs):
            raise ValueError(f"--ambient-dim={args.ambient_dim} is below a configuration's d")
    except ValueError as err:
        ap.error(str(err))

    stem = "rate_sweep_quick" if args.quick else "rate_sweep"
    out = args.out
    cache = ResultCache(out / f"{stem}_cache")
    if args.fresh and cache.folder.exists():
        shutil.rmtree(cache.folder)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    plan = []
    for cfg in configs:
        widths = schedule_widths(cfg, grid, args)
        levels = default_levels(cfg.beta, cfg.d, max(grid))
        plan.extend((cfg, n, widths[n], levels) for n in grid)
    points: dict[str, list[dict]] = {c.label: [] for c in configs}
    computed = 0
    bar = tqdm(plan, desc="rate sweep", unit="point", disable=args.no_progress or None)
    for cfg, n, width, levels in bar:
        bar.set_postfix_str(f"{cfg.label} |Ω|={n} width={width}")
        settings = point_settings(cfg, n, width, levels, args)
        name = cache_name(cfg, n)
        result = None if args.fresh else cache.load(name, key=settings)
        if result is None:
            result = run_point(cfg, n, width, levels, args)
            cache.store(name, result, key=settings)
            computed += 1
        points[cfg.label].append(result)
    bar.close()

    results = []
    for cfg in configs:
        pts = points[cfg.label]
        results.append({
            "beta": _json_float(cfg.beta),
            "d": cfg.d,
            "label": cfg.label,
            "predicted": cfg.predicted,
            "levels": pts[0]["levels"],
            "points": pts,
            "fits": fit_config(cfg, pts),
        })
    seconds = time.perf_counter() - t0
    plot(results, out / f"{stem}.png")
    table = summarize(results)
    command = "python benchmarks/rate_sweep.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    report = {
        "command": command.strip(),
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, jax {jax.__version__}, "
                   f"{jax.devices()[0].platform}",
        "wall_seconds": seconds,
        "points_computed": computed,
        "points_cached": len(plan) - computed,
        "grid": grid,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": results,
    }
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    (out / f"{stem}.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    print(f"\n{len(plan)} points ({computed} computed, {len(plan) - computed} from cache) in "
          f"{seconds:.0f} s; wrote {out / (stem + '.png')}, {out / (stem + '.json')}")
    return results


if __name__ == "__main__":
    main()
