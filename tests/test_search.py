"""The widening hyperparameter search: it finds optima outside the grid it starts from, says
why each choice is final, and scores each point once."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttm_jax.search import step_beyond, widening_search

LIMITS = {"k": (1, 1000), "reg": (0.0, 50.0), "lr": (1e-4, 0.1)}


@given(st.integers(min_value=1, max_value=300), st.integers(min_value=0, max_value=5))
def test_an_integer_optimum_is_found_wherever_it_sits_relative_to_the_start(opt, start):
    grid = {"k": [5 + 10 * start, 10 + 10 * start, 15 + 10 * start]}
    res = widening_search(lambda p: (p["k"] - opt) ** 2, grid, limits=LIMITS, integer={"k"},
                          max_rounds=50)
    # The grid's spacing past an edge is geometric (ratio ≥ 1.5 at the edge) or
    # arithmetic, so the search brackets the optimum and walks to the best grid value.
    tried = sorted({p["k"] for p, _ in res.trials})
    assert abs(res.best["k"] - opt) == min(abs(k - opt) for k in tried)
    assert res.settled["k"] in ("interior", "limit")
    if res.settled["k"] == "interior":
        assert tried[0] < res.best["k"] < tried[-1]


def test_a_log_spaced_penalty_is_widened_geometrically_until_interior():
    # Minimum at reg = 2.5, far above a grid that stops at 0.1.
    res = widening_search(lambda p: (math.log10(p["reg"]) - math.log10(2.5)) ** 2,
                          {"reg": [0.001, 0.01, 0.1]}, limits=LIMITS)
    assert res.best["reg"] == pytest.approx(1.0)  # the decade grid's closest point to 2.5
    assert res.settled == {"reg": "interior"}
    assert sorted({round(p["reg"], 6) for p, _ in res.trials}) == [0.001, 0.01, 0.1, 1.0, 10.0]


def test_a_choice_at_a_natural_limit_is_settled_not_widened():
    res = widening_search(lambda p: p["reg"], {"reg": [0.0, 0.1, 1.0]}, limits=LIMITS)
    assert res.best == {"reg": 0.0} and res.settled == {"reg": "limit"}


def test_an_optimum_left_on_an_edge_is_reported_as_unsettled():
    # No widening rounds: the grid's product only, whose best sits on its upper edge.
    res = widening_search(lambda p: -p["k"], {"k": [1, 2, 3]}, limits=LIMITS, integer={"k"},
                          max_rounds=0)
    assert res.settled == {"k": "rounds"} and not res.interior


def test_two_parameters_in_stages_reach_the_joint_optimum_and_score_each_point_once():
    calls = []

    def bowl(p):
        calls.append(tuple(sorted(p.items())))
        return (p["k"] - 40) ** 2 / 100 + (np.log10(p["lr"]) + 2) ** 2

    res = widening_search(bowl, [{"k": [5, 10, 20]}, {"lr": [1e-4, 1e-3]}], limits=LIMITS,
                          integer={"k"})
    assert res.best == {"k": 40, "lr": pytest.approx(1e-2)}
    assert res.settled == {"k": "interior", "lr": "interior"} and res.interior
    assert len(calls) == len(set(calls)) == len(res.trials)
    assert res.score == pytest.approx(0.0)


def test_a_fixed_parameter_is_passed_through_and_not_searched():
    res = widening_search(lambda p: (p["k"] - 2) ** 2 + p["lr"], {"k": [1, 2, 5], "lr": [0.01]},
                          limits=LIMITS, integer={"k"})
    assert res.best == {"k": 2, "lr": 0.01} and set(res.settled) == {"k"}


@pytest.mark.parametrize("grid, word", [({}, "at least one"), ({"k": []}, "at least one"),
                                        ({"depth": [1, 2]}, "natural limits")])
def test_bad_grids_are_refused_naming_the_problem(grid, word):
    with pytest.raises(ValueError, match=word):
        widening_search(lambda p: 0.0, grid, limits=LIMITS)


@pytest.mark.parametrize("values, upward, integer, expected", [
    ([0.01, 0.1], True, False, 1.0),
    ([0.01, 0.1], False, False, 0.001),
    ([40, 45, 50], True, True, 55),      # arithmetic: the last ratio is under 1.5
    ([10, 30, 100], True, True, 333),    # geometric
    ([20, 30], False, True, 13),         # geometric at a ratio of 1.5
    ([0.0, 0.05], True, False, 0.1),     # from zero: arithmetic
    ([30, 40], True, True, 50),
    ([400, 800], True, True, 1000),      # clipped to the limit
])
def test_step_beyond_keeps_the_grids_own_spacing(values, upward, integer, expected):
    limits = LIMITS["k"] if integer else LIMITS["reg"]
    assert step_beyond(values, upward, limits, integer) == pytest.approx(expected)


def test_a_competitor_tuned_on_a_hold_out_scores_each_candidate_by_its_hold_out_rmse():
    pytest.importorskip("surprise")
    from ttm_jax import make_synthetic, random_split
    from ttm_jax.baselines import fit_predict_baseline, tune_baseline

    data, _ = make_synthetic(60, 50, 1500, seed=0)
    split = random_split(data, 0.2, seed=0)
    res = tune_baseline("knn", split.train, {"k": [2, 4, 8]}, validation=split.test, seed=0)
    for point, rmse in res.trials:
        pred = fit_predict_baseline("knn", split.train, split.test, params={"k": point["k"]},
                                    seed=0).predictions
        truth = split.test.ratings.astype(np.float64)
        assert rmse == pytest.approx(np.sqrt(np.mean((pred - truth) ** 2)))
    assert res.rmse == min(r for _, r in res.trials)
    assert res.params["k"] == min(res.trials, key=lambda t: t[1])[0]["k"]
    assert res.settled["k"] in ("interior", "limit")


@pytest.mark.parametrize("kwargs", [{}, {"folds": 3, "validation": "both"}])
def test_a_competitor_is_tuned_by_exactly_one_of_cv_and_a_hold_out(kwargs):
    pytest.importorskip("surprise")
    from ttm_jax import make_synthetic
    from ttm_jax.baselines import tune_baseline

    data, _ = make_synthetic(20, 20, 200, seed=0)
    if kwargs.get("validation") == "both":
        kwargs = {**kwargs, "validation": data}
    with pytest.raises(ValueError, match="exactly one"):
        tune_baseline("knn", data, {"k": [2, 4]}, seed=0, **kwargs)


def test_a_competitor_parameter_without_natural_limits_is_refused_before_any_fit(monkeypatch):
    pytest.importorskip("surprise")
    from ttm_jax import baselines, make_synthetic

    data, _ = make_synthetic(20, 20, 200, seed=0)
    monkeypatch.setattr(baselines, "fit_predict_baseline",
                        lambda *a, **k: pytest.fail("a candidate was fitted"))
    with pytest.raises(ValueError, match=r"\['sim_options'\] can be searched only"):
        baselines.tune_baseline("knn", data, {"sim_options": [1, 2]}, validation=data, seed=0)


def test_one_parameter_per_stage_started_at_the_optimum_costs_its_neighbours_and_itself():
    def bowl(p):
        return sum((math.log2(p[k]) - math.log2(v)) ** 2
                   for k, v in {"k": 20, "reg": 0.1, "lr": 0.01}.items())

    res = widening_search(bowl, [{"k": [10, 20, 40]}, {"reg": [0.05, 0.1, 0.2]},
                                 {"lr": [0.005, 0.01, 0.02]}], limits=LIMITS, integer={"k"})
    assert res.best == {"k": 20, "reg": 0.1, "lr": 0.01} and res.interior
    assert len(res.trials) == 1 + 2 * 3


class _Interrupted(Exception):
    pass


@given(st.integers(min_value=0, max_value=30))
def test_a_search_interrupted_and_run_again_with_its_memo_ends_as_one_uninterrupted(after):
    def bowl(p):
        return (math.log2(p["k"]) - math.log2(23)) ** 2 + (math.log10(p["reg"]) + 1.3) ** 2

    grid = [{"k": [2, 4, 8]}, {"reg": [1.0, 3.0, 10.0]}]
    whole = widening_search(bowl, grid, limits=LIMITS, integer={"k"})

    memo, calls = {}, []

    def killed_after(p):
        if len(calls) == after:
            raise _Interrupted  # the process killed part-way through a fit
        calls.append(p)
        return bowl(p)

    try:
        widening_search(killed_after, grid, limits=LIMITS, integer={"k"}, memo=memo)
    except _Interrupted:
        pass
    scored_before = len(memo)
    assert scored_before == min(after, len(whole.trials))

    rerun_calls = []
    res = widening_search(lambda p: rerun_calls.append(p) or bowl(p), grid, limits=LIMITS,
                          integer={"k"}, memo=memo)
    assert res == whole
    # Only the points the first run never reached are fitted again.
    assert [p for p, _ in whole.trials[scored_before:]] == rerun_calls


def test_a_memo_that_is_not_a_mutable_mapping_is_refused_before_any_score():
    with pytest.raises(TypeError, match="memo: a mutable mapping"):
        widening_search(lambda p: pytest.fail("scored"), {"k": [1, 2]}, limits=LIMITS,
                        memo=[("k", 1.0)])
