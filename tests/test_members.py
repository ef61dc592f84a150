"""One loop for every fit: a single model, member k of a replication batch and member k
of a λ grid train alike, hyperparameters vmap through the optimiser state, and a
diverging member leaves the others alone."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ttm_jax import ModelConfig, StopReason, TrainConfig, fit, fit_lambda_grid, fit_members, init_model
from ttm_jax.data import make_holder_synthetic
from ttm_jax.optim import Hyperparams

SMALL = ModelConfig(hidden=(8, 8), embedding_dim=3)


def _replications(n=400, reps=2):
    trains, vals = [], []
    for r in range(reps):
        data, _ = make_holder_synthetic(n, smoothness=1.0, intrinsic_dim=2, ambient_dim=4,
                                        noise_var=0.1, seed=r, map_seed=7)
        cut = int(0.8 * n)
        trains.append(data.subset(np.arange(cut)))
        vals.append(data.subset(np.arange(cut, n)))
    models = [init_model(SMALL, t, key=jax.random.key(10 + r)) for r, t in enumerate(trains)]
    keys = [jax.random.key(20 + r) for r in range(reps)]
    return models, trains, vals, keys


def _params(model):
    return jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))


# Patience short enough that members stop at different checks, so the per-member
# freezing of the best parameters is exercised.
CONFIG = TrainConfig(batch_size=64, max_epochs=40, eval_every_epochs=2, patience=3,
                     learning_rate=1e-2, penalty_weight=1e-4)


def test_a_single_fit_and_member_k_of_a_replication_batch_agree():
    models, trains, vals, keys = _replications(reps=3)
    together = fit_members(models, trains, vals, CONFIG, keys=keys, progress=False)
    assert together.n_members == 3
    for k in range(3):
        alone = fit(models[k], trains[k], vals[k], CONFIG, key=keys[k], progress=False)
        member = together.member(k)
        assert member.best_epoch == alone.best_epoch
        assert member.best_val_rmse == pytest.approx(alone.best_val_rmse, abs=1e-5)
        for a, b in zip(_params(member.model), _params(alone.model)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)
    assert together.history.val_rmse.shape == (len(together.history.epoch), 3)
    assert not together.diverged.any()
    assert together.tower_mode == "rating"


def test_a_single_fit_and_member_k_of_a_lambda_grid_agree():
    models, trains, vals, keys = _replications(reps=1)
    lambdas = [1e-5, 1e-3, 3e-2]
    grid = fit_lambda_grid(models[0], trains[0], vals[0], CONFIG, lambdas=lambdas, key=keys[0],
                           progress=False)
    for k, lam in enumerate(lambdas):
        alone = fit(models[0], trains[0], vals[0], CONFIG.replace(penalty_weight=lam),
                    key=keys[0], progress=False)
        assert grid.val_rmse[k] == pytest.approx(alone.best_val_rmse, abs=1e-5)
        assert grid.best_epoch[k] == alone.best_epoch
    assert grid.best_lambda == lambdas[int(np.argmin(grid.val_rmse))]
    assert grid.fits.penalty_weight.tolist() == pytest.approx(lambdas)


def test_the_same_seed_gives_the_same_batch():
    models, trains, vals, keys = _replications(reps=2)
    a, b = (fit_members(models, trains, vals, CONFIG, keys=keys, progress=False)
            for _ in range(2))
    np.testing.assert_array_equal(a.best_val_rmse, b.best_val_rmse)
    for ma, mb in zip(a.models, b.models):
        for x, y in zip(_params(ma), _params(mb)):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_adamw_decay_is_trained_as_a_vmapped_grid():
    models, trains, vals, keys = _replications(reps=1)
    config = CONFIG.replace(optimizer="adamw", max_epochs=10)
    decays = [0.0, 0.3, 3.0]
    grid = fit_lambda_grid(models[0], trains[0], vals[0], config, lambdas=decays, key=keys[0],
                           progress=False)
    for k, wd in enumerate(decays):
        alone = fit(models[0], trains[0], vals[0], config.replace(penalty_weight=wd),
                    key=keys[0], progress=False)
        assert grid.val_rmse[k] == pytest.approx(alone.best_val_rmse, abs=1e-5)
    # A decay that strong shrinks the weights: the decay really differs per member.
    norms = [sum(float(jnp.sum(jnp.square(x))) for x in _params(m)) for m in grid.fits.models]
    assert norms[0] > norms[1] > norms[2]


def test_members_may_differ_in_their_step_size():
    models, trains, vals, keys = _replications(reps=1)
    steps = [1e-3, 1e-2]
    res = fit_members([models[0]] * 2, trains[0], vals[0], CONFIG.replace(max_epochs=6),
                      keys=[keys[0]] * 2, progress=False,
                      hyperparams=[Hyperparams(np.float32(s), np.float32(1e-4)) for s in steps])
    for k, s in enumerate(steps):
        alone = fit(models[0], trains[0], vals[0], CONFIG.replace(max_epochs=6, learning_rate=s),
                    key=keys[0], progress=False)
        assert res.member(k).best_val_rmse == pytest.approx(alone.best_val_rmse, abs=1e-5)
        assert res.history.learning_rate[0, k] == pytest.approx(s)


def test_a_diverging_member_is_marked_and_the_others_train_on():
    models, trains, vals, keys = _replications(reps=1)
    config = TrainConfig(optimizer="sgd", batch_size=64, max_epochs=10, eval_every_epochs=1,
                         patience=100, penalty="none", learning_rate=1e-2)
    res = fit_members([models[0]] * 2, trains[0], vals[0], config, keys=[keys[0]] * 2,
                      progress=False,
                      hyperparams=[Hyperparams(np.float32(1e-2), np.float32(0.0)),
                                   Hyperparams(np.float32(1e3), np.float32(0.0))])
    assert res.stop_reason == (StopReason.MAX_EPOCHS, StopReason.DIVERGED)
    assert res.diverged.tolist() == [False, True]
    assert res.epochs_run[0] == 10 and res.epochs_run[1] < 10
    # The diverged member keeps its best finite parameters.
    assert all(np.isfinite(np.asarray(x)).all() for x in _params(res.models[1]))


def test_without_validation_every_member_trains_to_the_budget():
    models, trains, _, keys = _replications(n=200, reps=3)
    config = TrainConfig(batch_size=64, max_epochs=6, eval_every_epochs=2)
    res = fit_members(models, trains, None, config, keys=keys, progress=False)
    assert set(res.stop_reason) == {StopReason.MAX_EPOCHS}
    np.testing.assert_array_equal(res.epochs_run, [6, 6, 6])
    np.testing.assert_array_equal(res.best_epoch, [6, 6, 6])
    assert np.isnan(res.best_val_rmse).all()
    # The inputs are not modified.
    assert not np.allclose(np.asarray(_params(res.models[0])[0]),
                           np.asarray(_params(models[0])[0]))


def test_a_budget_that_checks_do_not_divide_is_trained_exactly():
    models, trains, _, keys = _replications(n=200, reps=2)
    res = fit_members(models, trains, None, TrainConfig(batch_size=64, max_epochs=5,
                                                        eval_every_epochs=2),
                      keys=keys, progress=False)
    np.testing.assert_array_equal(res.epochs_run, [5, 5])
    np.testing.assert_array_equal(res.history.epoch, [0, 2, 4, 5])


def test_a_lambda_grid_resumes_from_its_checkpoint(tmp_path):
    models, trains, vals, keys = _replications(reps=1)
    lambdas = [1e-4, 1e-2, 1.0]
    whole = fit_lambda_grid(models[0], trains[0], vals[0], CONFIG, lambdas=lambdas, key=keys[0],
                            progress=False)
    fit_lambda_grid(models[0], trains[0], vals[0], CONFIG.replace(max_epochs=10),
                    lambdas=lambdas, key=keys[0], progress=False, checkpoint_dir=tmp_path / "g")
    resumed = fit_lambda_grid(models[0], trains[0], vals[0], CONFIG, lambdas=lambdas, key=keys[0],
                              progress=False, checkpoint_dir=tmp_path / "g")
    np.testing.assert_array_equal(resumed.val_rmse, whole.val_rmse)
    np.testing.assert_array_equal(resumed.best_epoch, whole.best_epoch)


def test_mismatched_inputs_are_named():
    models, trains, vals, keys = _replications(n=200)
    config = TrainConfig(max_epochs=1)
    with pytest.raises(ValueError, match="models is empty"):
        fit_members([], [], None, config, keys=[])
    with pytest.raises(ValueError, match="one data set .shared. or one per member"):
        fit_members(models * 2, trains, None, config, keys=keys * 2)
    with pytest.raises(ValueError, match="one entry per member"):
        fit_members(models, trains, None, config, keys=keys[:1])
    other, _ = make_holder_synthetic(300, smoothness=1.0, intrinsic_dim=2, ambient_dim=4, seed=9)
    with pytest.raises(ValueError, match=r"trains\[1\]"):
        fit_members(models, [trains[0], other], None, config, keys=keys)
    wide = init_model(ModelConfig(hidden=(9, 9), embedding_dim=3), trains[1],
                      key=jax.random.key(0))
    with pytest.raises(ValueError, match="different architecture"):
        fit_members([models[0], wide], trains, vals, config, keys=keys)
    with pytest.raises(TypeError, match=r"keys\[0\] must be one jax.random.key"):
        fit_members(models, trains, vals, config, keys=[0, 1])
    with pytest.raises(ValueError, match="lambdas must be finite"):
        fit_lambda_grid(models[0], trains[0], vals[0], config, lambdas=[1.0, -1.0],
                        key=keys[0])
    with pytest.raises(ValueError, match="penalty='none'"):
        fit_lambda_grid(models[0], trains[0], vals[0], config.replace(penalty="none"),
                        key=keys[0])


def test_another_grid_of_the_same_size_traces_nothing_new(monkeypatch):
    import ttm_jax.training.step as step

    traces = []
    body = step._step_body

    def counted(*args):
        inner = body(*args)

        def traced_step(*a):
            traces.append(1)  # runs once per trace, never per executed step
            return inner(*a)

        return traced_step

    monkeypatch.setattr(step, "_step_body", counted)
    step._jitted_chunk.cache_clear()
    models, trains, vals, keys = _replications(reps=1)
    config = CONFIG.replace(max_epochs=6, patience=100)
    fit_lambda_grid(models[0], trains[0], vals[0], config, lambdas=[1e-4, 1e-3], key=keys[0],
                    progress=False)
    first = len(traces)
    assert first >= 1
    # Other λ, another key: the values are arrays in the state, so nothing recompiles.
    fit_lambda_grid(models[0], trains[0], vals[0], config, lambdas=[1e-2, 1e-1], key=keys[0],
                    progress=False)
    fit_lambda_grid(models[0], trains[0], vals[0], config, lambdas=[1e-2, 1e-1],
                    key=jax.random.key(99), progress=False)
    assert len(traces) == first
    step._jitted_chunk.cache_clear()
