"""benchmarks/rate_sweep.py: the --quick CI run, the cache, the width schedule, the flags."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def sweep(load_benchmark):
    return load_benchmark("rate_sweep")


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_quick_run_writes_finite_outputs_and_resumes_from_its_cache(sweep, tmp_path):
    sweep.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    for name in ("rate_sweep_quick.png", "rate_sweep_quick.json", "rate_sweep_quick.md"):
        assert (tmp_path / name).stat().st_size > 0
    report = json.loads((tmp_path / "rate_sweep_quick.json").read_text())
    assert report["points_computed"] == 6 and len(report["results"]) == 2
    for res in report["results"]:
        assert len(res["points"]) == 3
        for point in res["points"]:
            assert len(point["reps"]) == 2
            for rep in point["reps"]:
                assert _finite(rep["excess_risk"]) and rep["excess_risk"] > 0
                assert _finite(rep["stderr"])
        for fit in res["fits"].values():
            for key in ("exponent", "stderr", "ci_low", "ci_high", "constant"):
                assert _finite(fit[key])
            assert isinstance(fit["consistent"], bool)
    table = (tmp_path / "rate_sweep_quick.md").read_text()
    assert "| ∞ | 2 | 1.000 |" in table and "| 1 | 2 | 0.500 |" in table
    assert "d-ordering" not in table  # one d per β in the quick run

    # A second run finds every point in the cache and reproduces the results.
    again = sweep.main(["--quick", "--out", str(tmp_path), "--no-progress"])
    report2 = json.loads((tmp_path / "rate_sweep_quick.json").read_text())
    assert report2["points_computed"] == 0 and report2["points_cached"] == 6
    assert again[0]["fits"] == report["results"][0]["fits"]


def test_the_cache_is_keyed_on_every_setting(sweep, tmp_path):
    from common import ResultCache

    cache = ResultCache(tmp_path)
    settings = {"n_obs": 100, "train": {"learning_rate": 0.003}}
    cache.store("beta1_d2/n100", {"x": 1}, key=settings)
    assert cache.load("beta1_d2/n100", key=settings) == {"x": 1}
    assert cache.load("beta1_d2/n100", key={"n_obs": 100, "train": {"learning_rate": 0.001}}) is None
    assert cache.load("missing", key=settings) is None
    cache.path("beta1_d2/n100").write_text("{ truncated")
    assert cache.load("beta1_d2/n100", key=settings) is None


def _args(sweep, *argv):
    return sweep.build_parser().parse_args(list(argv))


def test_width_follows_theorem_2_and_tops_out_at_max_width(sweep):
    args = _args(sweep, "--max-width", "64")
    grid = sweep.geometric_grid(500, 16000, 6)
    assert grid == [500, 1000, 2000, 4000, 8000, 16000]
    slow = sweep.schedule_widths(sweep.RateConfig(1.0, 8), grid, args)
    fast = sweep.schedule_widths(sweep.RateConfig(math.inf, 2), grid, args)
    for widths in (slow, fast):
        values = [widths[n] for n in grid]
        assert values == sorted(values) and values[-1] == 64
    # W ∝ |Ω|^{d/(2β+d)} log|Ω| grows far faster at β=1, d=8 than log|Ω| at β=∞.
    assert slow[500] < fast[500]
    fixed = sweep.schedule_widths(sweep.RateConfig(1.0, 8), grid,
                                  _args(sweep, "--fixed-width", "20"))
    assert set(fixed.values()) == {20}


@given(width=st.integers(1, 500), layers=st.integers(1, 4), d_in=st.integers(1, 60),
       p=st.integers(1, 40))
def test_width_for_params_inverts_the_parameter_count(sweep, width, layers, d_in, p):
    count = sweep.params_per_tower(width, layers, d_in, p)
    assert sweep.width_for_params(count, layers, d_in, p) == pytest.approx(width, abs=1e-6)


def test_configurations_parse_and_bad_ones_are_named(sweep):
    cfgs = sweep.parse_configs("inf:2, 1:2,0.5:8")
    assert [(c.beta, c.d) for c in cfgs] == [(math.inf, 2), (1.0, 2), (0.5, 8)]
    assert [round(c.predicted, 3) for c in cfgs] == [1.0, 0.5, 0.111]
    for bad in ("1-2", "0:2", "1:0", "x:2", ""):
        with pytest.raises(ValueError, match="--configs"):
            sweep.parse_configs(bad)
    with pytest.raises(ValueError, match="grid"):
        sweep.geometric_grid(500, 400, 6)


def test_help_lists_the_flags(sweep, capsys):
    with pytest.raises(SystemExit) as info:
        sweep.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--configs", "--grid", "--reps", "--seed", "--out", "--fresh", "--quick",
                 "--fixed-width", "--max-width"):
        assert flag in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--configs", "1:x"], "--configs"),
        (["--grid", "100"], "--grid"),
        (["--reps", "0"], "--reps"),
        (["--fixed-width", "0"], "--fixed-width"),
        (["--configs", "1:40"], "--ambient-dim"),
    ],
)
def test_bad_flags_exit_with_a_message(sweep, capsys, tmp_path, argv, message):
    with pytest.raises(SystemExit) as info:
        sweep.main([*argv, "--out", str(tmp_path)])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_d_ordering_reports_the_order_of_measured_rates(sweep):
    def res(d, a, lo, hi):
        fit = {"exponent": a, "ci_low": lo, "ci_high": hi}
        return {"beta": 1.0, "d": d, "fits": {"plain": fit}}

    line = sweep.d_ordering([res(2, 0.6, 0.5, 0.7), res(8, 0.1, 0.0, 0.2)])[0]
    assert "smaller d is faster" in line and "disjoint" in line
    line = sweep.d_ordering([res(2, 0.1, 0.0, 0.2), res(8, 0.15, 0.0, 0.3)])[0]
    assert "NOT monotone" in line and "overlap" in line
    assert np.isfinite(sweep.RateConfig(0.5, 3).predicted)


def test_sequential_replications_match_the_vmapped_ones(sweep, tmp_path):
    tiny = ["--configs", "1:1", "--grid", "100", "200", "--reps", "2", "--fixed-width", "4",
            "--max-epochs", "10", "--mc-size", "50", "--no-progress"]
    together = sweep.main([*tiny, "--out", str(tmp_path / "v")])
    alone = sweep.main([*tiny, "--out", str(tmp_path / "s"), "--replications", "sequential"])
    for p, q in zip(together[0]["points"], alone[0]["points"]):
        for a, b in zip(p["reps"], q["reps"]):
            assert a["best_epoch"] == b["best_epoch"]
            assert a["excess_risk"] == pytest.approx(b["excess_risk"], rel=1e-3)
