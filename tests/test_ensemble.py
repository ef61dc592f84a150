"""Replications trained together under vmap match the same seeds trained alone."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx

from ttm_jax import ModelConfig, TrainConfig, fit, init_model
from ttm_jax.ensemble import fit_ensemble
from ttm_jax.holder import make_holder_synthetic

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


def test_a_vmapped_replication_equals_the_same_seed_trained_alone():
    models, trains, vals, keys = _replications()
    # Patience short enough that replications stop at different checks, so the
    # per-replication freezing of the best parameters is exercised.
    config = TrainConfig(batch_size=64, max_epochs=40, eval_every_epochs=2, patience=3,
                         learning_rate=1e-2, penalty_weight=1e-4)
    together = fit_ensemble(models, trains, vals, config, keys=keys, progress=False)
    for k in range(len(models)):
        alone = fit(models[k], trains[k], vals[k], config, key=keys[k], progress=False)
        assert together.best_epoch[k] == alone.best_epoch
        assert together.best_val_rmse[k] == pytest.approx(alone.best_val_rmse, rel=1e-4)
        for a, b in zip(_params(together.models[k]), _params(alone.model)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)
    assert together.history.val_rmse.shape == (len(together.history.epoch), 2)
    assert not together.diverged.any()
    assert together.tower_mode == "rating"


def test_without_validation_every_replication_trains_to_the_budget():
    models, trains, _, keys = _replications(n=200, reps=3)
    config = TrainConfig(batch_size=64, max_epochs=6, eval_every_epochs=2)
    res = fit_ensemble(models, trains, None, config, keys=keys, progress=False)
    assert res.stop_reason == "max_epochs" and res.epochs_run == 6
    np.testing.assert_array_equal(res.best_epoch, [6, 6, 6])
    assert np.isnan(res.best_val_rmse).all()
    # The inputs are not modified.
    assert not np.allclose(np.asarray(_params(res.models[0])[0]),
                           np.asarray(_params(models[0])[0]))


def test_a_budget_that_checks_do_not_divide_is_trained_exactly():
    models, trains, _, keys = _replications(n=200, reps=2)
    res = fit_ensemble(models, trains, None, TrainConfig(batch_size=64, max_epochs=5,
                                                         eval_every_epochs=2),
                       keys=keys, progress=False)
    assert res.epochs_run == 5
    np.testing.assert_array_equal(res.history.epoch, [2, 4, 5])


def test_mismatched_inputs_are_named():
    models, trains, vals, keys = _replications(n=200)
    config = TrainConfig(max_epochs=1)
    with pytest.raises(ValueError, match="models is empty"):
        fit_ensemble([], [], None, config, keys=[])
    with pytest.raises(ValueError, match="one entry per replication"):
        fit_ensemble(models, trains[:1], None, config, keys=keys)
    other, _ = make_holder_synthetic(300, smoothness=1.0, intrinsic_dim=2, ambient_dim=4, seed=9)
    with pytest.raises(ValueError, match=r"trains\[1\]"):
        fit_ensemble(models, [trains[0], other], None, config, keys=keys)
    wide = init_model(ModelConfig(hidden=(9, 9), embedding_dim=3), trains[1],
                      key=jax.random.key(0))
    with pytest.raises(ValueError, match="different architecture"):
        fit_ensemble([models[0], wide], trains, vals, config, keys=keys)
