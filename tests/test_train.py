"""The training step, the scan loop, early stopping and divergence handling."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from ttm_jax import (
    ModelConfig,
    RatingData,
    TrainConfig,
    TrainingDivergedError,
    TwoTowerRegressor,
    evaluate,
    fit,
    init_model,
    make_synthetic,
    predict_pairs,
    random_split,
)
from ttm_jax.optim import Hyperparams, make_optimizer, make_schedule, with_hyperparams
from ttm_jax.training import (
    device_arrays,
    init_train_state,
    init_train_states,
    make_train_chunk,
    make_train_step,
)

SMALL = ModelConfig(hidden=(16, 16), embedding_dim=4)


@pytest.fixture(scope="module")
def small_split():
    data, _ = make_synthetic(120, 100, 4000, intrinsic_dim=3, ambient_dim=6, coef_range=0.5,
                             noise_var=0.01, seed=0)
    return random_split(data, 0.2, 0.2, seed=0)


def _state(model, config, steps_per_epoch=1):
    return init_train_state(model, config, steps_per_epoch)


def _tables_and_batch(data: RatingData):
    return device_arrays(data)


@settings(max_examples=8)
@given(mode=st.sampled_from(["entity", "rating"]), penalty=st.sampled_from(["l2", "l1", "none"]),
       seed=st.integers(0, 2**31 - 1))
def test_a_small_step_lowers_the_training_loss_on_a_fixed_batch(small_split, mode, penalty,
                                                                   seed):
    config = TrainConfig(optimizer="sgd", learning_rate=1e-3, penalty=penalty,
                         penalty_weight=1e-4)
    model = init_model(SMALL, small_split.train, key=jax.random.key(seed))
    graphdef, state = _state(model, config)
    tables, batch = _tables_and_batch(small_split.train.subset(np.arange(256)))
    step = make_train_step(graphdef, config, mode, 1)
    state1, mse0 = step(state, tables, batch)
    _, mse1 = step(state1, tables, batch)
    assert float(mse1) < float(mse0)


def test_the_jitted_step_compiles_once(small_split):
    config = TrainConfig(batch_size=64)
    model = init_model(SMALL, small_split.train, key=jax.random.key(0))
    graphdef, state = _state(model, config)
    tables, batch = _tables_and_batch(small_split.train.subset(np.arange(64)))
    step = make_train_step(graphdef, config, "entity", 1)
    for _ in range(3):
        state, _ = step(state, tables, batch)
    assert step._cache_size() == 1
    # A second fit with the same configuration reuses the compiled scan chunk, and a
    # member with another λ (held in its optimiser state) needs no new compilation.
    chunk = make_train_chunk(graphdef, config, "entity", 50, 50)
    train = _tables_and_batch(small_split.train)[1]
    states = jax.tree_util.tree_map(lambda x: x[None], state)
    for k in range(2):
        states, _ = chunk(states, tables, train, jax.random.key_data(jax.random.key(k))[None])
    other = init_train_state(init_model(SMALL, small_split.train, key=jax.random.key(1)), config,
                             1, Hyperparams(jnp.float32(1e-2), jnp.float32(0.5)))[1]
    chunk(jax.tree_util.tree_map(lambda x: x[None], other), tables, train,
          jax.random.key_data(jax.random.key(0))[None])
    assert chunk._cache_size() == 1
    assert make_train_step(graphdef, config, "entity", 1) is step
    # A fit that differs only in η_0 or λ (read from the optimiser state, not the
    # configuration) shares the compilation: a λ search compiles once.
    searched = config.replace(learning_rate=1e-2, penalty_weight=0.3)
    assert make_train_chunk(graphdef, searched, "entity", 50, 50) is chunk
    assert make_train_step(graphdef, searched, "entity", 1) is step
    untied = config.replace(id_penalty_weight=1e-4)
    assert (make_train_chunk(graphdef, untied, "entity", 50, 50)
            is make_train_chunk(graphdef, untied.replace(id_penalty_weight=0.1), "entity", 50, 50))


def test_the_loop_traces_per_fit_not_per_check(small_split, monkeypatch):
    # Between chunks the device waits for the host: a trace there (an unjitted vmap
    # of the keys' fold, say) would cost every check. Count the loop's traces of
    # fold_in, which it draws each check's keys with, for fits of 2 and of 12 checks,
    # each from empty caches.
    calls = []
    fold_in = jax.random.fold_in

    def counted(key, data):
        calls.append(1)  # runs when traced, never when a compiled program runs
        return fold_in(key, data)

    monkeypatch.setattr(jax.random, "fold_in", counted)
    model = init_model(SMALL, small_split.train, key=jax.random.key(0))
    counts = []
    for max_epochs in (2, 12):
        jax.clear_caches()
        calls.clear()
        fit(model, small_split.train, small_split.validation,
            TrainConfig(batch_size=256, max_epochs=max_epochs, eval_every_epochs=1, patience=100),
            key=jax.random.key(1), progress=False)
        counts.append(len(calls))
    assert counts[0] > 0 and counts[1] == counts[0]


def test_states_laid_out_together_are_each_models_params_and_fresh_optimiser_state(small_split):
    config = TrainConfig(optimizer="muon")
    models = [init_model(SMALL, small_split.train, key=jax.random.key(k)) for k in range(3)]
    hyper = [None, Hyperparams(jnp.float32(1e-2), jnp.float32(0.5)), None]
    _, together = init_train_states(models, config, 7, hyper)
    tx = make_optimizer(config, 7)
    for k, (model, h) in enumerate(zip(models, hyper)):
        member = jax.tree_util.tree_map(lambda x, k=k: x[k], together)
        _, params, rest = nnx.split(model, nnx.Param, ...)
        with jax.numpy_dtype_promotion("standard"):
            fresh = with_hyperparams(tx.init(params), (h or Hyperparams.of(config)).resolve(config))
        jax.tree_util.tree_map(np.testing.assert_array_equal, member.params, params)
        jax.tree_util.tree_map(np.testing.assert_array_equal, member.rest, rest)
        jax.tree_util.tree_map(np.testing.assert_array_equal, member.opt_state, fresh)
        assert int(member.step) == 0
    _, alone = init_train_state(models[1], config, 7, hyper[1])
    jax.tree_util.tree_map(np.testing.assert_array_equal, alone,
                           jax.tree_util.tree_map(lambda x: x[1], together))


def test_a_chunk_reuses_the_states_it_is_given_and_fit_leaves_the_model_alone(small_split):
    config = TrainConfig(batch_size=64, max_epochs=2, eval_every_epochs=1)
    model = init_model(SMALL, small_split.train, key=jax.random.key(0))
    before = jax.tree_util.tree_map(np.array, nnx.state(model, nnx.Param))
    graphdef, states = init_train_states([model], config, 10)
    chunk = make_train_chunk(graphdef, config, "entity", 10, 3)
    tables, train = _tables_and_batch(small_split.train)
    after, _ = chunk(states, tables, train, jax.random.key_data(jax.random.key(0))[None])
    # The old states' buffers now hold the new ones (one copy in memory, not two).
    assert all(x.is_deleted() for x in jax.tree_util.tree_leaves(states))
    assert not any(x.is_deleted() for x in jax.tree_util.tree_leaves(after))
    # fit trains copies: the caller's model is intact and usable afterwards.
    fit(model, small_split.train, small_split.validation, config, key=jax.random.key(1),
        progress=False)
    jax.tree_util.tree_map(np.testing.assert_array_equal,
                           nnx.state(model, nnx.Param), before)
    assert np.isfinite(np.asarray(model(small_split.test.user_features[:2],
                                        small_split.test.item_features[:2]))).all()


def test_entity_and_rating_modes_compute_the_same_step(small_split):
    config = TrainConfig(batch_size=128)
    model = init_model(SMALL, small_split.train, key=jax.random.key(1))
    graphdef, state = _state(model, config)
    tables, batch = _tables_and_batch(small_split.train.subset(np.arange(128)))
    a, mse_a = make_train_step(graphdef, config, "entity", 1)(state, tables, batch)
    b, mse_b = make_train_step(graphdef, config, "rating", 1)(state, tables, batch)
    np.testing.assert_allclose(mse_a, mse_b, rtol=1e-5)
    for x, y in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


def test_same_seed_gives_identical_results(small_split):
    config = TrainConfig(max_epochs=6, eval_every_epochs=2, batch_size=256)
    preds = [
        TwoTowerRegressor(SMALL, config, seed=5, progress=False)
        .fit(small_split.train, small_split.validation)
        .predict(small_split.test)
        for _ in range(2)
    ]
    other = TwoTowerRegressor(SMALL, config, seed=6, progress=False).fit(
        small_split.train, small_split.validation).predict(small_split.test)
    assert np.array_equal(preds[0], preds[1])
    assert not np.array_equal(preds[0], other)


@settings(max_examples=6)
@given(max_epochs=st.integers(1, 7), every=st.integers(1, 4))
def test_a_run_trains_exactly_max_epochs_even_when_checks_do_not_divide_it(small_split,
                                                                          max_epochs, every):
    config = TrainConfig(max_epochs=max_epochs, eval_every_epochs=every, batch_size=512,
                         patience=100)
    model = init_model(SMALL, small_split.train, key=jax.random.key(0))
    res = fit(model, small_split.train, small_split.validation, config, key=jax.random.key(1),
              progress=False)
    assert res.epochs_run == max_epochs
    # A first check at epoch 0 scores the initial model.
    expected = [0, *range(every, max_epochs, every), max_epochs]
    np.testing.assert_array_equal(res.history.epoch, expected)


def test_a_short_last_check_trains_the_steps_a_whole_check_of_that_length_would(small_split):
    # 3 epochs as one check of 3 (every=3) or as the remainder of a check of 10:
    # the same steps from the same key, so the same parameters.
    model = init_model(SMALL, small_split.train, key=jax.random.key(0))
    a, b = (fit(model, small_split.train, None, TrainConfig(max_epochs=3, eval_every_epochs=e,
                                                          batch_size=512),
                key=jax.random.key(1), progress=False) for e in (3, 10))
    for x, y in zip(jax.tree_util.tree_leaves(nnx.state(a.model, nnx.Param)),
                    jax.tree_util.tree_leaves(nnx.state(b.model, nnx.Param))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    longer = fit(model, small_split.train, None, TrainConfig(max_epochs=10, batch_size=512),
                 key=jax.random.key(1), progress=False)
    assert not np.array_equal(predict_pairs(longer.model, *_pairs(small_split.test)),
                              predict_pairs(a.model, *_pairs(small_split.test)))


def _pairs(data: RatingData):
    return data.user_features, data.item_features, data.user_ids, data.item_ids


def test_training_beats_the_mean_and_early_stopping_keeps_the_best(small_split):
    config = TrainConfig(max_epochs=400, eval_every_epochs=5, patience=4, batch_size=512,
                         learning_rate=1e-2)
    reg = TwoTowerRegressor(SMALL, config, seed=0, progress=False).fit(
        small_split.train, small_split.validation)
    res = reg.result_
    assert res.stop_reason == "early_stopping" and res.epochs_run < 400
    assert res.best_val_rmse == pytest.approx(np.nanmin(res.history.val_rmse))
    assert res.best_epoch == res.history.epoch[np.nanargmin(res.history.val_rmse)]
    # The kept model is the best one, not the last one.
    val = evaluate(reg.model_, small_split.validation).overall.rmse
    assert val == pytest.approx(res.best_val_rmse, rel=1e-4)
    baseline = np.std(small_split.test.ratings)
    assert evaluate(reg.model_, small_split.test).overall.rmse < 0.5 * baseline


def test_a_budget_cut_after_the_best_epoch_changes_nothing(small_split):
    # The schedule and the minibatch keys do not depend on the budget, early stopping
    # keeps the best checkpoint and the warm refit's length follows the best epoch: a
    # budget anywhere at or past the best epoch gives the same model to the last bit
    # (what lets RESULTS.md judge a shorter default budget fit by fit).
    config = TrainConfig(max_epochs=400, eval_every_epochs=5, patience=4, batch_size=512,
                         learning_rate=1e-2)

    def protocol(max_epochs):
        reg = TwoTowerRegressor(SMALL, config.replace(max_epochs=max_epochs), seed=0,
                                progress=False).fit(small_split.train)
        return reg.result_, reg.predict(small_split.test)

    full, full_pred = protocol(400)
    best = int(full.best_epoch)
    assert full.stop_reason == "early_stopping" and full.epochs_run > best
    cut, cut_pred = protocol(best)
    assert cut.stop_reason == "max_epochs" and cut.best_epoch == best
    np.testing.assert_array_equal(cut_pred, full_pred)
    shorter, shorter_pred = protocol(best - 5)
    assert shorter.best_epoch < best and not np.array_equal(shorter_pred, full_pred)


@pytest.mark.parametrize("mode", ["warm", "scratch"])
def test_the_regressor_refits_on_all_its_training_ratings(small_split, mode):
    config = TrainConfig(max_epochs=60, eval_every_epochs=5, patience=3, batch_size=256,
                         learning_rate=1e-2)
    train = small_split.train
    reg = TwoTowerRegressor(SMALL, config, seed=3, refit=mode, progress=False).fit(train)
    kept = reg.result_  # the early-stopped fit on 80% of train chose the epochs
    assert math.isfinite(kept.best_val_rmse)
    held_out = random_split(train, 0.2, seed=3).test  # the regressor's own hold-out
    if mode == "warm":
        # A short continuation of the kept model: 5% of its epochs, its standardisation.
        assert reg.refit_result_.epochs_run == math.ceil(0.05 * kept.best_epoch)
        np.testing.assert_array_equal(reg.model_.user_tower.mean[...],
                                      kept.model.user_tower.mean[...])
    else:
        # A whole second fit, its standardisation from all of train's users.
        assert reg.refit_result_.epochs_run == round(kept.best_epoch)
        users = np.unique(train.user_ids)
        np.testing.assert_allclose(reg.model_.user_tower.mean[...],
                                   train.user_features[users].astype(np.float64).mean(axis=0),
                                   rtol=1e-5, atol=1e-6)
    # Either way the refit learnt from the held-out ratings the kept model never saw.
    assert (evaluate(reg.model_, held_out).overall.rmse
            < evaluate(kept.model, held_out).overall.rmse)
    # Same seed, same refitted model.
    again = TwoTowerRegressor(SMALL, config, seed=3, refit=mode, progress=False).fit(train)
    np.testing.assert_array_equal(again.predict(small_split.test), reg.predict(small_split.test))


@pytest.mark.parametrize("how", ["refit='none'", "own validation set", "validation_fraction=0"])
def test_no_refit_when_switched_off_or_when_the_caller_holds_out_the_validation(
        small_split, how):
    config = TrainConfig(max_epochs=10, eval_every_epochs=5, batch_size=256)
    kwargs = dict(refit="none") if how == "refit='none'" else (
        dict(validation_fraction=0.0) if how == "validation_fraction=0" else {})
    reg = TwoTowerRegressor(SMALL, config, seed=0, progress=False, **kwargs)
    reg.fit(small_split.train, small_split.validation if how == "own validation set" else None)
    assert reg.refit_result_ is None and reg.model_ is reg.result_.model


def test_a_diverging_loss_stops_with_an_error_and_keeps_the_best_parameters(small_split):
    config = TrainConfig(optimizer="sgd", learning_rate=0.005, max_epochs=40,
                         eval_every_epochs=1, batch_size=256, penalty="none")
    model = init_model(SMALL, small_split.train, key=jax.random.key(0))
    ok = fit(model, small_split.train, small_split.validation,
             config.replace(max_epochs=2), key=jax.random.key(1), progress=False)
    assert math.isfinite(ok.best_val_rmse)
    # A step size this large blows up within a few epochs.
    reg = TwoTowerRegressor(SMALL, config.replace(learning_rate=50.0), seed=0, progress=False)
    with pytest.raises(TrainingDivergedError, match="non-finite") as info:
        reg.fit(small_split.train, small_split.validation)
    kept = info.value.result
    assert kept.stop_reason == "diverged"
    # The regressor keeps the best (finite) parameters it found.
    assert np.isfinite(reg.predict(small_split.test)).all()
    leaves = jax.tree_util.tree_leaves(nnx.state(kept.model, nnx.Param))
    assert all(bool(jnp.isfinite(x).all()) for x in leaves)


def test_a_divergence_caused_by_an_outlying_rating_points_at_the_rating(small_split):
    train = small_split.train
    ratings = train.ratings.copy()
    ratings[7] = 1e10  # a misplaced value: a smaller step size would not be the fix
    bad = RatingData(train.user_features, train.item_features, train.user_ids, train.item_ids,
                     ratings)
    model = init_model(SMALL, bad, key=jax.random.key(0))
    with pytest.raises(TrainingDivergedError,
                       match=r"rating 1e\+10 at position 7 of the training ratings is far "
                             "outside the others .*check the data"):
        fit(model, bad, None, TrainConfig.paper(max_epochs=2), key=jax.random.key(1),
            progress=False)


def test_wrong_width_features_are_rejected_by_a_fitted_regressor(small_split):
    reg = TwoTowerRegressor(SMALL, TrainConfig(max_epochs=1), seed=0, progress=False)
    reg.fit(small_split.train)
    with pytest.raises(ValueError, match=r"user tower was built for \[n, 6\]"):
        reg.user_embeddings(np.zeros((3, 7)))
    with pytest.raises(RuntimeError, match="not fitted yet"):
        TwoTowerRegressor().predict(small_split.test)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(optimizer="rmsprop"), "optimizer='rmsprop'"),
        (dict(learning_rate=0.0), "learning_rate=0.0 must be > 0"),
        (dict(batch_size=0), "batch_size=0 must be an integer >= 1"),
        (dict(batch_size=32.0), r"batch_size=32.0 must be an int, not float \(e.g. batch_size=32\)"),
        (dict(max_epochs="10"), "max_epochs='10' must be an int, not str"),
        (dict(learning_rate="1e-3"), "learning_rate='1e-3' must be a number"),
        (dict(penalty="l3"), "penalty='l3'"),
        (dict(proximal=True), "proximal=True applies to penalty='l1'"),
        (dict(proximal=1), "proximal=1 must be True or False"),
        (dict(penalty_weight=-1.0), "penalty_weight=-1.0"),
        (dict(penalty_weight=float("nan")), "penalty_weight=nan must be a finite number"),
        (dict(tower_mode="fast"), "tower_mode='fast'"),
        (dict(decay_begin_epochs=-5.0), "decay_begin_epochs=-5.0 must be >= 0"),
        (dict(learning_rate=1e-5), "min_learning_rate=0.0001 exceeds learning_rate=1e-05"),
        (dict(max_seconds=0), "max_seconds=0.0 must be > 0"),
        # Beyond JAX's 32-bit integers: out of memory or overflow deep inside JAX otherwise.
        (dict(batch_size=2**40), r"batch_size=1099511627776 must be an integer <= 2147483647"),
    ],
)
def test_bad_training_configuration_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_a_seed_that_jax_would_wrap_around_is_refused():
    # jax.random.key(2**32) is the key of 0: two "different" seeds, one run.
    with pytest.raises(ValueError, match="seed=4294967296 must be an integer <= 4294967295"):
        TwoTowerRegressor(seed=2**32)
    assert TwoTowerRegressor(seed=2**32 - 1).seed == 2**32 - 1


def test_a_constant_step_may_sit_below_the_decay_floor():
    # The floor only bounds a decaying step; a constant small step is what it says.
    assert TrainConfig(learning_rate=1e-5, decay_rate=1.0).learning_rate == 1e-5


def test_paper_recipe_is_the_papers_schedule():
    cfg = TrainConfig.paper()
    assert (cfg.optimizer, cfg.learning_rate, cfg.decay_rate, cfg.min_learning_rate) == (
        "sgd", 0.01, 0.9, 0.005)
    schedule = make_schedule(cfg, steps_per_epoch=100)
    jax.config.update("jax_numpy_dtype_promotion", "standard")  # optax schedules mix int/float
    try:
        _check_paper_schedule(schedule)
    finally:
        jax.config.update("jax_numpy_dtype_promotion", "strict")


def test_decay_begins_after_the_hold():
    cfg = TrainConfig(learning_rate=1e-2, decay_rate=0.5, decay_epochs=10, decay_begin_epochs=20,
                      min_learning_rate=1e-3)
    schedule = make_schedule(cfg, steps_per_epoch=4)
    with jax.numpy_dtype_promotion("standard"):
        lr = {e: float(schedule(4 * e)) for e in (0, 20, 30, 40, 200)}
    assert lr[0] == lr[20] == pytest.approx(1e-2)  # held at the full step
    assert lr[30] == pytest.approx(5e-3) and lr[40] == pytest.approx(2.5e-3)
    assert lr[200] == pytest.approx(1e-3)  # the floor


def _check_paper_schedule(schedule):
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(100)) == pytest.approx(0.009)
    assert float(schedule(100 * 50)) == pytest.approx(0.005)  # the floor


def test_stronger_proximal_l1_gives_fewer_effective_parameters(small_split):
    from theory import effective_params

    counts = []
    for lam in (0.0, 1e-2, 1e-1):
        # With SGD the soft-threshold step is the exact proximal gradient step.
        config = TrainConfig(optimizer="sgd", penalty="l1", proximal=lam > 0, penalty_weight=lam,
                             max_epochs=30, eval_every_epochs=5, batch_size=256,
                             learning_rate=5e-2)
        reg = TwoTowerRegressor(SMALL, config, seed=0, progress=False)
        reg.fit(small_split.train, small_split.validation)
        counts.append(effective_params(reg.model_).total)
    assert counts[0] == 904  # no exact zeros without the proximal step
    assert counts[0] > counts[1] > counts[2]


def test_adam_with_proximal_l1_reaches_exact_zeros_and_fewer_as_lambda_grows(small_split):
    from theory import effective_params

    counts = []
    for lam in (0.0, 3e-3, 3e-2):
        # The threshold is preconditioned like Adam's step (ttm_jax.optim.proximal_l1),
        # so Adam reaches exact zeros as SGD does.
        config = TrainConfig(optimizer="adam", penalty="l1", proximal=lam > 0, penalty_weight=lam,
                             max_epochs=30, eval_every_epochs=5, batch_size=256,
                             learning_rate=1e-2)
        reg = TwoTowerRegressor(SMALL, config, seed=0, progress=False)
        reg.fit(small_split.train, small_split.validation)
        counts.append(effective_params(reg.model_).total)
    assert counts[0] == 904
    assert counts[0] > counts[1] > counts[2]


def test_early_stopping_never_keeps_a_model_worse_than_the_initial_one(small_split):
    # A step size this small barely moves the model; with a step this large the
    # first epochs make it worse. Either way the check at epoch 0 is a candidate.
    model = init_model(SMALL, small_split.train, key=jax.random.key(0))
    res = fit(model, small_split.train, small_split.validation,
              TrainConfig(optimizer="sgd", learning_rate=3.0, max_epochs=4, eval_every_epochs=1,
                          batch_size=256, patience=2, grad_clip=1e3),
              key=jax.random.key(1), progress=False)
    initial = evaluate(model, small_split.validation).overall.rmse
    assert res.history.epoch[0] == 0
    assert res.history.val_rmse[0] == pytest.approx(initial, rel=1e-5)
    assert res.best_val_rmse <= initial + 1e-6
