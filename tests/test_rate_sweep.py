"""benchmarks/rate_sweep.py: the window rule, the per-replication fits, the orderings, the
--gpu defaults, the cache key, the flags, and the --quick run (resumable, deterministic)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats


@pytest.fixture(scope="module")
def sweep(load_benchmark):
    return load_benchmark("rate_sweep")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _args(sweep, *argv, backend="cpu"):
    return sweep.resolve_args(sweep.build_parser().parse_args(list(argv)), backend=backend)


# --------------------------------------------------------------------------- window rule


def _curve(n, log_err, reps=6, noise=0.03, null=1.0, seed=0):
    """``[k, r]`` errors ``exp(log_err(n) + noise)`` and a flat trivial predictor."""
    rng = np.random.default_rng(seed)
    n = np.asarray(n, np.float64)
    err = np.exp(log_err(n)[:, None] + noise * rng.standard_normal((n.size, reps)))
    return n, err, np.full_like(err, null)


GRID = 1000.0 * 2.0 ** np.arange(7)


def test_a_power_law_below_the_learnt_share_is_one_window(sweep):
    n, err, null = _curve(GRID, lambda n: math.log(0.15) - 0.4 * np.log(n / 1000))
    w = sweep.choose_window(n, err, null)
    assert (w["start"], w["stop"], w["met"], w["extend"]) == (0, 7, True, False)
    assert not w["curvature"]["curved"] and w["dropped"] == []


def test_points_above_the_learnt_share_are_left_out(sweep):
    # The first two points are above 0.2 × the trivial predictor's excess risk.
    n, err, null = _curve(GRID, lambda n: math.log(0.3) - 0.4 * np.log(n / 1000))
    w = sweep.choose_window(n, err, null)
    assert w["share"][1] > 0.2 >= w["share"][2]
    assert (w["start"], w["met"]) == (2, True)


def test_a_take_off_is_dropped_while_the_window_is_curved(sweep):
    # Steep (a = 1.2) below 4000, then the rate a = 0.3: a take-off that starts
    # under the learnt share, so only the curvature test can remove it.
    def log_err(n):
        x = np.log(n / 4000)
        return math.log(0.05) - np.where(x < 0, 1.2 * x, 0.3 * x)

    n, err, null = _curve(GRID, log_err)
    w = sweep.choose_window(n, err, null)
    learnt = int(np.argmax(np.array(w["share"]) <= 0.2))
    assert w["met"] and w["start"] > learnt and w["stop"] == 7
    assert [d["n_obs"] for d in w["dropped"]] == list(GRID[learnt:w["start"]])
    assert all(d["curved"] for d in w["dropped"])
    fit = sweep.theory.fit_rate(n[w["start"]:], err[w["start"]:], method="per_replication")
    assert fit.ci_low <= 0.3 <= fit.ci_high


def test_a_plateau_asks_for_more_grid(sweep):
    # Nothing learnt: the excess risk sits at the trivial predictor's.
    n, err, null = _curve(GRID[:5], lambda n: np.zeros_like(n))
    w = sweep.choose_window(n, err, null)
    assert not w["met"] and w["extend"] and "only 0 grid point" in w["reason"]
    assert (w["start"], w["stop"]) == (1, 5)  # the top MIN_WINDOW points, for a flagged fit


def test_a_curve_still_bending_at_the_minimum_window_asks_for_more_grid(sweep):
    n, err, null = _curve(GRID[:4], lambda n: math.log(0.1) - 0.3 * np.log(n / 1000)
                          - 0.4 * np.log(n / 1000) ** 2)
    w = sweep.choose_window(n, err, null)
    assert not w["met"] and w["extend"] and "still curved" in w["reason"]


def test_the_planner_extends_the_grid_until_the_rule_is_met(sweep, tmp_path, monkeypatch):
    # A fake point: learnt only from |Ω| = 4000 on, so a base grid 1000–8000 must
    # grow to 32000 to hold four learnt points; the cap stops it there.
    def fake_point(cfg, n, width, levels, args):
        rng = np.random.default_rng(n)
        err = (0.9 if n < 4000 else 0.15 * (n / 4000) ** -0.4) * np.exp(
            0.02 * rng.standard_normal(args.reps))
        return {"n_obs": n, "levels": levels, "seconds": 0.0, "cpu_seconds": 0.0,
                "reps": [{"excess_risk": float(e), "null_risk": 1.0, "stderr": 0.0}
                         for e in err]}

    monkeypatch.setattr(sweep, "run_point", fake_point)
    args = _args(sweep, "--configs", "1:2", "--grid", "1000", "2000", "4000", "8000",
                 "--n-cap", "40000", "--workers", "1")

    class Bar:
        total = 0

        def update(self, k):
            pass

        def set_postfix_str(self, s):
            pass

    planner = sweep.Planner(sweep.parse_configs("1:2"), args,
                            sweep.ResultCache(tmp_path), Bar())
    planner.run()
    cfg = sweep.RateConfig(1.0, 2)
    state = planner.state[cfg]
    assert state["grid"] == [1000, 2000, 4000, 8000, 16000, 32000]
    assert state["window"]["met"] and state["window"]["start"] == 2
    assert state["cap"] == 40000 and planner.computed == 6


# --------------------------------------------------------------------------- fits, orderings


def test_the_window_fit_has_one_slope_per_replication(sweep):
    n, err, null = _curve(GRID[:5], lambda n: -0.5 * np.log(n), reps=5, noise=0.1, seed=3)
    points = [{"n_obs": float(x), "reps": [{"excess_risk": float(e), "null_risk": 1.0}
                                           for e in row]} for x, row in zip(n, err)]
    window = {"start": 1, "stop": 5}
    fits = sweep.fit_window(sweep.RateConfig(1.0, 2), points, window)
    slopes = [-stats.linregress(np.log(n[1:]), np.log(err[1:, r])).slope for r in range(5)]
    half = stats.t.ppf(0.975, 4) * np.std(slopes, ddof=1) / math.sqrt(5)
    plain = fits["plain"]
    assert plain["method"] == "per_replication" and plain["n_points"] == 20
    assert plain["exponent"] == pytest.approx(np.mean(slopes))
    assert plain["ci_high"] - plain["ci_low"] == pytest.approx(2 * half)
    assert plain["consistent"] == (plain["ci_high"] >= 0.5)
    local = sweep.local_slopes(n, err)
    assert len(local) == 4
    first = [-(np.log(err[1, r]) - np.log(err[0, r])) / math.log(2) for r in range(5)]
    assert local[0]["exponent"] == pytest.approx(np.mean(first))


def _res(sweep, beta, d, lo, hi, met=True):
    cfg = sweep.RateConfig(beta, d)
    fit = dict(exponent=(lo + hi) / 2, stderr=0.01, ci_low=lo, ci_high=hi, confidence=0.95,
               constant=1.0, log_power=0.0, method="per_replication", n_sizes=4,
               n_points=24, predicted=cfg.predicted, consistent=hi >= cfg.predicted)
    return {"beta": "inf" if math.isinf(beta) else beta, "d": d, "label": cfg.label,
            "predicted": cfg.predicted, "fits": {"plain": fit},
            "window": {"met": met}}


def test_orderings_are_claimed_from_intervals_only(sweep):
    results = [_res(sweep, 1.0, 2, 0.45, 0.55), _res(sweep, 1.0, 4, 0.28, 0.38),
               _res(sweep, 1.0, 8, 0.10, 0.30), _res(sweep, math.inf, 2, 0.40, 0.50)]
    order = sweep.orderings(results)
    by_pair = {(o["predicted_faster"], o["predicted_slower"]): o for o in order}
    d24 = by_pair[("beta=1,d=2", "beta=1,d=4")]
    assert d24["kind"] == "d" and d24["resolved"] and d24["as_predicted"]
    d48 = by_pair[("beta=1,d=4", "beta=1,d=8")]
    assert not d48["resolved"] and d48["as_predicted"] is None  # 0.33 > 0.20 is not a claim
    b = by_pair[("beta=inf,d=2", "beta=1,d=2")]
    assert b["kind"] == "β" and not b["resolved"]
    lines = sweep.summarize_orderings(order)
    assert any("β = 1, β=1 d=2 vs β=1 d=4: resolved" in s for s in lines)
    assert any("β=1 d=4 vs β=1 d=8: UNRESOLVED" in s for s in lines)
    # Resolved the wrong way round is said so, never turned into a confirmation.
    wrong = sweep.orderings([_res(sweep, 1.0, 2, 0.1, 0.2), _res(sweep, 1.0, 4, 0.3, 0.4)])
    assert wrong[0]["resolved"] and wrong[0]["as_predicted"] is False
    assert "AGAINST" in sweep.summarize_orderings(wrong)[0]
    # An ordering between configurations whose window rule failed is marked.
    flagged = sweep.orderings([_res(sweep, 1.0, 2, 0.45, 0.55, met=False),
                               _res(sweep, 1.0, 4, 0.28, 0.38)])
    assert "window rule was not met" in sweep.summarize_orderings(flagged)[0]


# --------------------------------------------------------------------------- flags, grids


def test_gpu_defaults_extend_the_grid_and_are_forced_by_the_flag(sweep):
    cpu = _args(sweep)
    auto_gpu = _args(sweep, backend="gpu")
    forced = _args(sweep, "--gpu", "on")
    off = _args(sweep, "--gpu", "off", backend="gpu")
    assert not cpu.gpu_mode and not off.gpu_mode and auto_gpu.gpu_mode and forced.gpu_mode
    cfg = sweep.RateConfig(1.0, 4)
    cpu_grid, gpu_grid = sweep.base_grid(cfg, cpu), sweep.base_grid(cfg, forced)
    assert cpu_grid == [4000, 8000, 16000, 32000, 64000]
    assert gpu_grid[:5] == cpu_grid and max(gpu_grid) > max(cpu_grid)
    assert sweep.grid_cap(gpu_grid, forced) > sweep.grid_cap(cpu_grid, cpu) == 64000
    assert sweep.grid_cap(sweep.base_grid(sweep.RateConfig(1.0, 2), cpu), cpu) == 32000
    assert "1:8" in forced.configs and "1:8" not in cpu.configs
    assert forced.reps > cpu.reps and forced.workers == 1
    # An explicit flag wins over either set of defaults.
    assert _args(sweep, "--gpu", "on", "--reps", "3").reps == 3
    assert sweep.batch_size(100_000, forced) > sweep.batch_size(100_000, cpu) == 256


def test_width_follows_theorem_2_through_the_anchor(sweep):
    args = _args(sweep, "--min-width", "8", "--max-width", "1000")
    grid = [1000, 4000, 16000, 64000]
    slow = sweep.schedule_widths(sweep.RateConfig(1.0, 8), grid, args)
    fast = sweep.schedule_widths(sweep.RateConfig(math.inf, 2), grid, args)
    for widths in (slow, fast):
        values = [widths[n] for n in grid]
        assert values == sorted(values) and widths[16000] == 64
        # W parameters per tower ∝ |Ω|^{d/(2β+d)} log|Ω| (before rounding to a width).
        ratio = sweep.params_per_tower(widths[64000], 2, 16, 3) / sweep.params_per_tower(64, 2,
                                                                                         16, 3)
        cfg = sweep.RateConfig(1.0, 8) if widths is slow else sweep.RateConfig(math.inf, 2)
        want = (64000 / 16000) ** (cfg.d / (2 * cfg.beta + cfg.d)) * math.log(64000) / math.log(
            16000)
        assert ratio == pytest.approx(want, rel=0.05)
    # W grows far faster at β=1, d=8 than log|Ω| at β=∞.
    assert slow[1000] < fast[1000] and slow[64000] > fast[64000]
    # The defaults: never below 64 (the floor), growing above the anchor.
    default = sweep.schedule_widths(sweep.RateConfig(1.0, 4), grid, _args(sweep))
    assert default[1000] == default[16000] == 64 < default[64000] <= 192
    fixed = sweep.schedule_widths(sweep.RateConfig(1.0, 8), grid, _args(sweep, "--fixed-width",
                                                                         "20"))
    assert set(fixed.values()) == {20}


@given(width=st.integers(1, 500), layers=st.integers(1, 4), d_in=st.integers(1, 60),
       p=st.integers(1, 40))
def test_width_for_params_inverts_the_parameter_count(sweep, width, layers, d_in, p):
    count = sweep.params_per_tower(width, layers, d_in, p)
    assert sweep.width_for_params(count, layers, d_in, p) == pytest.approx(width, abs=1e-6)


def test_the_epoch_budgets_tried_grow_as_d_falls(sweep):
    args = _args(sweep)
    budgets = {d: sweep.epoch_budgets(sweep.RateConfig(1.0, d), args) for d in (1, 2, 4, 8)}
    assert budgets == {1: [100, 800], 2: [100, 400], 4: [100], 8: [100]}
    # The larger budget sees as many samples at each configuration's first point.
    assert 400 * sweep.default_n_min(sweep.RateConfig(1.0, 2)) == \
        100 * sweep.default_n_min(sweep.RateConfig(1.0, 4))
    one = _args(sweep, "--max-epochs", "7")
    assert sweep.epoch_budgets(sweep.RateConfig(1.0, 2), one) == [7]
    assert sweep.epoch_budgets(sweep.RateConfig(1.0, 8),
                               _args(sweep, "--max-epochs", "200", "50", "200")) == [50, 200]
    tc = sweep.train_config(args, 12800, sweep.RateConfig(1.0, 2))
    assert tc.max_epochs == 400 and tc.eval_every_epochs == 40
    short = sweep.train_config(args, 12800, sweep.RateConfig(1.0, 2), epochs=100)
    assert short.max_epochs == 100 and short.eval_every_epochs == 10
    # The step size falls by --anneal over each budget, with no floor reached before.
    assert tc.decay_rate ** 400 == pytest.approx(1 / 300)
    assert short.decay_rate ** 100 == pytest.approx(1 / 300)
    assert tc.min_learning_rate < tc.learning_rate / 300


def test_each_replication_keeps_its_best_validation_choice(sweep, monkeypatch):
    # Training replaced by fixed validation RMSEs per (budget, replication, step
    # size): the kept choice is each replication's lowest of its four.
    rmse = {4: [[0.9, 0.8], [0.5, 0.7]], 8: [[0.6, 0.85], [0.65, 0.4]]}

    def fake_fit(models, trains, vals, config, *, keys, hyperparams, progress):
        best = np.array(rmse[config.max_epochs]).reshape(-1)
        r = len(models)
        return sweep.FitResult(models=tuple(models), history=None, best_epoch=np.ones(r),
                               best_val_rmse=best, epochs_run=np.ones(r),
                               stop_reason=(sweep.StopReason("max_epochs"),) * r, seconds=0.0,
                               tower_mode="rating", learning_rate=np.ones(r),
                               penalty_weight=np.ones(r))

    monkeypatch.setattr(sweep, "fit_members", fake_fit)
    args = _args(sweep, "--reps", "2", "--max-epochs", "8", "4", "--learning-rates", "0.01",
                 "0.03", "--mc-size", "20")
    point = sweep.run_point(sweep.RateConfig(1.0, 1), 60, 4, 2, args)
    assert point["epoch_budgets"] == [4, 8] and point["learning_rates"] == [0.01, 0.03]
    kept = [(rep["epoch_budget"], rep["learning_rate"], rep["val_rmse"]) for rep in point["reps"]]
    assert kept == [(8, 0.01, 0.6), (8, 0.03, 0.4)]
    assert [len(rep["val_rmse_per_choice"]) for rep in point["reps"]] == [4, 4]


def test_grids(sweep):
    assert sweep.geometric_grid(500, 16000, 6) == [500, 1000, 2000, 4000, 8000, 16000]
    with pytest.raises(ValueError, match="grid"):
        sweep.geometric_grid(500, 400, 6)
    cfg = sweep.RateConfig(1.0, 2)
    assert sweep.base_grid(cfg, _args(sweep)) == [1000, 2000, 4000, 8000, 16000]
    assert sweep.base_grid(cfg, _args(sweep, "--grid", "300", "100")) == [100, 300]
    assert sweep.base_grid(cfg, _args(sweep, "--n-min", "500", "--n-max", "4000",
                                      "--n-points", "4")) == [500, 1000, 2000, 4000]
    grid = sweep.base_grid(cfg, _args(sweep))
    assert sweep.grid_cap(grid, _args(sweep)) == 32000
    assert sweep.grid_cap(grid, _args(sweep, "--n-cap", "20000")) == 20000
    assert sweep.grid_cap(grid, _args(sweep, "--n-cap", "100")) == 16000  # never below the grid


def test_configurations_parse_and_bad_ones_are_named(sweep):
    cfgs = sweep.parse_configs("inf:2, 1:2,0.5:8")
    assert [(c.beta, c.d) for c in cfgs] == [(math.inf, 2), (1.0, 2), (0.5, 8)]
    assert [round(c.predicted, 3) for c in cfgs] == [1.0, 0.5, 0.111]
    for bad in ("1-2", "0:2", "1:0", "x:2", ""):
        with pytest.raises(ValueError, match="--configs"):
            sweep.parse_configs(bad)


def test_a_configuration_may_have_its_own_replications(sweep):
    cfgs = sweep.parse_configs("1:2x10,1:4,2:4")
    args = _args(sweep, "--reps", "6")
    assert [(c.beta, c.d, c.replications(args)) for c in cfgs] == [
        (1.0, 2, 10), (1.0, 4, 6), (2.0, 4, 6)]
    # The count is not part of the panel: the same (β, d) is one configuration.
    assert cfgs[0] == sweep.RateConfig(1.0, 2) and cfgs[0].label == "beta=1,d=2"
    for bad, why in (("1:2x1", ">= 2 replications"), ("1:2xten", "BETA:DxREPS"),
                     ("1:2,1:2x10", "given twice")):
        with pytest.raises(ValueError, match=why):
            sweep.parse_configs(bad)
    # A point trained with 10 replications is never read back for 6.
    n, base = 16000, _args(sweep)
    ten, six = sweep.parse_configs("1:2x10")[0], sweep.RateConfig(1.0, 2)
    assert sweep.point_settings(ten, n, 64, 6, base) != sweep.point_settings(six, n, 64, 6, base)


def test_workers_claim_distinct_cores(sweep, tmp_path):
    assert sweep.claim_core(str(tmp_path), [0, 1]) == 0
    assert sweep.claim_core(str(tmp_path), [0, 1]) == 1  # another worker: the next one
    assert sweep.claim_core(str(tmp_path), [0, 1]) is None  # all taken: run unpinned


def test_help_lists_the_flags(sweep, capsys):
    with pytest.raises(SystemExit) as info:
        sweep.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--configs", "--grid", "--reps", "--seed", "--out", "--fresh", "--quick",
                 "--fixed-width", "--width", "--gpu", "--n-cap", "--workers",
                 "--learning-rates", "--batch-scaling"):
        assert flag in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--configs", "1:x"], "--configs"),
        (["--grid", "100"], "--grid"),
        (["--reps", "1"], "--reps"),
        (["--fixed-width", "0"], "--fixed-width"),
        (["--configs", "1:40"], "--ambient-dim"),
        (["--n-cap", "5"], "--n-cap"),
    ],
)
def test_bad_flags_exit_with_a_message(sweep, capsys, tmp_path, argv, message):
    with pytest.raises(SystemExit) as info:
        sweep.main([*argv, "--out", str(tmp_path)])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- the cache key

#: Flags that do not change the result of a given point (|Ω| given): output,
#: scheduling, which points exist (the grid; the cap enters through the
#: truncation level ``levels``), shorthands resolved into other flags, and the
#: theorem2 schedule's floor (the width itself is in the key).
NOT_A_POINT_SETTING = {"configs", "grid", "n_min", "n_max", "n_points", "n_cap", "gpu",
                       "gpu_mode", "out", "fresh", "quick", "no_progress", "workers",
                       "fixed_width", "learning_rate", "width_schedule", "width_anchor",
                       "min_width", "max_width"}

CHANGES = {"reps": 7, "seed": 1, "ambient_dim": 12, "embedding_dim": 2, "noise_var": 0.5,
           "width": 32, "hidden_layers": 3, "learning_rates": [0.02],
           "anneal": 100.0, "batch_size": 128, "batch_scaling": "sqrt", "max_epochs": [50],
           "penalty_weight": 1e-4, "check_epochs": 5, "patience": 8,
           "replications": "sequential", "val_fraction": 0.25, "mc_size": 500}


def test_every_setting_that_determines_a_point_changes_its_cache_key(sweep):
    cfg, n = sweep.RateConfig(1.0, 2), 64000
    base = _args(sweep)

    def key(args):
        width = sweep.schedule_widths(cfg, [n], args)[n]
        return sweep.point_settings(cfg, n, width, 6, args)

    ref = key(base)
    dests = set(vars(base))
    assert dests == NOT_A_POINT_SETTING | set(CHANGES), \
        "a new flag: add it to CHANGES (it changes a point) or NOT_A_POINT_SETTING (why not)"
    for name, value in CHANGES.items():
        args = _args(sweep)
        setattr(args, name, value)
        assert key(args) != ref, name
    assert sweep.point_settings(cfg, n, 64, 7, base) != ref  # the truncation level
    assert sweep.point_settings(sweep.RateConfig(2.0, 2), n, 64, 6, base) != ref
    # Every TrainConfig field is in the key, so a changed training default can
    # never reuse an old point.
    fields = {f.name for f in dataclasses.fields(sweep.TrainConfig)}
    assert fields == set(ref["train"])


def test_the_result_cache_is_keyed(sweep, tmp_path):
    cache = sweep.ResultCache(tmp_path)
    settings = {"n_obs": 100, "train": {"learning_rate": 0.003}}
    cache.store("beta1_d2/n100", {"x": 1}, key=settings)
    assert cache.load("beta1_d2/n100", key=settings) == {"x": 1}
    assert cache.load("beta1_d2/n100", key={"n_obs": 100, "train": {"learning_rate": 0.001}}) is None
    cache.path("beta1_d2/n100").write_text("{ truncated")
    assert cache.load("beta1_d2/n100", key=settings) is None


# --------------------------------------------------------------------------- runs


def test_quick_run_is_finite_resumable_and_deterministic(sweep, tmp_path):
    first = sweep.main(["--quick", "--out", str(tmp_path / "a"), "--no-progress"])
    report = json.loads((tmp_path / "a" / "rate_sweep_quick.json").read_text())
    for name in ("rate_sweep_quick.png", "rate_sweep_quick.json", "rate_sweep_quick.md"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    assert report["points_computed"] == 6 and len(report["results"]) == 2
    for key in ("wall_seconds", "results"):
        assert key in report
    for res in report["results"]:
        assert len(res["points"]) == 3 and len(res["local_slopes"]) == 2
        for field in ("beta", "d", "predicted", "window", "fits"):
            assert field in res
        for point in res["points"]:
            assert len(point["reps"]) == 2
            for rep in point["reps"]:
                assert _finite(rep["excess_risk"]) and rep["excess_risk"] > 0
        plain = res["fits"]["plain"]
        for key in ("exponent", "ci_low", "ci_high"):
            assert _finite(plain[key])
        assert isinstance(plain["consistent"], bool)
    table = (tmp_path / "a" / "rate_sweep_quick.md").read_text()
    assert "one-sided" in table and "β-ordering at d = 2" in table
    assert "* window rule not met" in table  # the quick grid is too short for the rule
    assert max(len(line) for line in table.splitlines() if line.startswith("|")) <= 100

    # Resumed: every point from the cache, the same fits.
    again = sweep.main(["--quick", "--out", str(tmp_path / "a"), "--no-progress"])
    report2 = json.loads((tmp_path / "a" / "rate_sweep_quick.json").read_text())
    assert report2["points_computed"] == 0 and report2["points_cached"] == 6
    assert again[0]["fits"] == first[0]["fits"]

    # Recomputed from scratch: the same numbers.
    fresh = sweep.main(["--quick", "--out", str(tmp_path / "b"), "--no-progress"])
    for a, b in zip(first, fresh):
        assert [r["excess_risk"] for p in a["points"] for r in p["reps"]] == \
               [r["excess_risk"] for p in b["points"] for r in p["reps"]]
        assert a["fits"] == b["fits"]


def test_replications_alone_in_parallel_workers_or_under_forced_gpu_defaults(sweep, tmp_path):
    tiny = ["--configs", "1:1", "--grid", "100", "200", "--reps", "2", "--fixed-width", "4",
            "--max-epochs", "10", "--mc-size", "50", "--n-cap", "200", "--no-progress"]
    together = sweep.main([*tiny, "--workers", "1", "--out", str(tmp_path / "v")])
    # One by one with ttm_jax.fit: the same fits up to float rounding.
    alone = sweep.main([*tiny, "--workers", "1", "--out", str(tmp_path / "s"),
                        "--replications", "sequential"])
    for p, q in zip(together[0]["points"], alone[0]["points"]):
        for a, b in zip(p["reps"], q["reps"]):
            assert a["best_epoch"] == b["best_epoch"]
            assert (a["learning_rate"], a["epoch_budget"]) == (b["learning_rate"],
                                                               b["epoch_budget"])
            assert a["excess_risk"] == pytest.approx(b["excess_risk"], rel=1e-3)
    # A configuration with its own count trains that many; the others take --reps.
    mixed = sweep.main(["--configs", "1:1x3,2:1", *tiny[2:], "--workers", "1",
                        "--out", str(tmp_path / "m")])
    assert [len(p["reps"]) for res in mixed for p in res["points"]] == [3, 3, 2, 2]
    assert [res["reps"] for res in mixed] == [3, 2]
    # Replications 0 and 1 of the three are the two of the --reps run, on the same truths.
    for p, q in zip(mixed[0]["points"], together[0]["points"]):
        assert [r["excess_risk"] for r in p["reps"][:2]] == pytest.approx(
            [r["excess_risk"] for r in q["reps"]], rel=1e-3)
    table = (tmp_path / "m" / "rate_sweep.md").read_text()
    assert "β = 1, d = 1, 3 replications: window rule" in table
    # --gpu forced on a CPU, with the points in two worker processes: the GPU
    # defaults apply where no flag is given, and a point's numbers do not depend on
    # the process that computed it.
    forced = sweep.main([*tiny, "--gpu", "on", "--workers", "2", "--out", str(tmp_path / "g")])
    report = json.loads((tmp_path / "g" / "rate_sweep.json").read_text())
    assert report["gpu_mode"] is True and report["args"]["batch_scaling"] == "sqrt"
    for p, q in zip(forced[0]["points"], together[0]["points"]):
        assert [r["excess_risk"] for r in p["reps"]] == [r["excess_risk"] for r in q["reps"]]
    # Each worker pinned itself to a core of its own (where there are two to take).
    usable = sweep.usable_cores()
    cores = {p["worker_core"] for p in forced[0]["points"]}
    assert cores <= (set(usable) if len(usable) >= 2 else {-1})
