"""The pure core of training: state and batch types, the jitted step, and the scan chunk.

:func:`make_train_step` returns a jitted ``step(state, tables, batch) -> (state, mse)``
over arrays only, built from ``nnx.split`` state (the functional pattern of
Flax's NNX examples). :func:`make_train_chunk` runs ``n_steps`` of it per
dispatch with ``jax.lax.scan``, drawing each minibatch uniformly (with
replacement) from Ω inside the scan, and ``vmap``s it over a leading axis of
``r`` members (:mod:`ttm_jax.training.engine` trains every fit that way, a
single one being ``r = 1``). The penalty weight ``λ`` and the step size live
in the optimiser state (:mod:`ttm_jax.optim`), so members may differ in them.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from ttm_jax.config import TrainConfig
from ttm_jax.data.ratings import RatingData
from ttm_jax.model.objective import split_penalty, squared_error
from ttm_jax.model.towers import TwoTower, is_id_table, score
from ttm_jax.optim.optimizer import Hyperparams, make_optimizer, with_hyperparams

__all__ = [
    "Batch",
    "Cadence",
    "Missing",
    "Tables",
    "TrainState",
    "cadence",
    "check_epochs",
    "device_arrays",
    "init_train_state",
    "init_train_states",
    "make_train_chunk",
    "make_train_step",
    "make_validation_rmse",
    "resolve_tower_mode",
]

#: The name of the device-mesh axis over which minibatches are split.
DATA_AXIS = "data"


class Tables(NamedTuple):
    """Covariate tables on device: ``user_x [n_users, D_u]``, ``item_x [n_items, D_i]``."""

    user_x: jax.Array
    item_x: jax.Array


class Missing(NamedTuple):
    """Pairs drawn uniformly from all ``n_users × n_items`` for the missing-rating term
    (``TrainConfig.missing_weight``): ``user_ids [M]``, ``item_ids [M]`` (int32), and
    ``weight``, the float32 scalar ``w_m · n_users · n_items / |Ω|`` that makes their mean
    squared error an unbiased estimate of the term's share of the loss."""

    user_ids: jax.Array
    item_ids: jax.Array
    weight: jax.Array


class Batch(NamedTuple):
    """Aligned ratings: ``user_ids [B]``, ``item_ids [B]`` (int32), ``ratings [B]`` (float32).

    ``user_dropped``, ``item_dropped``: ``[B]`` bool or ``None``: id dropout,
    True where the rating's user (item) is scored through the unknown row of
    its tower's id table instead of its own (its covariates are still read).
    ``missing``: the step's :class:`Missing` pairs, or ``None`` (no missing-rating term).
    """

    user_ids: jax.Array
    item_ids: jax.Array
    ratings: jax.Array
    user_dropped: jax.Array | None = None
    item_dropped: jax.Array | None = None
    missing: Missing | None = None


class TrainState(NamedTuple):
    """Everything that changes during training, as arrays.

    ``params`` is the ``nnx.Param`` state of the model; ``rest`` its
    non-trainable state (standardisation, offset), carried so that the step
    can rebuild the model with ``nnx.merge``; ``opt_state`` holds the
    optimiser's moments and its injected :class:`~ttm_jax.optim.Hyperparams`;
    ``step`` counts the steps taken.
    """

    params: nnx.State
    rest: nnx.State
    opt_state: optax.OptState
    step: jax.Array


class Cadence(NamedTuple):
    """How a run's steps are grouped: ``steps_per_epoch = ⌈|Ω| / B⌉``, the steps
    run per dispatch between validation checks (``eval_every_epochs`` epochs), and
    the number of training checks that ``max_epochs`` allows."""

    steps_per_epoch: int
    steps_per_check: int
    n_checks: int


def cadence(config: TrainConfig, n_ratings: int) -> Cadence:
    """The :class:`Cadence` of training ``config`` on ``n_ratings`` ratings (``|Ω|``)."""
    steps_per_epoch = max(1, math.ceil(n_ratings / config.batch_size))
    return Cadence(steps_per_epoch, steps_per_epoch * config.eval_every_epochs,
                   math.ceil(config.max_epochs / config.eval_every_epochs))


def check_epochs(config: TrainConfig, check: int) -> tuple[int, float]:
    """Epochs trained before validation check ``check`` (0-based), and the epoch
    count at that check: ``eval_every_epochs`` each, except that the last check
    takes only what remains of ``max_epochs``, so that a run trains exactly
    ``max_epochs`` epochs whether or not they are a multiple of
    ``eval_every_epochs`` (that last, shorter chunk compiles once more)."""
    start = check * config.eval_every_epochs
    n = min(config.eval_every_epochs, config.max_epochs - start)
    return n, float(start + n)


def resolve_tower_mode(mode: str, n_users: int, n_items: int, batch_size: int,
                       id_updates: str = "dense") -> str:
    """``"auto"`` → ``"entity"`` when computing every tower output once per step
    is no dearer than twice per rating (``n_users + n_items <= 2 B``), else ``"rating"``;
    always ``"rating"`` with ``id_updates="rows"`` (a step reads only its batch's rows)."""
    if mode != "auto":
        return mode
    if id_updates == "rows":
        return "rating"
    return "entity" if n_users + n_items <= 2 * batch_size else "rating"


def device_arrays(data: RatingData) -> tuple[Tables, Batch]:
    """``data`` as device arrays: its covariate :class:`Tables` and all of Ω as one :class:`Batch`."""
    return (Tables(jnp.asarray(data.user_features), jnp.asarray(data.item_features)),
            Batch(jnp.asarray(data.user_ids), jnp.asarray(data.item_ids),
                  jnp.asarray(data.ratings)))


def init_train_state(model: TwoTower, config: TrainConfig, steps_per_epoch: int,
                     hyperparams: Hyperparams | None = None):
    """``(graphdef, TrainState)`` of one model at step 0: ``model`` split by ``nnx.split``
    into its ``nnx.Param`` state and the rest, with fresh optimiser state for ``config``
    holding ``hyperparams`` (default: the configuration's own), as
    :func:`make_train_step` takes it.

    Member 0 of :func:`init_train_states` of ``[model]``: one way to build a state.
    """
    graphdef, states = init_train_states([model], config, steps_per_epoch, [hyperparams])
    return graphdef, jax.tree_util.tree_map(lambda x: x[0], states)


def init_train_states(models, config: TrainConfig, steps_per_epoch: int,
                      hyperparams=None):
    """``(graphdef, TrainState)`` of ``r`` models at step 0, stacked on a leading ``[r]``
    axis, as :func:`make_train_chunk` takes them.

    The same states as stacking :func:`init_train_state` of each model, built without
    holding both: the parameters are stacked once and the optimiser state is
    initialised on the stack (``jax.vmap(tx.init)``), so a model whose id tables
    hold millions of rows is not held three times over while its state is laid out.

    Args:
      models: ``r`` :class:`~ttm_jax.model.TwoTower` of one architecture (not modified).
      config, steps_per_epoch: as :func:`init_train_state`.
      hyperparams: ``None`` (each member the configuration's own) or ``r``
        :class:`~ttm_jax.optim.Hyperparams` (``None`` entries: the configuration's own).
    """
    splits = [nnx.split(m, nnx.Param, ...) for m in models]
    stack = functools.partial(jax.tree_util.tree_map, lambda *xs: jnp.stack(xs))
    params = stack(*[p for _, p, _ in splits])
    rest = stack(*[r for _, _, r in splits])
    tx = make_optimizer(config, steps_per_epoch)
    with jax.numpy_dtype_promotion("standard"):
        opt_state = jax.vmap(tx.init)(params)
    values = [Hyperparams.of(config) if h is None else h.resolve(config)
              for h in (hyperparams or [None] * len(models))]
    opt_state = with_hyperparams(opt_state, Hyperparams(
        *(jnp.stack([jnp.asarray(getattr(v, f), jnp.float32) for v in values])
          for f in Hyperparams._fields)))
    return splits[0][0], TrainState(params, rest, opt_state,
                                    jnp.zeros((len(models),), jnp.int32))


def _side(tower, x: jax.Array, ids: jax.Array, dropped: jax.Array | None, mode: str,
          table_rows: jax.Array | None = None) -> jax.Array:
    """One tower's outputs ``[B, p]`` for the ratings' entities ``ids [B]`` (rows of ``x``),
    read through the unknown row where ``dropped``. ``table_rows`` (``id_updates="rows"``):
    the rows of the tower's (gathered) id table each rating reads, dropout applied."""
    if table_rows is not None:
        return tower(x[ids], table_rows)
    if mode == "entity":
        emb = tower(x, jnp.arange(x.shape[0], dtype=jnp.int32))[ids]
        if dropped is None:
            return emb
        # Every entity once with its id and once without; each rating takes one.
        return jnp.where(dropped[:, None], tower(x)[ids], emb)
    own = ids if dropped is None else jnp.where(dropped, tower.n_ids, ids)
    return tower(x[ids], own)


def _predict(model: TwoTower, tables: Tables, batch: Batch, mode: str,
             table_rows: dict | None = None) -> jax.Array:
    """``[B]`` scores of a batch: in ``"entity"`` mode every user and item is embedded once
    and gathered, in ``"rating"`` mode each rating's pair is embedded."""
    rows = table_rows or {}
    return score(_side(model.user_tower, tables.user_x, batch.user_ids, batch.user_dropped, mode,
                       rows.get("user")),
                 _side(model.item_tower, tables.item_x, batch.item_ids, batch.item_dropped, mode,
                       rows.get("item")),
                 model.offset[...])


def _tower_side(path) -> tuple[str, set]:
    """The tower (``"user"`` / ``"item"``) a key path into the model's state (or its
    optimiser moments) runs through, and the path's key names."""
    names = {getattr(k, "key", getattr(k, "name", None)) for k in path}
    return ("user" if "user_tower" in names else "item"), names


def _table_side(path) -> str | None:
    """``"user"`` / ``"item"`` for a key path into an id table (or its optimiser moments)."""
    return _tower_side(path)[0] if is_id_table(path) else None


class ActiveRows(NamedTuple):
    """The id-table rows one minibatch reads (``id_updates="rows"``), per side with a table.

    ``rows[side]``: ``[B]`` the distinct rows, ascending, padded with ``n + 1`` (past
    the table: gathers read zeros, scatters drop them); ``reads[side]``: ``[B]``
    each rating's position in ``rows[side]``.
    """

    rows: dict
    reads: dict


def _active_rows(graphdef, state: TrainState, batch: Batch) -> ActiveRows:
    model = nnx.merge(graphdef, state.params, state.rest)
    rows, reads = {}, {}
    for side, ids, dropped in (("user", batch.user_ids, batch.user_dropped),
                               ("item", batch.item_ids, batch.item_dropped)):
        tower = getattr(model, f"{side}_tower")
        if not tower.n_ids:
            continue
        table_row = tower.id_rows[...][ids]
        if dropped is not None:
            table_row = jnp.where(dropped, tower.n_ids, table_row)
        rows[side], reads[side] = jnp.unique(table_row, size=ids.shape[0],
                                             fill_value=tower.n_ids + 1, return_inverse=True)
        reads[side] = reads[side].reshape(ids.shape).astype(jnp.int32)
    return ActiveRows(rows, reads)


def _gather_rows(tree, active: ActiveRows):
    """``tree`` (parameters, or optimiser state mirroring them) with each id table cut to
    the active rows ``[B, p_1]``."""
    def cut(path, x):
        side = _table_side(path)
        if side is None or side not in active.rows:
            return x
        return jnp.take(x, active.rows[side], axis=0, mode="fill", fill_value=0)
    return jax.tree_util.tree_map_with_path(cut, tree)


def _scatter_rows(full, part, active: ActiveRows):
    """``full`` with the active rows of each id table replaced by ``part``'s (and every other
    leaf taken from ``part``)."""
    def put(path, whole, rows):
        side = _table_side(path)
        if side is None or side not in active.rows:
            return rows
        return whole.at[active.rows[side]].set(rows, mode="drop")
    return jax.tree_util.tree_map_with_path(put, full, part)


def _reading_active_rows(rest, active: ActiveRows):
    """The model's non-trainable state with each id map set to the identity over the
    active rows, so that the gathered table is read by position."""
    def identity(path, x):
        side, names = _tower_side(path)
        if "id_rows" not in names or side not in active.rows:
            return x
        return jnp.arange(active.rows[side].shape[0], dtype=jnp.int32)
    return jax.tree_util.tree_map_with_path(identity, rest)


def _scored(batch: Batch, missing_rating: float) -> Batch:
    """The pairs a step scores: the batch's ratings, then its missing pairs (if any) as
    ratings ``missing_rating`` whose ids are never dropped."""
    m = batch.missing
    if m is None:
        return batch
    size = m.user_ids.shape[0]

    def cat(observed, extra):
        return None if observed is None else jnp.concatenate([observed, extra])

    kept = jnp.zeros((size,), bool)
    return Batch(cat(batch.user_ids, m.user_ids), cat(batch.item_ids, m.item_ids),
                 cat(batch.ratings, jnp.full((size,), missing_rating, jnp.float32)),
                 cat(batch.user_dropped, kept), cat(batch.item_dropped, kept))


def _loss_fn(graphdef, config: TrainConfig, mode: str):
    # AdamW and the proximal L1 step apply λ outside the gradient.
    in_loss = config.penalty != "none" and config.optimizer != "adamw" and not config.proximal

    def loss(params, rest, lam, lam_id, tables: Tables, batch: Batch, table_rows=None):
        model = nnx.merge(graphdef, params, rest)
        joint = _scored(batch, config.missing_rating)
        pred = _predict(model, tables, joint, mode, table_rows)
        n = batch.ratings.shape[0]
        mse = squared_error(pred[:n], batch.ratings)
        total = mse
        if batch.missing is not None:
            total = total + batch.missing.weight * squared_error(pred[n:], joint.ratings[n:])
        if not in_loss:
            return total, mse
        weights, ids = split_penalty(params, config.penalty)
        return total + lam * weights + lam_id * ids, mse

    return loss


def _step_body(graphdef, config: TrainConfig, mode: str, steps_per_epoch: int):
    tx = make_optimizer(config, steps_per_epoch)
    grad_fn = jax.value_and_grad(_loss_fn(graphdef, config, mode), has_aux=True)

    def step(state: TrainState, tables: Tables, batch: Batch):
        if config.id_updates == "rows":
            return rows_step(state, tables, batch)
        hyper = state.opt_state.hyperparams
        (_, mse), grads = grad_fn(state.params, state.rest, hyper["penalty_weight"],
                                  hyper["id_penalty_weight"], tables, batch)
        # optax mixes int step counts with float decay rates, which strict
        # promotion (on in the tests, to check this library) would refuse.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
        return TrainState(params, state.rest, opt_state, state.step + 1), mse

    def rows_step(state: TrainState, tables: Tables, batch: Batch):
        # The same loss and the same optax update, on a model whose id tables are cut
        # to the rows this minibatch reads (their moments cut alike), then written back:
        # O(B p_1) work in the tables, whatever their size. The penalty in the loss sees
        # the cut tables, so it reaches a row when the row is read.
        active = _active_rows(graphdef, state, _scored(batch, config.missing_rating))
        params = _gather_rows(state.params, active)
        rest = _reading_active_rows(state.rest, active)
        opt_part = _gather_rows(state.opt_state, active)
        hyper = state.opt_state.hyperparams
        (_, mse), grads = grad_fn(params, rest, hyper["penalty_weight"],
                                  hyper["id_penalty_weight"], tables, batch, active.reads)
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_part = tx.update(grads, opt_part, params)
            params = optax.apply_updates(params, updates)
        return TrainState(_scatter_rows(state.params, params, active), state.rest,
                          _scatter_rows(state.opt_state, opt_part, active),
                          state.step + 1), mse

    return step


def _compiled_config(config: TrainConfig) -> TrainConfig:
    """``config`` with η_0, λ and λ_id set to placeholders: a compiled step reads those
    from its optimiser state (``inject_hyperparams``), never from the configuration, so
    fits that differ only in them (a λ search, a step-size search) share one compilation.
    Whether λ_id is tied to λ changes the optimiser's structure, so that is kept."""
    return config.replace(
        learning_rate=max(1.0, config.min_learning_rate), penalty_weight=0.0,
        id_penalty_weight=None if config.id_penalty_weight is None else 0.0)


def make_train_step(graphdef, config: TrainConfig, mode: str, steps_per_epoch: int):
    """A jitted ``step(state, tables, batch) -> (state, mse)`` for one model.

    Args:
      graphdef: the model's ``nnx.GraphDef`` (from ``nnx.split``).
      config: training configuration (optimiser, schedule, penalty).
      mode: ``"entity"`` or ``"rating"`` (see :func:`resolve_tower_mode`).
      steps_per_epoch: sets the schedule's time scale.

    ``mse`` is the minibatch's mean squared error (eq. 2's data term, without
    the penalty). Cached: arguments that differ at most in ``config``'s
    ``learning_rate``, ``penalty_weight`` and ``id_penalty_weight`` (which the step
    reads from ``state``'s optimiser state) return the same compiled function.
    """
    return _jitted_step(graphdef, _compiled_config(config), mode, steps_per_epoch)


@functools.lru_cache(maxsize=64)
def _jitted_step(graphdef, config: TrainConfig, mode: str, steps_per_epoch: int):
    return jax.jit(_step_body(graphdef, config, mode, steps_per_epoch))


def make_train_chunk(graphdef, config: TrainConfig, mode: str, steps_per_epoch: int,
                     n_steps: int, *, shared_data: bool = True, mesh=None,
                     key_impl: str = "threefry2x32"):
    """A jitted ``chunk(states, tables, train, key_data) -> (states, mse [r, n_steps])``
    that advances ``r`` members by ``n_steps`` steps in one dispatch.

    Args:
      graphdef, config, mode, steps_per_epoch: as :func:`make_train_step`.
      n_steps: steps per dispatch (``lax.scan``).
      shared_data: the members train on the same ``tables`` and ``train``
        (a λ grid, or one fit); ``False``: each member has its own, stacked on
        a leading ``[r]`` axis (replications on independent data sets).
      mesh: a one-axis ``jax.sharding.Mesh`` (axis ``"data"``) over which each
        minibatch is split, data-parallel; the state and data are replicated
        (:mod:`ttm_jax.training.distributed`). ``None``: one device.
      key_impl: the PRNG implementation of the keys whose raw data is passed.

    ``states`` is a :class:`TrainState` stacked over ``r`` members (from
    :func:`init_train_states`), **donated**: its buffers are reused for the returned
    states, so it must not be read after the call; ``key_data``
    ``[r, ...]`` the raw data of one key per member (``jax.random.key_data``:
    plain integers, which replicate across processes like any array). Step ``t``
    draws ``batch_size`` positions of Ω uniformly with replacement from
    ``fold_in(key, t)``, so a member draws the same minibatches whatever the
    other members are, and on however many devices. Cached as
    :func:`make_train_step`: a fit that differs from an earlier one only in η_0, λ
    or λ_id reuses its compilation.
    """
    return _jitted_chunk(graphdef, _compiled_config(config), mode, steps_per_epoch, n_steps,
                         shared_data, mesh, key_impl)


@functools.lru_cache(maxsize=64)
def _jitted_chunk(graphdef, config: TrainConfig, mode: str, steps_per_epoch: int,
                  n_steps: int, shared_data: bool, mesh, key_impl: str):
    step = _step_body(graphdef, config, mode, steps_per_epoch)
    batch_size = config.batch_size
    sharded = None if mesh is None else NamedSharding(mesh, P(DATA_AXIS))

    def one(state: TrainState, tables: Tables, train: Batch, key_data):
        n = train.ratings.shape[0]
        n_users, n_items = tables.user_x.shape[0], tables.item_x.shape[0]
        # w_m Σ over all n_users n_items pairs, per observed rating, from a uniform sample.
        missing_weight = jnp.float32(config.missing_weight * n_users * n_items / n)
        key = jax.random.wrap_key_data(key_data, impl=key_impl)

        def body(state, t):
            draw = jax.random.fold_in(key, t)
            idx = jax.random.randint(draw, (batch_size,), 0, n)
            # Id dropout draws from its own streams of the step's key, so the
            # minibatches are those of a run without it.
            dropped = [None if p == 0 else
                       jax.random.bernoulli(jax.random.fold_in(draw, side), p, (batch_size,))
                       for side, p in ((1, config.user_id_dropout), (2, config.item_id_dropout))]
            pairs = None
            if config.missing_weight > 0:
                # Its own streams again: the observed minibatches stay those of a run without it.
                pairs = (
                    jax.random.randint(jax.random.fold_in(draw, 3), (batch_size,), 0, n_users),
                    jax.random.randint(jax.random.fold_in(draw, 4), (batch_size,), 0, n_items))
            if sharded is not None:
                idx, dropped, pairs = jax.lax.with_sharding_constraint((idx, dropped, pairs),
                                                                       sharded)
            missing = None if pairs is None else Missing(*pairs, missing_weight)
            batch = Batch(train.user_ids[idx], train.item_ids[idx], train.ratings[idx], *dropped,
                          missing)
            return step(state, tables, batch)

        return jax.lax.scan(body, state, jnp.arange(n_steps, dtype=jnp.int32))

    data_axis = None if shared_data else 0
    batched = jax.vmap(one, in_axes=(0, data_axis, data_axis, 0))

    def chunk(states: TrainState, tables: Tables, train: Batch, key_data):
        if states.step.shape[0] > 1:
            return batched(states, tables, train, key_data)
        # One member: the unbatched computation, so that a single fit runs (and
        # rounds) exactly as a plain scan, without vmap's batched contractions.
        squeeze = functools.partial(jax.tree_util.tree_map, lambda x: x[0])
        state, mses = one(squeeze(states), *((tables, train) if shared_data
                                             else squeeze((tables, train))), key_data[0])
        return jax.tree_util.tree_map(lambda x: x[None], (state, mses))

    # The states are donated: the new states take the old ones' buffers, so a chunk
    # holds one copy of the parameters and optimiser moments, not two. A caller
    # keeps using only what the chunk returns.
    if mesh is None:
        return jax.jit(chunk, donate_argnums=0)
    return jax.jit(chunk, out_shardings=NamedSharding(mesh, P()), donate_argnums=0)


@functools.lru_cache(maxsize=64)
def make_validation_rmse(graphdef, mode: str, *, shared_data: bool = True):
    """A jitted ``rmse(params, rest, tables, val) -> [r]``: each member's RMSE on ``val``.

    In ``"entity"`` mode every user and item is embedded once and gathered; in
    ``"rating"`` mode (many entities, e.g. iid pairs) only the validation rows
    are embedded, ``|validation|`` tower passes instead of ``n_users + n_items``.
    ``shared_data`` as in :func:`make_train_chunk`.
    """

    def one(params, rest, tables: Tables, val: Batch):
        model = nnx.merge(graphdef, params, rest)
        return jnp.sqrt(squared_error(_predict(model, tables, val, mode), val.ratings))

    data_axis = None if shared_data else 0
    return jax.jit(jax.vmap(one, in_axes=(0, 0, data_axis, data_axis)))
