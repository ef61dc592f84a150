"""Id embedding tables (SPEC §1's hybrid model): the table equals a dense first layer on
one-hot ids, unseen ids read the unknown row, id dropout and the id penalty, and every
path that scores: the estimator, save/load, recommend, export, bad ids refused."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import ttm_jax as ttm
from ttm_jax import ModelConfig, RatingData, TrainConfig
from ttm_jax.checks import InvalidArgument
from ttm_jax.model import build_model, penalty, split_penalty, with_seen_ids
from ttm_jax.serving import check_entity_ids
from ttm_jax.training import init_train_state, make_train_step
from ttm_jax.training.step import Batch, Tables

ADAM = TrainConfig(optimizer="adam", learning_rate=1e-2, batch_size=64, max_epochs=4,
                   eval_every_epochs=2, penalty_weight=1e-3)


def small_data(seed=0, n_users=30, n_items=20, density=0.5, d_u=3, d_i=2):
    rng = np.random.default_rng(seed)
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    xu, xi = rng.random((n_users, d_u)), rng.random((n_items, d_i))
    r = 3 + xu[u, 0] - xi[i, 1] + rng.normal(0, 0.5, u.size)
    return RatingData(xu, xi, u, i, r)


def one_hot(data: RatingData) -> RatingData:
    """``data`` with ``np.eye`` blocks appended: the old dense way to give towers ids."""
    return RatingData(np.hstack([data.user_features, np.eye(data.n_users)]),
                      np.hstack([data.item_features, np.eye(data.n_items)]),
                      data.user_ids, data.item_ids, data.ratings)


def dense_twin(model: ttm.TwoTower, config: ModelConfig) -> ttm.TwoTower:
    """A model on one-hot ids whose first kernels are ``[A; E]``: the same function."""
    u, i = model.user_tower, model.item_tower
    twin = build_model(config.replace(user_ids=False, item_ids=False),
                       u.in_features + u.n_ids, i.in_features + i.n_ids)
    for dense, tower in ((twin.user_tower, u), (twin.item_tower, i)):
        for k, (a, b) in enumerate(zip(dense.layers, tower.layers)):
            kernel = b.kernel[...]
            if k == 0:  # the id rows of the first kernel, without the unknown row
                kernel = jnp.concatenate([kernel, tower.id_table[...][:-1]])
            a.kernel[...] = kernel
            a.bias[...] = b.bias[...]
    twin.offset[...] = model.offset[...]
    return twin


@pytest.mark.parametrize("hidden", [(), (8,), (8, 4)])
def test_an_id_table_is_a_dense_first_layer_on_one_hot_ids(hidden):
    data = small_data()
    config = ModelConfig(hidden=hidden, embedding_dim=5, standardize=False, user_ids=True,
                         item_ids=True)
    model = ttm.init_model(config, data, key=jax.random.key(0))
    twin = dense_twin(model, config)
    dense_data = one_hot(data)
    pairs = (data.user_ids, data.item_ids)
    np.testing.assert_allclose(
        ttm.predict_pairs(model, data.user_features, data.item_features, *pairs),
        ttm.predict_pairs(twin, dense_data.user_features, dense_data.item_features, *pairs),
        rtol=1e-5, atol=1e-5)
    # Training from equal functions stays equal: the gradient of the id rows of a dense
    # kernel is the table's, and the L2 penalty is the same sum of squares.
    config_t = ADAM.replace(max_epochs=6)
    one = ttm.fit(model, data, None, config_t, key=jax.random.key(1), progress=False)
    two = ttm.fit(twin, dense_data, None, config_t, key=jax.random.key(1), progress=False)
    np.testing.assert_allclose(
        ttm.predict_pairs(one.model, data.user_features, data.item_features, *pairs),
        ttm.predict_pairs(two.model, dense_data.user_features, dense_data.item_features, *pairs),
        rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(one.history.train_mse, two.history.train_mse, rtol=1e-4)


def test_the_table_is_sized_by_the_data_and_its_memory_is_linear():
    data = small_data(n_users=30, n_items=20)
    model = ttm.init_model(ModelConfig(hidden=(16,), embedding_dim=4, user_ids=True),
                           data, key=jax.random.key(0))
    assert model.user_tower.id_table[...].shape == (31, 16)  # rows + unknown, first width
    assert model.item_tower.n_ids == 0 and not hasattr(model.item_tower, "id_table")
    assert model.describe()["user_tower"]["ids"] == 30
    np.testing.assert_array_equal(model.user_tower.id_table[...][-1], 0.0)
    # No id table: the covariate-only model, unchanged (same initial weights).
    plain = ttm.init_model(ModelConfig(hidden=(16,), embedding_dim=4), data,
                           key=jax.random.key(0))
    np.testing.assert_array_equal(plain.user_tower.layers[0].kernel[...],
                                  model.user_tower.layers[0].kernel[...])


def test_ids_unseen_in_training_read_the_unknown_row():
    data = small_data()
    split = ttm.cold_start_split(data, user_fraction=0.3, item_fraction=0.2, seed=0)
    model = ttm.init_model(ModelConfig(hidden=(), embedding_dim=4, user_ids=True,
                                       item_ids=True), split.train, key=jax.random.key(0))
    cold = np.setdiff1d(np.arange(data.n_users), split.train.user_ids)
    seen = np.asarray(model.user_tower.seen_ids())
    assert cold.size and not seen[cold].any() and seen[np.unique(split.train.user_ids)].all()
    x = data.user_features[cold]
    np.testing.assert_array_equal(ttm.embed_users(model, x, cold), ttm.embed_users(model, x))
    # A warm user reads its own row.
    warm = np.unique(split.train.user_ids)[:3]
    assert not np.allclose(ttm.embed_users(model, data.user_features[warm], warm),
                           ttm.embed_users(model, data.user_features[warm]))
    # The warm refit's with_seen_ids gives the newly seen their own rows.
    wider = with_seen_ids(model, data)
    assert np.asarray(wider.user_tower.seen_ids()).all()
    assert not np.asarray(model.user_tower.seen_ids()).all()  # the original is untouched


def test_id_dropout_trains_the_unknown_row_and_without_it_the_row_stays_zero():
    data = small_data()
    config = ModelConfig(hidden=(), embedding_dim=4, user_ids=True, item_ids=True)
    model = ttm.init_model(config, data, key=jax.random.key(0))
    plain = ttm.fit(model, data, None, ADAM, key=jax.random.key(1), progress=False).model
    np.testing.assert_array_equal(plain.user_tower.id_table[...][-1], 0.0)
    dropped = ttm.fit(model, data, None, ADAM.replace(user_id_dropout=0.5),
                      key=jax.random.key(1), progress=False).model
    assert np.abs(dropped.user_tower.id_table[...][-1]).min() > 0
    np.testing.assert_array_equal(dropped.item_tower.id_table[...][-1], 0.0)
    both = ttm.fit(model, data, None, ADAM.replace(user_id_dropout=0.5, item_id_dropout=0.5),
                   key=jax.random.key(1), progress=False).model
    assert np.abs(both.item_tower.id_table[...][-1]).min() > 0


@pytest.mark.parametrize("mode", ["entity", "rating"])
def test_tower_modes_agree_with_ids_and_dropout(mode):
    data = small_data()
    model = ttm.init_model(ModelConfig(hidden=(6,), embedding_dim=4, user_ids=True,
                                       item_ids=True), data, key=jax.random.key(0))
    cfg = ADAM.replace(user_id_dropout=0.3, item_id_dropout=0.1)
    ref = ttm.fit(model, data, data, cfg.replace(tower_mode="entity"), key=jax.random.key(2),
                  progress=False)
    got = ttm.fit(model, data, data, cfg.replace(tower_mode=mode), key=jax.random.key(2),
                  progress=False)
    np.testing.assert_allclose(got.history.val_rmse, ref.history.val_rmse, rtol=1e-4)


def test_the_id_penalty_has_its_own_weight():
    data = small_data()
    model = ttm.init_model(ModelConfig(hidden=(), embedding_dim=4, user_ids=True,
                                       item_ids=True), data, key=jax.random.key(0))
    params = nnx.state(model, nnx.Param)
    weights, ids = split_penalty(params, "l2")
    np.testing.assert_allclose(weights + ids, penalty(params, "l2"), rtol=1e-6)
    np.testing.assert_allclose(ids, sum(np.sum(np.square(t.id_table[...]))
                                        for t in (model.user_tower, model.item_tower)), rtol=1e-6)
    # A heavy λ_id shrinks the tables and leaves the covariate weights alone; the tied
    # default (None) shrinks both.
    cfg = ADAM.replace(max_epochs=20, learning_rate=3e-2, penalty_weight=1e-5)
    heavy = ttm.fit(model, data, None, cfg.replace(id_penalty_weight=10.0),
                    key=jax.random.key(1), progress=False).model
    light = ttm.fit(model, data, None, cfg.replace(id_penalty_weight=0.0),
                    key=jax.random.key(1), progress=False).model
    norm = lambda m: float(np.abs(m.user_tower.id_table[...][:-1]).mean())  # noqa: E731
    assert norm(heavy) < 0.1 * norm(light)
    kern = lambda m: float(np.abs(m.user_tower.layers[0].kernel[...]).mean())  # noqa: E731
    assert kern(heavy) > 0.3 * kern(light)
    for optimizer in ("adamw", "sgd", "muon"):
        fitted = ttm.fit(model, data, None, cfg.replace(optimizer=optimizer, max_epochs=2,
                                                        id_penalty_weight=1e-2),
                         key=jax.random.key(1), progress=False)
        assert np.isfinite(fitted.history.train_mse[-1]).all()


def test_muon_updates_an_id_table_like_adam_row_by_row():
    # Orthogonalising the table's update would move the rows of entities that were not
    # in the minibatch; the Adam branch moves only the rows with a gradient.
    data = small_data()
    model = ttm.init_model(ModelConfig(hidden=(), embedding_dim=4, user_ids=True), data,
                           key=jax.random.key(0))
    config = TrainConfig(optimizer="muon", penalty="none", learning_rate=1e-2)
    graphdef, state = init_train_state(model, config, 1)
    step = make_train_step(graphdef, config, "rating", 1)
    batch = Batch(jnp.array([3, 3], jnp.int32), jnp.array([0, 1], jnp.int32),
                  jnp.array([5.0, 1.0], jnp.float32))
    after, _ = step(state, Tables(jnp.asarray(data.user_features),
                                  jnp.asarray(data.item_features)), batch)
    moved = np.abs(np.asarray(after.params["user_tower"]["id_table"][...]
                              - state.params["user_tower"]["id_table"][...])).sum(axis=1)
    assert moved[3] > 0 and np.delete(moved, 3).max() == 0


def _step_once(config: TrainConfig, batch: Batch, data=None, penalty_weight=None):
    data = data or small_data()
    model = ttm.init_model(ModelConfig(hidden=(5,), embedding_dim=3, user_ids=True,
                                       item_ids=True), data, key=jax.random.key(0))
    graphdef, state = init_train_state(model, config, 1)
    step = make_train_step(graphdef, config, "rating", 1)
    tables = Tables(jnp.asarray(data.user_features), jnp.asarray(data.item_features))
    return state, step(state, tables, batch)[0]


def _moved_rows(before, after, side="user"):
    table = lambda s: np.asarray(s.params[f"{side}_tower"]["id_table"][...])  # noqa: E731
    return np.abs(table(after) - table(before)).sum(axis=1) > 0


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "muon"])
def test_row_updates_touch_only_the_rows_a_minibatch_reads(optimizer):
    # User 3 twice, user 7 once (dropped: it reads the unknown row instead), items 0 and 1.
    batch = Batch(jnp.array([3, 3, 7], jnp.int32), jnp.array([0, 1, 1], jnp.int32),
                  jnp.array([5.0, 1.0, 2.0], jnp.float32),
                  user_dropped=jnp.array([False, False, True]))
    config = TrainConfig(optimizer=optimizer, learning_rate=1e-2, penalty_weight=1e-2,
                         id_updates="rows")
    before, after = _step_once(config, batch)
    n_users = before.params["user_tower"]["id_table"][...].shape[0] - 1
    assert np.flatnonzero(_moved_rows(before, after)).tolist() == [3, n_users]
    assert np.flatnonzero(_moved_rows(before, after, "item")).tolist() == [0, 1]
    # The optimiser's moments of the other rows are left as they were (LazyAdam).
    if optimizer == "adam":
        mu = lambda s: np.asarray(s.opt_state.inner_state[0].mu["user_tower"]["id_table"][...])  # noqa: E731
        assert np.flatnonzero(np.abs(mu(after) - mu(before)).sum(axis=1)).tolist() == [3, n_users]


def test_row_updates_are_dense_updates_when_untouched_rows_would_not_move():
    # Plain SGD without a penalty moves only rows with a gradient, so updating the rows
    # a minibatch reads is the dense update, step for step, with dropout and duplicates.
    data = small_data()
    model = ttm.init_model(ModelConfig(hidden=(6,), embedding_dim=4, user_ids=True,
                                       item_ids=True), data, key=jax.random.key(0))
    cfg = TrainConfig(optimizer="sgd", learning_rate=5e-2, penalty="none", batch_size=64,
                      max_epochs=6, eval_every_epochs=2, tower_mode="rating",
                      user_id_dropout=0.3, item_id_dropout=0.1)
    dense = ttm.fit(model, data, data, cfg, key=jax.random.key(2), progress=False)
    rows = ttm.fit(model, data, data, cfg.replace(id_updates="rows"), key=jax.random.key(2),
                   progress=False)
    np.testing.assert_allclose(rows.history.val_rmse, dense.history.val_rmse, rtol=1e-5)
    for side in ("user_tower", "item_tower"):
        np.testing.assert_allclose(getattr(rows.model, side).id_table[...],
                                   getattr(dense.model, side).id_table[...], atol=1e-5)


def test_row_updates_train_a_hybrid_model_as_well_as_dense_ones():
    data = small_data(n_users=60, n_items=40)
    split = ttm.random_split(data, 0.2, seed=0)
    model = ttm.init_model(ModelConfig(hidden=(), embedding_dim=4, user_ids=True,
                                       item_ids=True), split.train, key=jax.random.key(0))
    cfg = ADAM.replace(max_epochs=40, tower_mode="rating")
    dense = ttm.fit(model, split.train, split.test, cfg, key=jax.random.key(1), progress=False)
    rows = ttm.fit(model, split.train, split.test, cfg.replace(id_updates="rows"),
                   key=jax.random.key(1), progress=False)
    assert rows.best_val_rmse < 1.05 * dense.best_val_rmse
    assert rows.best_val_rmse < 0.9 * float(np.std(split.test.ratings))


def test_rowwise_adagrad_keeps_one_accumulator_per_row_and_scales_rows_by_hand():
    import optax

    from ttm_jax.optim import scale_by_rowwise_adagrad

    tx = scale_by_rowwise_adagrad(initial_accumulator_value=0.5, eps=0.0)
    table = jnp.zeros((3, 2), jnp.float32)
    state = tx.init(table)
    assert state.sum_of_squares.shape == (3,)
    g = jnp.array([[3.0, 4.0], [0.0, 0.0], [1.0, 1.0]], jnp.float32)
    update, state = tx.update(g, state)
    acc = np.array([0.5 + (9 + 16) / 2, 0.5, 0.5 + 1.0])
    np.testing.assert_allclose(state.sum_of_squares, acc, rtol=1e-6)
    np.testing.assert_allclose(update, np.asarray(g) / np.sqrt(acc)[:, None], rtol=1e-6)
    # A row without a gradient keeps its accumulator and does not move.
    assert float(jnp.abs(update[1]).max()) == 0.0
    assert isinstance(tx, optax.GradientTransformation)


@pytest.mark.parametrize("optimizer", ["adam", "muon"])
def test_rowwise_adagrad_tables_train_alike_densely_and_row_by_row(optimizer):
    # Without a penalty no untouched row moves under row-wise Adagrad, so the two ways of
    # updating the tables are one update; the other weights take the configured optimiser.
    data = small_data()
    model = ttm.init_model(ModelConfig(hidden=(6,), embedding_dim=4, user_ids=True,
                                       item_ids=True), data, key=jax.random.key(0))
    cfg = TrainConfig(optimizer=optimizer, learning_rate=1e-2, penalty="none", batch_size=64,
                      max_epochs=6, eval_every_epochs=2, tower_mode="rating",
                      user_id_dropout=0.3, id_optimizer="rowwise_adagrad")
    dense = ttm.fit(model, data, data, cfg, key=jax.random.key(2), progress=False)
    rows = ttm.fit(model, data, data, cfg.replace(id_updates="rows"), key=jax.random.key(2),
                   progress=False)
    np.testing.assert_allclose(rows.history.val_rmse, dense.history.val_rmse, rtol=1e-5)
    # The tables' optimiser state is one number per row.
    _, state = init_train_state(model, cfg, 1)
    leaves = [(jax.tree_util.keystr(p), x.shape) for p, x in
              jax.tree_util.tree_flatten_with_path(state.opt_state)[0]
              if "id_table" in jax.tree_util.keystr(p)]
    assert sorted(shape for _, shape in leaves) == [(data.n_items + 1,), (data.n_users + 1,)]


def test_rowwise_adagrad_is_refused_with_the_proximal_step():
    with pytest.raises(InvalidArgument, match="id_optimizer='rowwise_adagrad'"):
        TrainConfig(optimizer="adam", penalty="l1", proximal=True,
                    id_optimizer="rowwise_adagrad")
    with pytest.raises(InvalidArgument, match="id_optimizer"):
        TrainConfig(id_optimizer="lazy")


def test_row_updates_need_per_rating_towers():
    with pytest.raises(InvalidArgument, match="tower_mode='rating' or 'auto'"):
        TrainConfig(id_updates="rows", tower_mode="entity")
    with pytest.raises(InvalidArgument, match="id_updates"):
        TrainConfig(id_updates="sparse")
    assert ttm.training.resolve_tower_mode("auto", 10, 10, 4096, "rows") == "rating"


def test_bad_ids_are_refused_by_name():
    data = small_data()
    split = ttm.cold_start_split(data, user_fraction=0.3, seed=0)
    model = ttm.init_model(ModelConfig(hidden=(), embedding_dim=4, user_ids=True),
                           split.train, key=jax.random.key(0))
    x = data.user_features[:2]
    with pytest.raises(InvalidArgument, match="id -1 at position 1 is negative"):
        ttm.embed_users(model, x, np.array([0, -1]))
    with pytest.raises(InvalidArgument, match="id 30 at position 0 is beyond the model's user id "
                                              "table .30 users"):
        ttm.embed_users(model, x, np.array([30, 1]))
    with pytest.raises(InvalidArgument, match="integer user ids"):
        ttm.embed_users(model, x, np.array([0.0, 1.0]))
    with pytest.raises(InvalidArgument, match="2 ids for 1 rows"):
        ttm.embed_users(model, x[:1], np.array([0, 1]))
    with pytest.raises(InvalidArgument, match="no item id table"):
        ttm.embed_items(model, data.item_features[:1], np.array([0]))
    # A table with more users than the model was trained on: the extra rows are new.
    wider = np.vstack([data.user_features, data.user_features[:1]])
    with pytest.raises(InvalidArgument, match="id 30 at position 2 is beyond"):
        ttm.predict_pairs(model, wider, data.item_features, np.array([0, 1, 30]),
                          np.array([0, 1, 2]))
    # Unseen ids: the unknown row by default, an error when so configured.
    cold = np.setdiff1d(np.arange(data.n_users), split.train.user_ids)
    strict = ttm.init_model(ModelConfig(hidden=(), embedding_dim=4, user_ids=True,
                                        unseen_ids="error"), split.train, key=jax.random.key(0))
    ttm.predict_pairs(model, data.user_features, data.item_features, cold, np.zeros_like(cold))
    with pytest.raises(InvalidArgument, match=f"user {cold[0]} at position 0 had no rating in "
                                              "training .* unseen_ids='error'"):
        ttm.predict_pairs(strict, data.user_features, data.item_features, cold,
                          np.zeros_like(cold))
    with pytest.raises(InvalidArgument, match="had no rating in training"):
        check_entity_ids(strict, cold, "user")
    ttm.embed_users(strict, data.user_features[cold])  # covariates alone: always fine


def test_training_refuses_mismatched_tables_and_dropout_without_ids():
    data = small_data()
    model = ttm.init_model(ModelConfig(hidden=(), embedding_dim=4, user_ids=True), data,
                           key=jax.random.key(0))
    bigger = small_data(n_users=35)
    with pytest.raises(ValueError, match="user id table has 30 rows but the data has 35 users"):
        ttm.fit(model, bigger, None, ADAM, key=jax.random.key(0), progress=False)
    with pytest.raises(ValueError, match=r"item_id_dropout=0.5 drops item ids, but the model "
                                         r"has no item id table; set ModelConfig\(item_ids=True"):
        ttm.fit(model, data, None, ADAM.replace(item_id_dropout=0.5), key=jax.random.key(0),
                progress=False)
    with pytest.raises(ValueError, match="needs the number of users"):
        build_model(ModelConfig(user_ids=True), 3, 2)


@pytest.mark.parametrize("field, value, message", [
    ("user_id_dropout", 1.0, r"user_id_dropout=1.0 must be in \[0, 1\)"),
    ("item_id_dropout", -0.1, "item_id_dropout=-0.1 must be"),
    ("id_penalty_weight", -1.0, "id_penalty_weight=-1.0 must be >= 0"),
    ("id_penalty_weight", "1e-3", "must be a number"),
])
def test_train_config_checks_the_id_fields(field, value, message):
    with pytest.raises(InvalidArgument, match=message):
        TrainConfig(**{field: value})


def test_model_config_checks_the_id_fields():
    with pytest.raises(InvalidArgument, match="user_ids=1 must be True or False"):
        ModelConfig(user_ids=1)
    with pytest.raises(InvalidArgument, match="unseen_ids='zero'"):
        ModelConfig(unseen_ids="zero")
    with pytest.raises(InvalidArgument, match="proximal=True"):
        TrainConfig(optimizer="adam", penalty="l1", proximal=True, id_penalty_weight=1e-3)


def test_estimator_with_ids_refits_and_serves(tmp_path):
    data = small_data(n_users=40, n_items=30)
    split = ttm.cold_start_split(data, user_fraction=0.25, test_fraction=0.2, seed=0)
    config = ModelConfig(hidden=(8,), embedding_dim=4, user_ids=True, item_ids=True)
    reg = ttm.TwoTowerRegressor(config, ADAM.replace(user_id_dropout=0.2), seed=0,
                                progress=False).fit(split.train)
    assert reg.refit_result_ is not None
    # The warm refit knows every training user, hold-out included.
    seen = np.asarray(reg.model_.user_tower.seen_ids())
    np.testing.assert_array_equal(seen, np.isin(np.arange(40), split.train.user_ids))
    pred = reg.predict(split.test)
    ev = ttm.evaluate(reg.model_, split.test, split.train)
    assert np.isfinite(pred).all() and ev.cold_user is not None
    rows = np.array([0, 1, 2])
    np.testing.assert_allclose(
        reg.predict_matrix(data.user_features[rows], data.item_features, user_ids=rows,
                           item_ids=np.arange(30))[1, 4],
        ttm.predict_pairs(reg.model_, data.user_features, data.item_features,
                          np.array([1]), np.array([4]))[0], rtol=1e-5)
    np.testing.assert_array_equal(reg.user_embeddings(data.user_features[rows], rows),
                                  ttm.embed_users(reg.model_, data.user_features[rows], rows))

    # Save and load: the id tables, their seen maps and the schema come back.
    path = ttm.save_model(tmp_path / "m", reg.model_, config)
    back = ttm.load_model(path)
    assert (back.schema.n_user_ids, back.schema.n_item_ids) == (40, 30)
    np.testing.assert_array_equal(
        ttm.predict_pairs(back.model, data.user_features, data.item_features,
                          split.test.user_ids, split.test.item_ids), pred)
    np.testing.assert_array_equal(np.asarray(back.model.user_tower.seen_ids()), seen)
    with pytest.raises(ValueError, match="schema.n_user_ids=3 but the model's user id table"):
        ttm.save_model(tmp_path / "bad", reg.model_, config,
                       schema=ttm.io.FeatureSchema(3, 2, n_user_ids=3, n_item_ids=30))

    # Recommend: known users by row (their ids), new ones by covariates; export.
    recs = ttm.recommend(back.model, rows, 5, data=split.train)
    scores = reg.predict_matrix(data.user_features[rows], data.item_features, user_ids=rows,
                                item_ids=np.arange(30))
    for r, user in enumerate(rows):
        rated = split.train.item_ids[split.train.user_ids == user]
        s = scores[r].copy()
        s[rated] = -np.inf
        np.testing.assert_array_equal(recs.item_ids[r], np.argsort(-s, kind="stable")[:5])
    new = ttm.recommend(back.model, data.user_features[rows], 5, data=split.train)
    assert new.item_ids.shape == (3, 5)
    tables = ttm.export_embeddings(back.model, data.user_features, data.item_features)
    np.testing.assert_array_equal(tables.users[rows],
                                  ttm.embed_users(back.model, data.user_features[rows], rows))
    with pytest.raises(InvalidArgument, match="beyond the model's user id table"):
        ttm.export_embeddings(back.model, np.vstack([data.user_features] * 2),
                              data.item_features)


def test_a_lambda_grid_moves_a_tied_id_penalty_and_members_may_differ_in_it():
    data = small_data()
    split = ttm.random_split(data, 0.2, seed=0)
    model = ttm.init_model(ModelConfig(hidden=(), embedding_dim=4, user_ids=True),
                           split.train, key=jax.random.key(0))
    grid = ttm.fit_lambda_grid(model, split.train, split.test, ADAM, lambdas=[1e-4, 1.0],
                               key=jax.random.key(1), progress=False)
    alone = ttm.fit(model, split.train, split.test, ADAM.replace(penalty_weight=1.0),
                    key=jax.random.key(1), progress=False)
    np.testing.assert_allclose(grid.val_rmse[1], alone.best_val_rmse, rtol=1e-4)
    from ttm_jax.optim import Hyperparams

    pair = ttm.fit_members([model, model], split.train, split.test, ADAM,
                           keys=[jax.random.key(1)] * 2,
                           hyperparams=[Hyperparams(np.float32(1e-2), np.float32(1e-3),
                                                    np.float32(v)) for v in (0.0, 1.0)],
                           progress=False)
    fixed = ttm.fit(model, split.train, split.test, ADAM.replace(id_penalty_weight=1.0),
                    key=jax.random.key(1), progress=False)
    np.testing.assert_allclose(pair.best_val_rmse[1], fixed.best_val_rmse, rtol=1e-4)
    assert pair.best_val_rmse[0] != pair.best_val_rmse[1]
