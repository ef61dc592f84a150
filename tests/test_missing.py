"""The missing-rating term (``TrainConfig.missing_weight``, Steck 2010): unrated pairs count
as ratings ``r_m`` of weight ``w_m``. Its step is a weighted squared error on the drawn
pairs, in every tower mode; it leaves the observed minibatches as they were; it pulls
unrated pairs towards ``r_m``; and bad values are refused by name."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ttm_jax as ttm
from ttm_jax import ModelConfig, RatingData, TrainConfig
from ttm_jax.checks import InvalidArgument
from ttm_jax.training import init_train_state, make_train_chunk, make_train_step
from ttm_jax.training.step import Batch, Missing, Tables

HYBRID = ModelConfig(hidden=(5,), embedding_dim=3, user_ids=True, item_ids=True)


def small_data(seed=0, n_users=30, n_items=20, density=0.3):
    rng = np.random.default_rng(seed)
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    xu, xi = rng.random((n_users, 3)), rng.random((n_items, 2))
    r = 3 + xu[u, 0] - xi[i, 1] + rng.normal(0, 0.5, u.size)
    return RatingData(xu, xi, u, i, r)


def one_step(config: TrainConfig, batch: Batch, mode: str):
    data = small_data()
    model = ttm.init_model(HYBRID, data, key=jax.random.key(0))
    graphdef, state = init_train_state(model, config, 1)
    tables = Tables(jnp.asarray(data.user_features), jnp.asarray(data.item_features))
    after, mse = make_train_step(graphdef, config, mode, 1)(state, tables, batch)
    return after, float(mse)


def ids(*values):
    return jnp.array(values, jnp.int32)


@pytest.mark.parametrize("mode,updates", [("entity", "dense"), ("rating", "dense"),
                                          ("rating", "rows")])
def test_the_term_is_a_squared_error_on_the_drawn_pairs_at_their_weight(mode, updates):
    # With weight 1 the loss is mean_obs + mean_missing = 2 × the mean over the joined
    # pairs, so plain SGD at step η equals SGD at 2η on one batch holding both, the missing
    # pairs rated r_m; the reported MSE is the observed pairs' alone.
    r_m = 1.5
    observed = Batch(ids(3, 3, 7), ids(0, 1, 1), jnp.array([5.0, 1.0, 2.0], jnp.float32),
                     user_dropped=jnp.array([False, False, True]))
    drawn = Missing(ids(4, 3, 9), ids(2, 0, 5), jnp.float32(1.0))
    joined = Batch(ids(3, 3, 7, 4, 3, 9), ids(0, 1, 1, 2, 0, 5),
                   jnp.array([5.0, 1.0, 2.0, r_m, r_m, r_m], jnp.float32),
                   user_dropped=jnp.array([False, False, True, False, False, False]))
    sgd = TrainConfig(optimizer="sgd", learning_rate=1e-2, decay_rate=1.0, penalty="none",
                      missing_weight=0.5, missing_rating=r_m, id_updates=updates)
    with_term, mse = one_step(sgd, observed._replace(missing=drawn), mode)
    as_one_batch, _ = one_step(sgd.replace(learning_rate=2e-2), joined, mode)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                           with_term.params, as_one_batch.params)
    _, observed_mse = one_step(sgd, observed, mode)
    assert mse == pytest.approx(observed_mse, rel=1e-6)
    # Weight 0: the observed pairs' step, whatever was drawn.
    zero, _ = one_step(sgd, observed._replace(missing=drawn._replace(weight=jnp.float32(0))),
                       mode)
    plain, _ = one_step(sgd, observed, mode)
    # float32 to a few ulps: XLA may fuse the two graphs differently, and how it
    # vectorises a reduction depends on the CPU (on one AMD EPYC sandbox a cancelling
    # sum came out 1.7e-6 relative apart, 1e-10 absolute).
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                           zero.params, plain.params)


def test_the_observed_minibatches_are_those_of_a_run_without_the_term():
    # The missing pairs come from their own random streams: a negligible weight trains
    # exactly as no term at all, so turning the term on changes only what it adds.
    data = small_data()
    model = ttm.init_model(HYBRID, data, key=jax.random.key(0))
    cfg = TrainConfig(optimizer="adam", learning_rate=1e-2, batch_size=32, max_epochs=6,
                      eval_every_epochs=2, user_id_dropout=0.2)
    base = ttm.fit(model, data, data, cfg, key=jax.random.key(3), progress=False)
    tiny = ttm.fit(model, data, data, cfg.replace(missing_weight=1e-12, missing_rating=1.0),
                   key=jax.random.key(3), progress=False)
    np.testing.assert_allclose(tiny.history.train_mse, base.history.train_mse, rtol=1e-5)
    np.testing.assert_allclose(tiny.history.val_rmse, base.history.val_rmse, rtol=1e-5)


def test_the_term_pulls_unrated_pairs_towards_the_missing_rating_and_is_deterministic():
    data = small_data(density=0.2)
    rated = np.zeros((data.n_users, data.n_items), bool)
    rated[data.user_ids, data.item_ids] = True
    model = ttm.init_model(HYBRID, data, key=jax.random.key(0))
    cfg = TrainConfig(optimizer="adam", learning_rate=2e-2, batch_size=64, max_epochs=60,
                      eval_every_epochs=10, penalty_weight=1e-4)

    def unrated_mean(config):
        fitted = ttm.fit(model, data, None, config, key=jax.random.key(1), progress=False)
        scores = np.asarray(ttm.predict_pairs(
            fitted.model, data.user_features, data.item_features,
            *np.nonzero(~rated)))
        return float(scores.mean()), fitted

    without, _ = unrated_mean(cfg)
    pulled, first = unrated_mean(cfg.replace(missing_weight=0.5, missing_rating=0.0))
    again, second = unrated_mean(cfg.replace(missing_weight=0.5, missing_rating=0.0))
    assert without > 2.5 and pulled < without - 1.0
    assert pulled == again
    np.testing.assert_array_equal(first.history.train_mse, second.history.train_mse)


@settings(max_examples=25)
@given(field=st.sampled_from(["missing_weight", "missing_rating"]),
       value=st.one_of(st.text(max_size=3), st.booleans(), st.none(),
                       st.sampled_from([math.nan, math.inf, -math.inf])))
def test_bad_missing_term_values_are_refused_by_name(field, value):
    with pytest.raises(InvalidArgument, match=field):
        TrainConfig(**{field: value})


@given(weight=st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False))
def test_a_negative_missing_weight_is_refused(weight):
    with pytest.raises(InvalidArgument, match="missing_weight"):
        TrainConfig(missing_weight=weight)



def test_a_chunk_with_the_term_compiles_once():
    # The drawn pairs and their weight are built inside the scan from static shapes, so
    # chunk after chunk (and another data set of the same shapes) reuses one compilation.
    data = small_data()
    model = ttm.init_model(HYBRID, data, key=jax.random.key(0))
    config = TrainConfig(optimizer="adam", batch_size=32, missing_weight=0.2, missing_rating=1.0)
    graphdef, state = init_train_state(model, config, 5)
    chunk = make_train_chunk(graphdef, config, "entity", 5, 10)
    tables = Tables(jnp.asarray(data.user_features), jnp.asarray(data.item_features))
    train = Batch(jnp.asarray(data.user_ids), jnp.asarray(data.item_ids),
                  jnp.asarray(data.ratings))
    states = jax.tree_util.tree_map(lambda x: x[None], state)
    for k in range(3):
        states, mse = chunk(states, tables, train, jax.random.key_data(jax.random.key(k))[None])
    assert chunk._cache_size() == 1 and np.isfinite(np.asarray(mse)).all()
