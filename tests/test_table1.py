"""Table 1 pieces: the λ grid trained under vmap, and the benchmark's --quick run."""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from ttm_jax import ModelConfig, TrainConfig, fit, init_model
from ttm_jax.data.holder import make_holder_synthetic
from ttm_jax.training import PAPER_LAMBDAS, fit_lambda_grid

SMALL = ModelConfig(hidden=(8, 8), embedding_dim=3)


def _problem(n=400):
    data, _ = make_holder_synthetic(n, smoothness=1.0, intrinsic_dim=2, ambient_dim=4,
                                    noise_var=0.1, seed=0, map_seed=7)
    cut = int(0.8 * n)
    train, val = data.subset(np.arange(cut)), data.subset(np.arange(cut, n))
    return init_model(SMALL, train, key=jax.random.key(3)), train, val


def _params(model):
    return jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))


def test_paper_grid_is_the_25_point_grid():
    assert PAPER_LAMBDAS.shape == (25,)
    assert PAPER_LAMBDAS[0] == pytest.approx(1e-6) and PAPER_LAMBDAS[-1] == pytest.approx(100.0)


# Patience short enough that grid points stop at different checks.
GRID_CONFIG = TrainConfig(batch_size=64, max_epochs=30, eval_every_epochs=2, patience=3,
                          learning_rate=1e-2)
GRID_LAMBDAS = [1e-5, 1e-2, 1.0, 10.0]


def test_each_vmapped_lambda_equals_fit_with_that_lambda_alone():
    model, train, val = _problem()
    config, lambdas = GRID_CONFIG, GRID_LAMBDAS
    grid = fit_lambda_grid(model, train, val, config, lambdas=lambdas, key=jax.random.key(5),
                           progress=False)
    # The two large λ stop first; the grid then drops them and trains the rest
    # as a batch of two, which must not change what the others compute.
    stopped_early = np.isnan(grid.fits.history.val_rmse[-1])
    assert stopped_early.tolist() == [False, False, True, True]
    for k, lam in enumerate(lambdas):
        alone = fit(model, train, val, config.replace(penalty_weight=lam), key=jax.random.key(5),
                    progress=False)
        assert grid.best_epoch[k] == alone.best_epoch
        assert grid.val_rmse[k] == pytest.approx(alone.best_val_rmse, rel=1e-4)
        if k == grid.best_index:
            for a, b in zip(_params(grid.model), _params(alone.model)):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)
    assert grid.best_lambda == lambdas[grid.best_index]
    assert grid.fits.history.val_rmse.shape == (len(grid.fits.history.epoch), 4)
    assert not grid.diverged.any()


def test_a_grid_trains_exactly_its_budget_when_checks_do_not_divide_it():
    model, train, val = _problem()
    grid = fit_lambda_grid(model, train, val, GRID_CONFIG.replace(max_epochs=5,
                                                                  eval_every_epochs=2),
                           lambdas=GRID_LAMBDAS, key=jax.random.key(5), progress=False)
    assert grid.epochs_run == 5
    np.testing.assert_array_equal(grid.fits.history.epoch, [0, 2, 4, 5])


def test_an_interrupted_grid_resumes_from_its_checkpoint_as_if_never_stopped(tmp_path):
    model, train, val = _problem()
    config, lambdas = GRID_CONFIG, GRID_LAMBDAS
    whole = fit_lambda_grid(model, train, val, config, lambdas=lambdas, key=jax.random.key(5),
                            progress=False)

    folder = tmp_path / "grid"
    # Stopped after 12 epochs, by which time the large λ have been dropped from the batch.
    first = fit_lambda_grid(model, train, val, config.replace(max_epochs=12), lambdas=lambdas,
                            key=jax.random.key(5), progress=False, checkpoint_dir=folder,
                            checkpoint_every=2)
    assert first.epochs_run == 12 and (folder / "metadata.json").is_file()
    resumed = fit_lambda_grid(model, train, val, config, lambdas=lambdas, key=jax.random.key(5),
                              progress=False, checkpoint_dir=folder)

    np.testing.assert_array_equal(resumed.fits.history.epoch, whole.fits.history.epoch)
    np.testing.assert_array_equal(resumed.best_epoch, whole.best_epoch)
    assert resumed.best_index == whole.best_index and resumed.stop_reason == whole.stop_reason
    if jax.default_backend() == "cpu":
        np.testing.assert_array_equal(resumed.fits.history.val_rmse, whole.fits.history.val_rmse)
        for a, b in zip(_params(resumed.model), _params(whole.model)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    else:  # GPU scatter-adds are not deterministic unless XLA is told so (docs/index.md §5)
        np.testing.assert_allclose(resumed.val_rmse, whole.val_rmse, rtol=1e-4)

    # A finished grid is read back, not trained again.
    again = fit_lambda_grid(model, train, val, config, lambdas=lambdas, key=jax.random.key(5),
                            progress=False, checkpoint_dir=folder)
    np.testing.assert_array_equal(again.val_rmse, resumed.val_rmse)
    with pytest.raises(ValueError, match="holds another run .*number of members"):
        fit_lambda_grid(model, train, val, config, lambdas=lambdas[:3], key=jax.random.key(5),
                        progress=False, checkpoint_dir=folder)


@pytest.mark.parametrize("lambdas", [[], [1e-3, -1.0], [float("nan")]])
def test_bad_lambdas_raise_naming_the_argument(lambdas):
    model, train, val = _problem(100)
    with pytest.raises(ValueError, match="lambdas"):
        fit_lambda_grid(model, train, val, TrainConfig(max_epochs=2), lambdas=lambdas,
                        key=jax.random.key(0), progress=False)


def test_a_config_where_lambda_cannot_vary_is_refused():
    model, train, val = _problem(100)
    with pytest.raises(ValueError, match="penalty='none' makes every λ identical"):
        fit_lambda_grid(model, train, val, TrainConfig(penalty="none"), lambdas=[1e-3],
                        key=jax.random.key(0))


def _count_chunks(monkeypatch):
    """The member count of every training chunk the engine runs (a λ grid runs chunks of
    several members; a refit, of one; a cached grid, none)."""
    import ttm_jax.training.engine as engine

    ran = []
    make = engine.make_train_chunk

    def counting(*args, **kwargs):
        chunk = make(*args, **kwargs)
        return lambda states, *a: ran.append(int(states.step.shape[0])) or chunk(states, *a)

    monkeypatch.setattr(engine, "make_train_chunk", counting)
    return ran


@pytest.fixture(scope="module")
def table1(load_benchmark):
    return load_benchmark("table1")


def test_quick_benchmark_writes_finite_outputs(table1, tmp_path, monkeypatch):
    table1.main(["--quick", "--out-dir", str(tmp_path / "out"),
                 "--cache", str(tmp_path / "cache"), "--no-progress"])
    out = tmp_path / "out"
    runs = json.loads((out / "table1_runs.json").read_text())
    assert runs["runs"], "no runs recorded"
    for run in runs["runs"]:
        assert math.isfinite(run["test_rmse"])
    md = (out / "table1.md").read_text()
    assert "| (200,200,20) | ours (1 rep.) |" in md and "TTM vs best competitor" in md
    assert "reduced" in md  # the smaller grids and folds are said
    assert (out / "table1.png").stat().st_size > 0
    # A second call is served from the per-run cache: nothing is trained or tuned.
    ran = _count_chunks(monkeypatch)
    monkeypatch.setattr(table1, "tune_surprise", lambda *a, **k: pytest.fail("tuned again"))
    table1.main(["--quick", "--out-dir", str(out), "--cache", str(tmp_path / "cache"),
                 "--no-progress"])
    assert ran == []
    again = json.loads((out / "table1_runs.json").read_text())["runs"]
    assert [r["test_rmse"] for r in again] == [r["test_rmse"] for r in runs["runs"]]


def test_tune_once_reuses_replication_0s_lambda_for_ttm(table1, tmp_path):
    table1.main(["--quick", "--reps", "2", "--methods", "ttm,svd", "--out-dir", str(tmp_path / "o"),
                 "--cache", str(tmp_path / "c"), "--no-progress"])
    runs = json.loads((tmp_path / "o" / "table1_runs.json").read_text())["runs"]
    ttm = {r["rep"]: r for r in runs if r["method"] == "ttm"}
    # Replication 0 ran the whole (quick) grid; replication 1 runs the protocol at its λ
    # alone, early-stopping on its own hold-out, then the warm refit on all of its train.
    assert len(ttm[0]["val_rmse"]) == len(table1.PAPER_LAMBDAS[::6])
    assert len(ttm[1]["val_rmse"]) == 1 and ttm[1]["best_lambda"] == ttm[0]["best_lambda"]
    assert ttm[0]["refit"] == ttm[1]["refit"] == "warm"
    assert ttm[1]["refit_epochs"] == math.ceil(0.05 * ttm[1]["best_epoch"])
    assert ttm[0]["test_rmse"] != ttm[0]["validated_test_rmse"]  # the refit is what is scored
    assert ttm[0]["test_rmse"] != ttm[1]["test_rmse"]  # a fresh data set per replication
    svd = {r["rep"]: r for r in runs if r["method"] == "svd"}
    assert svd[0]["params"] == svd[1]["params"]


def test_without_refit_the_early_stopped_model_is_scored(table1, tmp_path):
    table1.main(["--quick", "--methods", "ttm", "--ttm-refit", "none",
                 "--out-dir", str(tmp_path / "o"), "--cache", str(tmp_path / "c"), "--no-progress"])
    (run,) = json.loads((tmp_path / "o" / "table1_runs.json").read_text())["runs"]
    assert run["refit_epochs"] == 0 and run["test_rmse"] == run["validated_test_rmse"]


def test_a_cache_entry_is_keyed_on_every_configuration_field(table1, tmp_path, monkeypatch):
    import dataclasses

    from common import ResultCache

    plan = table1.Plan(ResultCache(tmp_path), 100, {}, 2, True, ModelConfig(), TrainConfig(),
                       (1e-3,), "warm", None, False)
    other = {int: lambda v: v + 1, float: lambda v: v * 2 + 1e-3, bool: lambda v: not v,
             str: None, tuple: lambda v: (*v, 7), type(None): lambda v: 1.0}
    for cfg_field, config in (("model_cfg", plan.model_cfg), ("train_cfg", plan.train_cfg)):
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            changed = {"activation": "relu", "optimizer": "adam", "penalty": "l1",
                       "tower_mode": "rating", "unseen_ids": "error",
                       "id_updates": "rows",
                       "id_optimizer": "rowwise_adagrad"}.get(f.name)
            if changed is None:
                changed = other[type(value)](value)
            if f.name == "proximal":
                continue  # valid only with penalty='l1'; covered by 'penalty'
            moved = plan._replace(**{cfg_field: config.replace(**{f.name: changed})})
            assert moved.key("ttm") != plan.key("ttm"), f.name
    # And end to end: a run under a changed default is computed again, not read back.
    argv = ["--quick", "--methods", "ttm", "--out-dir", str(tmp_path / "o"),
            "--cache", str(tmp_path / "c"), "--no-progress"]
    table1.main(argv)
    real = table1.TrainConfig
    monkeypatch.setattr(table1, "TrainConfig", lambda **kw: real(**kw).replace(min_delta=1e-9))
    ran = _count_chunks(monkeypatch)
    table1.main(argv)
    assert ran, "a run with another configuration was read from the cache"


def test_a_competitor_tuned_under_other_search_caps_is_not_read_back(table1, tmp_path,
                                                                     monkeypatch):
    from common import ResultCache

    plan = table1.Plan(ResultCache(tmp_path), 100, {"svd": {"n_factors": [5, 20]}}, 2, True,
                       ModelConfig(), TrainConfig(), (1e-3,), "warm", None, False)
    # The committed cache was made under today's caps, and its keys do not name them.
    assert "limits" not in plan.key("svd")
    capped = dict(table1.LIMITS, n_factors=(1, 200))
    monkeypatch.setattr(table1, "LIMITS", capped)
    assert plan.key("svd")["limits"]["n_factors"] == [1, 200]


@pytest.mark.parametrize("tune_once", [True, False], ids=["tune-once", "per-replication"])
def test_a_ttm_run_cut_off_before_its_result_is_cached_resumes_from_its_checkpoint(
        table1, tmp_path, monkeypatch, tune_once):
    monkeypatch.setattr(table1, "QUICK_TUNE_ONCE", tune_once)
    argv = ["--quick", "--methods", "ttm", "--out-dir", str(tmp_path / "o"),
            "--cache", str(tmp_path / "c"), "--no-progress"]

    def power_cut(*args, **kwargs):
        raise RuntimeError("power cut")

    with monkeypatch.context() as m:
        m.setattr(table1, "evaluate", power_cut)  # after both fits, before the cache write
        with pytest.raises(RuntimeError, match="power cut"):
            table1.main(argv)
    saved = list((tmp_path / "o" / "checkpoints").glob("*-ttm/holdout/metadata.json"))
    assert len(saved) == 1
    assert not list((tmp_path / "c").glob("*.json"))

    ran = _count_chunks(monkeypatch)
    table1.main(argv)
    assert ran == []  # both fits were read back from their checkpoints, not trained again
    assert not saved[0].exists()  # and the checkpoints removed once the result was cached
    assert not (tmp_path / "o" / "checkpoints").exists()  # no empty folder left either
    (run,) = json.loads((tmp_path / "o" / "table1_runs.json").read_text())["runs"]
    assert math.isfinite(run["test_rmse"])


def test_a_competitor_search_cut_off_part_way_resumes_from_its_stored_scores(
        table1, tmp_path, monkeypatch):
    pytest.importorskip("surprise")
    from surprise import model_selection

    argv = ["--quick", "--methods", "knn", "--out-dir", str(tmp_path / "o"),
            "--cache", str(tmp_path / "c"), "--no-progress"]
    cross_validate = model_selection.cross_validate  # --quick tunes by 2-fold CV
    scored = []

    def score_then_power_cut(algo, *args, **kwargs):
        if len(scored) == 2:
            raise RuntimeError("power cut")
        scored.append(algo.k)
        return cross_validate(algo, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(model_selection, "cross_validate", score_then_power_cut)
        with pytest.raises(RuntimeError, match="power cut"):
            table1.main(argv)
    (scores,) = (tmp_path / "c").glob("scores-tune-*-knn.json")
    assert len(json.loads(scores.read_text())["result"]) == 2
    assert not list((tmp_path / "c").glob("tune-*.json"))  # the tuning itself never finished

    rescored = []
    monkeypatch.setattr(model_selection, "cross_validate",
                        lambda algo, *a, **k: rescored.append(algo.k) or cross_validate(algo, *a, **k))
    table1.main(argv)
    (run,) = json.loads((tmp_path / "o" / "table1_runs.json").read_text())["runs"]
    # The two points scored before the cut are not scored again; the search ends where
    # an uninterrupted one does (its trial count includes them).
    assert set(rescored).isdisjoint(scored) and len(rescored) == run["trials"] - 2 > 0
    assert not scores.exists()  # removed once the tuning was cached


def test_stored_scores_are_reused_only_under_the_key_they_were_stored_with(table1, tmp_path):
    from common import ResultCache, StoredScores

    cache = ResultCache(tmp_path)
    key = {"protocol": 3, "grid": {"k": [5, 20]}}
    first = StoredScores(cache, "scores-x", key)
    first["[('k', 5)]"] = 1.25
    assert dict(StoredScores(cache, "scores-x", key)) == {"[('k', 5)]": 1.25}
    # Another grid, protocol or data set: the old scores are not this search's.
    assert dict(StoredScores(cache, "scores-x", {**key, "grid": {"k": [5, 10]}})) == {}


def test_a_choice_at_a_search_cap_is_scored_past_it_until_the_score_worsens(
        table1, tmp_path, monkeypatch):
    pytest.importorskip("surprise")
    from surprise import SVD
    from surprise.model_selection import KFold, cross_validate

    from ttm_jax import baselines

    # A lower cap on the step size that the quick rSVD search stops on, though a smaller
    # step is better on these 6000 ratings (fewer effective epochs overfit less).
    monkeypatch.setitem(baselines.LIMITS, "lr_all", (0.01, 0.1))
    monkeypatch.setitem(table1.QUICK_GRIDS, "svd", [{"n_factors": [5], "reg_all": [0.1]},
                                                    {"lr_all": [0.01, 0.02], "n_epochs": [10]}])
    common = ["--quick", "--methods", "svd", "--cache", str(tmp_path / "c"), "--no-progress"]
    table1.main([*common, "--out-dir", str(tmp_path / "o")])
    (tuned,) = (tmp_path / "c").glob("tune-*-svd.json")
    tuned = json.loads(tuned.read_text())["result"]
    assert tuned["params"]["lr_all"] == 0.01 and tuned["settled"] == {"lr_all": "limit"}

    (row,) = table1.main([*common, "--check-caps", "3", "--out-dir", str(tmp_path / "o")])
    assert (row["parameter"], row["cap"]) == ("lr_all", 0.01)
    # The walk halves the step while the score improves and stops at the first worse one.
    steps, scores = zip(*row["walk"])
    assert steps == (0.01, 0.005, 0.0025)[:len(steps)] and len(steps) >= 2
    assert scores[1] < scores[0] and row["binds"] and row["best"] == 0.005
    assert (row["end"] == "worse") == (scores[-1] >= scores[-2])
    # Each score past the cap is the tuning's own measure (--quick: 2-fold CV on
    # replication 0's training set), computed here directly with scikit-surprise.
    train = table1.train_test(table1.QUICK_SETTING, 0, 0, table1.QUICK_RATINGS).train
    cv = cross_validate(SVD(n_factors=5, reg_all=0.1, lr_all=0.005, n_epochs=10,
                            random_state=0), baselines.surprise_dataset(train),
                        measures=["rmse"], cv=KFold(2, random_state=0), verbose=False)
    assert scores[1] == pytest.approx(np.mean(cv["test_rmse"]), rel=1e-12)
    # The cap binds, so the replication is refitted at the better step and scored on test.
    (run,) = (tmp_path / "c").glob("s0-*-svd.json")
    assert row["table_rmse"] == [json.loads(run.read_text())["result"]["test_rmse"]]
    assert len(row["test_rmse"]) == 1 and row["test_rmse"] != row["table_rmse"]
    md = (tmp_path / "o" / "table1_caps.md").read_text()
    assert "the cap binds: best 0.005 (-0.0" in md and "(0)" in md  # replication 0 refitted

    # The report again from the cache alone: nothing fitted, the same rows; a replication
    # never refitted is left out and the row says which ones it holds.
    monkeypatch.setattr(table1, "tune_surprise", lambda *a, **k: pytest.fail("tuned"))
    monkeypatch.setattr(table1, "score_surprise", lambda *a, **k: pytest.fail("fitted"))
    again = table1.main([*common, "--check-caps", "3", "--cached-only",
                         "--out-dir", str(tmp_path / "o")])
    assert again == [row]
    more = table1.main([*common, "--check-caps", "3", "--cached-only", "--reps", "2",
                        "--out-dir", str(tmp_path / "o")])
    assert more[0]["reps"] == [0] and more[0]["test_rmse"] == row["test_rmse"]
    # --reps 0: the walk alone, no replication refitted or reported.
    (walk_only,) = table1.main([*common, "--check-caps", "3", "--cached-only", "--reps", "0",
                                "--out-dir", str(tmp_path / "o")])
    assert walk_only["walk"] == row["walk"] and walk_only["reps"] == []
    assert "| not refitted |" in (tmp_path / "o" / "table1_caps.md").read_text()

    # Refits in parallel processes (--jobs; the fits above are still forbidden in this
    # one) store what one process computes: replication 0's refit as before, and
    # replication 1's as scikit-surprise scores it here.
    (refit,) = (tmp_path / "c").glob("capfit-*")
    serial = json.loads(refit.read_text())
    refit.unlink()
    (par,) = table1.main([*common, "--check-caps", "3", "--reps", "2", "--jobs", "2",
                          "--out-dir", str(tmp_path / "o")])
    assert json.loads(refit.read_text()) == serial and par["walk"] == row["walk"]
    (second,) = (tmp_path / "c").glob("capfit-*-r1-*")
    split = table1.train_test(table1.QUICK_SETTING, 0, 1, table1.QUICK_RATINGS)
    pred = baselines.fit_predict_baseline("svd", split.train, split.test,
                                          params=serial["key"]["params"], seed=1).predictions
    assert json.loads(second.read_text())["result"] == pytest.approx(
        float(np.sqrt(np.mean((pred - split.test.ratings) ** 2))), rel=1e-12)


def test_a_walk_past_a_cap_stops_at_the_methods_natural_limit(table1):
    # rSVD's rank at n = m = 3000, still improving: 800, 1600, then full rank 3000,
    # where the model class stops growing, not 3200.
    full_rank, why = table1.natural_limit("n_factors", 1, (3000, 3000, 30))
    assert (full_rank, why) == (3000, "rank min(n, m)")
    calls = []
    walk, end = table1.walk_past_cap(400, 2.1174, +1, lambda v: calls.append(v) or 2.1 - v / 1e5,
                                     steps=10, limit=full_rank)
    assert [v for v, _ in walk] == [400, 800, 1600, 3000] == [400, *calls] and end == "limit"
    # Epochs at a lower cap of 5 halve to 2, then 1, and stop there.
    walk, end = table1.walk_past_cap(5, 1.0, -1, lambda v: 1.0 - 1 / v, steps=10,
                                     limit=table1.natural_limit("n_epochs", -1, (200, 200, 20))[0])
    assert [v for v, _ in walk] == [5, 2, 1] and end == "limit"
    # rSVD's epochs in setting 3 (the scores its walk measured): 6400 gains 8.5e-7 on
    # 3200, so the fit has stopped changing and the walk ends there, converged; so
    # does one whose last step is worse by as little.
    scores = {1600: 1.8606855, 3200: 1.8606350, 6400: 1.8606342, 12800: 1.8606342}
    walk, end = table1.walk_past_cap(800, 1.8610170, +1, scores.get, steps=10)
    assert [v for v, _ in walk] == [800, 1600, 3200, 6400] and end == "converged"
    walk, end = table1.walk_past_cap(800, 1.8610170, +1, {**scores, 6400: 1.8606355}.get, 10)
    assert [v for v, _ in walk] == [800, 1600, 3200, 6400] and end == "converged"
    # Step sizes and epochs upward have none.
    assert table1.natural_limit("lr_all", -1, (3000, 3000, 30)) == (None, None)
    assert table1.natural_limit("n_epochs", 1, (3000, 3000, 30)) == (None, None)


@settings(max_examples=200)
@given(start=st.integers(1, 64), limit=st.none() | st.integers(1, 5000),
       steps=st.integers(1, 6),
       scores=st.lists(st.floats(0.5, 2.0) | st.sampled_from([1.0, 1.0 - 5e-7, 1.0 - 2e-6]),
                       min_size=7, max_size=7))
def test_a_walk_past_a_cap_doubles_while_the_score_improves(table1, start, limit, steps, scores):
    asked = []

    def score(v):
        asked.append(v)
        return scores[len(asked)]

    walk, end = table1.walk_past_cap(start, scores[0], +1, score, steps, limit)
    values, rmse = [v for v, _ in walk], [e for _, e in walk]
    assert values[0] == start and len(walk) <= steps + 1 and values == [start, *asked]
    for a, b in zip(values, values[1:]):
        assert b == (2 * a if limit is None else min(2 * a, limit)) and b > a
    assert all(b < a for a, b in zip(rmse, rmse[1:-1]))  # every step but the last improved
    assert all(a - b >= table1.CONVERGED for a, b in zip(rmse, rmse[1:-1]))
    improving = len(walk) == 1 or rmse[-1] < rmse[-2]
    if end == "worse":
        assert not improving and rmse[-1] - rmse[-2] >= table1.CONVERGED
    elif end == "converged":
        assert abs(rmse[-2] - rmse[-1]) < table1.CONVERGED
    elif end == "limit":
        assert improving and values[-1] >= limit
    else:
        assert end == "steps" and improving and len(walk) == steps + 1
    if end != "converged" and len(walk) > 1:
        assert abs(rmse[-1] - rmse[-2]) >= table1.CONVERGED


def test_the_search_limits_are_part_of_the_cached_protocol(table1):
    from ttm_jax.baselines import LIMITS

    # The limits decide where every competitor search stops, but the cache key holds only
    # PROTOCOL_VERSION: changing them means bumping it, so that no tuning is reused.
    assert (table1.PROTOCOL_VERSION, LIMITS) == (3, {
        "n_factors": (1, 400), "reg_all": (0.0, 50.0), "lr_all": (1e-4, 0.1),
        "n_epochs": (5, 800), "k": (1, 1000), "n_cltr": (1, 100)}), (
        "ttm_jax.baselines.LIMITS changed: bump table1.PROTOCOL_VERSION (and this test)")


def test_cached_only_reports_what_is_cached_and_trains_nothing(table1, tmp_path, monkeypatch):
    common = ["--quick", "--methods", "svd,knn", "--cache", str(tmp_path / "c"), "--no-progress"]
    table1.main([*common, "--out-dir", str(tmp_path / "a")])

    def no_data(*args, **kwargs):
        raise AssertionError("a data set was generated for a report from the cache")

    monkeypatch.setattr(table1, "make_synthetic", no_data)
    table1.train_test.cache_clear()
    table1.main([*common, "--reps", "3", "--cached-only", "--out-dir", str(tmp_path / "b")])
    md = (tmp_path / "b" / "table1.md").read_text()
    assert "4 of 6 runs are not in the cache" in md
    assert "| (200,200,20) | ours (1 rep.) |" in md
    assert len(list((tmp_path / "c").glob("s0-*.json"))) == 2  # nothing new was trained


def test_other_towers_are_trained_and_cached_beside_the_defaults(table1, tmp_path):
    common = ["--quick", "--methods", "ttm", "--cache", str(tmp_path / "c"), "--no-progress"]
    table1.main([*common, "--out-dir", str(tmp_path / "a")])
    table1.main([*common, "--ttm-hidden", "8,8", "--out-dir", str(tmp_path / "b")])
    default, other = (json.loads((tmp_path / "c" / f"s0-200x200x20-r0-{m}.json").read_text())
                      for m in ("ttm", "ttm-hidden8x8"))
    assert default["key"]["model"]["hidden"] == [16] and other["key"]["model"]["hidden"] == [8, 8]
    assert "hidden=(8, 8)" in (tmp_path / "b" / "table1.md").read_text()


def test_only_what_the_flags_change_names_a_variant(table1):
    base_model, base_train = ModelConfig(), TrainConfig()
    assert table1.variant_tag(base_model, base_train, base_model, base_train) == ""
    tag = table1.variant_tag(base_model.replace(hidden=(150, 150)),
                             base_train.replace(max_epochs=4000), base_model, base_train)
    assert tag == "-hidden150x150-epochs4000"
    assert table1.variant_tag(base_model, base_train.replace(max_seconds=90.0), base_model,
                              base_train) == "-seconds90"


def test_adamw_decay_is_chosen_from_a_vmapped_grid_like_any_lambda(table1):
    data, _ = make_holder_synthetic(600, smoothness=1.0, intrinsic_dim=2, ambient_dim=4,
                                    noise_var=0.1, seed=1, map_seed=7)
    train, test = data.subset(np.arange(450)), data.subset(np.arange(450, 600))
    cfg = TrainConfig(optimizer="adamw", max_epochs=20, eval_every_epochs=5, batch_size=64)
    out = table1.score_ttm(train, test, 5, SMALL, cfg, [1e-3, 3.0])
    assert out["best_lambda"] == [1e-3, 3.0][int(np.argmin(out["val_rmse"]))]
    assert out["val_rmse"][0] != out["val_rmse"][1]
    assert math.isfinite(out["test_rmse"])
    again = table1.score_ttm(train, test, 5, SMALL, cfg, [1e-3, 3.0])
    assert {k: v for k, v in again.items() if k != "fit_seconds"} == {
        k: v for k, v in out.items() if k != "fit_seconds"}


@pytest.mark.parametrize("argv, word", [(["--settings", "10"], "--settings"),
                                        (["--methods", "ttm,foo"], "--methods"),
                                        (["--ttm-lambdas", "1e-3,x"], "--ttm-lambdas"),
                                        (["--ttm-lambdas", "-1"], "--ttm-lambdas"),
                                        (["--check-caps", "-2"], "--check-caps"),
                                        (["--reps", "0"], "--reps"),
                                        (["--check-caps", "--jobs", "0"], "--jobs"),
                                        (["--jobs", "2"], "--jobs"),
                                        (["--ttm-hidden", "150,x"], "--ttm-hidden"),
                                        (["--ttm-hidden", "150,0"], "--ttm-hidden"),
                                        (["--ttm-hidden", ""], "--ttm-hidden")])
def test_benchmark_bad_flags_raise(table1, tmp_path, argv, word):
    with pytest.raises(ValueError, match=word):
        table1.main([*argv, "--out-dir", str(tmp_path), "--cache", str(tmp_path / "c")])
