"""The one training loop: ``r ≥ 1`` members of equal shape, trained together, with early stopping.

Every fit in the library goes through :func:`train`: a single model is
``r = 1``; replications on independent data sets, the paper's λ grid, and any
hyperparameter the optimiser injects (:mod:`ttm_jax.optim`: step size, AdamW's
decay) are members. Like ott-jax's ``fixpoint_iter``, the loop is generic and
the step is supplied: the jitted, ``vmap``ped chunk of
:func:`ttm_jax.training.step.make_train_chunk` advances every member by a
check's worth of steps in one dispatch; between chunks the loop

* scores each member on its validation set (a first check at epoch 0 scores
  the initial model, so early stopping never keeps one worse than it);
* applies one early-stopping rule to all members (:mod:`ttm_jax.training.stopping`),
  freezing each member's best parameters once its patience runs out, and
  marking a member whose loss turns non-finite as diverged while the others go on;
* drops the rows of stopped members from the batched state once a quarter of
  them have stopped (large λ stop within one patience window), so the cost
  follows the members still training;
* reports progress to callbacks, honours the wall-clock budget, and saves a
  checkpoint (:mod:`ttm_jax.io.checkpoint`) that resumes the run exactly.

Data parallelism over a device mesh is a matter of placing arrays
(:mod:`ttm_jax.training.distributed`); the loop is the same.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ttm_jax.config import TrainConfig
from ttm_jax.data.ratings import RatingData
from ttm_jax.io.checkpoint import RESUMABLE_CHANGES, TrainingCheckpoint, digest
from ttm_jax.io.folders import library_version
from ttm_jax.model.towers import TwoTower
from ttm_jax.optim.optimizer import Hyperparams, hyperparams_of
from ttm_jax.optim.schedule import make_schedule
from ttm_jax.training import distributed
from ttm_jax.training.callbacks import Callback, CheckReport
from ttm_jax.training.results import FitResult, History
from ttm_jax.training.step import (
    Batch,
    Tables,
    TrainState,
    cadence,
    check_epochs,
    device_arrays,
    init_train_states,
    make_train_chunk,
    make_validation_rmse,
    resolve_tower_mode,
)
from ttm_jax.training.stopping import EarlyStopping

__all__ = ["LoopState", "Members", "check_id_table", "stack_members", "train"]


class Members(NamedTuple):
    """``r`` members of one architecture, ready to train: the input of :func:`train`.

    Attributes:
      graphdef: the models' shared ``nnx.GraphDef``.
      states: :class:`TrainState` stacked over ``[r]`` (each with its own
        parameters and injected hyperparameters).
      tables, train, validation: the data, shared by every member
        (``shared_data``) or stacked over ``[r]``; ``validation`` may be ``None``.
      keys: ``[r]`` ``jax.random`` keys of the minibatch draws.
      shared_data: whether the data is shared.
      shape: ``(n_users, n_items, |Ω|)`` of each member's data.
      describe: the architecture as plain data (``TwoTower.describe()``), for
        checkpoint fingerprints.
    """

    graphdef: Any
    states: TrainState
    tables: Tables
    train: Batch
    validation: Batch | None
    keys: jax.Array
    shared_data: bool
    shape: tuple[int, int, int]
    describe: dict


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def _check_same_shapes(name: str, parts: Sequence[RatingData]) -> None:
    ref = parts[0]
    for k, part in enumerate(parts[1:], start=1):
        if (part.user_features.shape, part.item_features.shape, part.n_ratings) != (
                ref.user_features.shape, ref.item_features.shape, ref.n_ratings):
            raise ValueError(
                f"{name}[{k}] is {part!r} but {name}[0] is {ref!r}; members trained together "
                "need equal n_users, n_items, D_u, D_i and |Ω|")


def _check_tables(train: RatingData, validation: RatingData | None, where: str) -> None:
    if validation is not None and (
        validation.user_features is not train.user_features
        and not np.array_equal(validation.user_features, train.user_features)
        or validation.item_features is not train.item_features
        and not np.array_equal(validation.item_features, train.item_features)
    ):
        raise ValueError(
            f"{where}validation must share train's covariate tables (build both with "
            "random_split or cold_start_split, or RatingData.subset of one data set)")


def check_id_table(tower, side: str, n_rows: int, dropout: float) -> None:
    """Raise ``ValueError`` unless a tower's id table fits data with ``n_rows`` entities
    (its rows are the table's rows) and id dropout is asked for only where there are ids."""
    if tower.n_ids and tower.n_ids != n_rows:
        raise ValueError(
            f"the model's {side} id table has {tower.n_ids} rows but the data has {n_rows} "
            f"{side}s; ids are rows of the covariate table, so train on data with the table "
            "the model was initialised on (init_model(config, train) sizes it)")
    if dropout and not tower.n_ids:
        raise ValueError(f"{side}_id_dropout={dropout:g} drops {side} ids, but the model has no "
                         f"{side} id table; set ModelConfig({side}_ids=True) or "
                         f"{side}_id_dropout=0")


def stack_members(
    models: Sequence[TwoTower],
    trains: Sequence[RatingData],
    validations: Sequence[RatingData | None] | None,
    config: TrainConfig,
    keys: Sequence[jax.Array],
    hyperparams: Sequence[Hyperparams] | None = None,
) -> Members:
    """Check ``r`` members and lay them out for :func:`train`.

    Args:
      models: ``r`` models of one architecture (e.g. from :func:`~ttm_jax.init_model`);
        not modified.
      trains: one training set (shared by every member) or ``r`` of equal shapes.
      validations: ``None``, or one validation set per training set, each
        sharing its training set's covariate tables.
      config: the shared configuration.
      keys: ``r`` ``jax.random`` keys for the minibatch draws.
      hyperparams: ``r`` :class:`~ttm_jax.optim.Hyperparams` (default: the
        configuration's own for every member).

    Raises:
      ValueError: for no members, mismatched counts, shapes, widths or architectures.
    """
    r = len(models)
    if r == 0:
        raise ValueError("models is empty; pass at least one model")
    if len(keys) != r or (hyperparams is not None and len(hyperparams) != r):
        raise ValueError(f"models, keys (and hyperparams) must have one entry per member; got "
                         f"{r}, {len(keys)}" + ("" if hyperparams is None
                                               else f" and {len(hyperparams)}"))
    if len(trains) not in (1, r):
        raise ValueError(f"trains must hold one data set (shared) or one per member ({r}); "
                         f"got {len(trains)}")
    if validations is not None and len(validations) != len(trains):
        raise ValueError(f"validations must match trains one to one; got {len(validations)} "
                         f"for {len(trains)}")
    for k, m in enumerate(models):
        if not isinstance(m, TwoTower):
            raise TypeError(f"models[{k}] must be a TwoTower, got {type(m).__name__}")
    for k, t in enumerate(trains):
        if not isinstance(t, RatingData):
            raise TypeError(f"trains[{k}] must be a RatingData, got {type(t).__name__}")
    _check_same_shapes("trains", trains)
    if validations is not None:
        if any(v is None for v in validations):
            raise ValueError("validations: give a validation set for every training set, or None")
        _check_same_shapes("validations", validations)
        for k, (t, v) in enumerate(zip(trains, validations)):
            _check_tables(t, v, f"validations[{k}]: " if len(trains) > 1 else "")
    graphdef = nnx.graphdef(models[0])
    for k, m in enumerate(models[1:], start=1):
        if nnx.graphdef(m) != graphdef:
            raise ValueError(f"models[{k}] has a different architecture from models[0]")
    ref = trains[0]
    for side, width in (("user", ref.user_features.shape[1]), ("item", ref.item_features.shape[1])):
        tower = getattr(models[0], f"{side}_tower")
        if width != tower.in_features:
            raise ValueError(f"the training data has {width} {side} covariate columns but the "
                             f"model's {side} tower expects {tower.in_features}")
        check_id_table(tower, side, getattr(ref, f"n_{side}s"),
                       getattr(config, f"{side}_id_dropout"))
    steps_per_epoch = cadence(config, ref.n_ratings).steps_per_epoch
    graphdef, states = init_train_states(models, config, steps_per_epoch, hyperparams)
    shared = len(trains) == 1
    arrays = [device_arrays(t) for t in trains]
    val = None if validations is None else [device_arrays(v)[1] for v in validations]
    if shared:
        tables, train_b = arrays[0]
        val_b = None if val is None else val[0]
    else:
        tables, train_b = _stack(arrays)
        val_b = None if val is None else _stack(val)
    return Members(
        graphdef=graphdef,
        states=states,
        tables=tables,
        train=train_b,
        validation=val_b,
        keys=jnp.stack([jnp.asarray(k) for k in keys]),
        shared_data=shared,
        shape=(ref.n_users, ref.n_items, ref.n_ratings),
        describe=models[0].describe(),
    )


class LoopState(NamedTuple):
    """What the loop carries from one check to the next, and what a checkpoint saves.

    Attributes:
      states: :class:`TrainState` of the ``a`` members still in the batch, ``[a]``.
      best_params: kept parameters of every member, ``[r]``.
      rows: member index of each row of ``states``, ``[a]``.
      stopping: :class:`~ttm_jax.training.stopping.EarlyStopping` of every member.
      epochs_run: ``[r]`` epochs each member trained before it stopped.
      epochs: ``[c]`` epoch of each check so far.
      train_mse, val_rmse, learning_rate: ``[c, r]`` per check and member.
      next_check: index of the next training chunk.
      out_of_time: the run stopped at its wall-clock budget.
    """

    states: TrainState
    best_params: Any
    rows: np.ndarray
    stopping: EarlyStopping
    epochs_run: np.ndarray
    epochs: np.ndarray
    train_mse: np.ndarray
    val_rmse: np.ndarray
    learning_rate: np.ndarray
    next_check: int
    out_of_time: bool


@jax.jit
def _keep_rows(rows, mask, new, best):
    """``best[rows[j]] = new[j]`` where ``mask[j]``: ``new`` holds the batch's rows only."""

    def put(n, b):
        m = mask.reshape(mask.shape + (1,) * (n.ndim - 1))
        return b.at[rows].set(jnp.where(m, n, b[rows]))

    return jax.tree_util.tree_map(put, new, best)


@jax.jit
def _fold_keys(keys, check):
    """Raw data of ``fold_in(keys[j], check)`` for each member ``j``: the keys of one check's
    chunk. Jitted once for every fit: an unjitted ``vmap`` would be traced at every check."""
    return jax.random.key_data(jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, check))


def _take(tree, rows):
    return jax.tree_util.tree_map(lambda x: x[rows], tree)


def _fingerprint(members: Members, config: TrainConfig, mode: str) -> dict:
    """Everything that determines a run's result, for its checkpoints (never the
    budget: ``max_epochs``, ``max_seconds`` and ``patience`` may change on resumption)."""
    return {
        "library_version": library_version(),
        "model": members.describe,
        "train_config": {k: v for k, v in config.__dict__.items() if k not in RESUMABLE_CHANGES},
        "tower_mode": mode,
        "members": int(members.keys.shape[0]),
        "shared_data": members.shared_data,
        "initial_state": digest(members.states),
        "covariates": digest(members.tables),
        "train": digest(members.train),
        "validation": None if members.validation is None else digest(members.validation),
        "keys": digest(jax.random.key_data(members.keys)),
    }


def train(
    members: Members,
    config: TrainConfig,
    *,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir=None,
    checkpoint_every: int = 1,
    mesh=None,
    label: str = "train",
) -> FitResult:
    """Train every member of ``members`` under ``config``: the library's one loop.

    Args:
      members: from :func:`stack_members`.
      config: shared optimiser, schedule, penalty, budget and stopping rule
        (each member's step size and λ are in its state).
      callbacks: called with a :class:`~ttm_jax.training.callbacks.CheckReport`
        after each check and at the end (e.g. :func:`~ttm_jax.training.callbacks.progress_callback`).
      checkpoint_dir: save the loop's state to this folder every
        ``checkpoint_every`` checks and when training stops; if it already holds a
        checkpoint of this run (the same fingerprint: model, data, settings,
        keys, library version), resume from it, with the result an uninterrupted
        run would give. ``max_epochs`` (not below the epochs already trained),
        ``max_seconds`` and ``patience`` may differ. ``None``: no checkpoints.
      checkpoint_every: checks between checkpoints.
      mesh: a one-axis mesh (:func:`~ttm_jax.training.distributed.data_parallel_mesh`)
        to split every minibatch over its devices; ``None``: one device.
      label: the run's name in its progress reports (``CheckReport.label``).

    Returns:
      A :class:`~ttm_jax.training.results.FitResult` with ``r`` members
      (``[r]`` fields); member ``k`` keeps its lowest-validation parameters
      (its last ones without validation, its best finite ones if it diverged).
    """
    t0 = time.perf_counter()
    r = int(members.keys.shape[0])
    n_users, n_items, n_ratings = members.shape
    mode = resolve_tower_mode(config.tower_mode, n_users, n_items, config.batch_size,
                              config.id_updates)
    steps_per_epoch, steps_per_check, n_checks = cadence(config, n_ratings)
    validated = members.validation is not None
    if mesh is not None:
        distributed.check_mesh(mesh, config.batch_size)
    place = distributed.placer(mesh)
    host = distributed.fetcher(mesh)
    key_impl = str(jax.random.key_impl(members.keys))

    @functools.cache
    def chunk_of(n_epochs: int):
        return make_train_chunk(members.graphdef, config, mode, steps_per_epoch,
                                n_epochs * steps_per_epoch, shared_data=members.shared_data,
                                mesh=mesh, key_impl=key_impl)

    val_fn = make_validation_rmse(members.graphdef, mode, shared_data=members.shared_data)
    # The training chunk donates the states it is given (members.states, on its first
    # call): what is read from them afterwards is copied here first.
    hyper = jax.tree_util.tree_map(np.array, hyperparams_of(members.states.opt_state))
    peaks = jnp.asarray(hyper.learning_rate)
    # Host work between chunks leaves the device idle, so the step size at every check
    # (``[n_checks + 1, r]``, reported only; the optimiser computes its own) is computed
    # once, here.
    with jax.numpy_dtype_promotion("standard"):
        rates = np.asarray(jax.jit(jax.vmap(make_schedule(config, steps_per_epoch, peak=peaks)))(
            jnp.arange(n_checks + 1, dtype=jnp.int32) * steps_per_check), np.float64)

    data = tuple(place((members.tables, members.train, members.validation)))
    rest = jax.tree_util.tree_map(jnp.copy, members.states.rest)

    def member_data(rows: np.ndarray):
        if members.shared_data or rows.size == r:
            return data
        return tuple(None if x is None else place(_take(jax.device_get(x), rows)) for x in data)

    def validate(state: TrainState, data):
        """Dispatch the batch's validation RMSEs (``[a]``, on the device; ``None`` without
        validation): queued behind the chunk that made ``state``, with no host gap."""
        return None if not validated else val_fn(state.params, state.rest, data[0], data[2])

    def validation_rmse(rows: np.ndarray, pending) -> np.ndarray | None:
        if pending is None:
            return None
        rmse = np.full(r, np.inf)  # stopped rows: never an improvement
        rmse[rows] = host(pending)
        return rmse

    ckpt = None
    if checkpoint_dir is not None:
        ckpt = TrainingCheckpoint(checkpoint_dir, fingerprint=_fingerprint(members, config, mode),
                                  every=checkpoint_every)
    loop = None if ckpt is None else ckpt.restore(_initial_loop(members, r, 0))
    if loop is None:
        loop = _initial_loop(members, r, 0)
        stopping, _ = loop.stopping.update(
            None, validation_rmse(loop.rows, validate(place(members.states), data)), 0.0,
            patience=config.patience, min_delta=config.min_delta)
        loop = loop._replace(stopping=stopping, epochs=np.zeros(1), train_mse=np.full((1, r), np.nan),
                             val_rmse=(np.full((1, r), np.nan) if not validated else
                                       np.where(np.isfinite(stopping.best_rmse),
                                                stopping.best_rmse, np.nan)[None]),
                             learning_rate=rates[:1])
    else:
        if loop.epochs[-1] > config.max_epochs:
            raise ValueError(
                f"checkpoint_dir={checkpoint_dir} holds a run that has already trained "
                f"{loop.epochs[-1]:g} epochs, more than max_epochs={config.max_epochs}; "
                "resume with max_epochs of at least that, or use a new checkpoint_dir")
        present = np.zeros(r, bool)
        present[loop.rows] = True
        # More patience on resumption lets a member that stopped early go on, if
        # its row is still in the batch.
        still = present & ~loop.stopping.diverged
        if validated:
            still &= loop.stopping.since_best < config.patience
        loop = loop._replace(stopping=loop.stopping._replace(active=still), out_of_time=False)
    state = place(loop.states)
    best = jax.tree_util.tree_map(jnp.copy, place(loop.best_params))
    rows = loop.rows
    history = [loop.epochs, loop.train_mse, loop.val_rmse, loop.learning_rate]
    stopping, epochs_run = loop.stopping, loop.epochs_run
    check_data = member_data(rows)
    row_keys = members.keys[rows]
    out_of_time = False
    report = None

    def snapshot(next_check: int) -> LoopState:
        return LoopState(state, best, rows, stopping, epochs_run, *history, next_check,
                         out_of_time)

    def current_model(k: int) -> TwoTower:
        row = int(np.flatnonzero(rows == k)[0]) if k in rows else None
        params = _take(host(best), k) if row is None else _take(host(state.params), row)
        return nnx.merge(members.graphdef, params, _take(rest, k))

    def notify(finished: bool) -> None:
        nonlocal report
        report = CheckReport(
            epoch=float(history[0][-1]), max_epochs=config.max_epochs,
            train_mse=history[1][-1], val_rmse=history[2][-1], best_rmse=stopping.best_rmse,
            active=stopping.active, seconds=time.perf_counter() - t0, finished=finished,
            current_model=current_model, label=label)
        for cb in callbacks:
            cb(report)

    try:
        notify(False)
        check = loop.next_check
        while check < n_checks and stopping.active.any():
            n_epochs, epoch = check_epochs(config, check)
            lr = rates[check]
            state, mses = chunk_of(n_epochs)(state, check_data[0], check_data[1],
                                             place(_fold_keys(row_keys, check)))
            pending = validate(state, check_data)
            full_mse = np.full((r, n_epochs * steps_per_epoch), np.nan)
            full_mse[rows] = host(mses)
            was_active = stopping.active
            rmse = validation_rmse(rows, pending)
            stopping, improved = stopping.update(full_mse, rmse, epoch, patience=config.patience,
                                                 min_delta=config.min_delta)
            if improved.any():
                best = _keep_rows(place(rows), place(improved[rows]), state.params, best)
            epochs_run = np.where(was_active, epoch, epochs_run)
            shown_mse = np.full(r, np.nan)
            shown_mse[rows] = full_mse[rows].mean(axis=1)
            shown_mse[~was_active] = np.nan
            shown_val = np.full(r, np.nan) if rmse is None else np.where(was_active, rmse, np.nan)
            history = [np.append(history[0], epoch), np.vstack([history[1], shown_mse]),
                       np.vstack([history[2], shown_val]), np.vstack([history[3], lr])]
            check += 1
            if config.max_seconds is not None and time.perf_counter() - t0 > config.max_seconds:
                out_of_time = stopping.active.any()
            alive = stopping.active[rows]
            if r > 1 and alive.any() and alive.sum() <= (3 * rows.size) // 4:
                keep = np.flatnonzero(alive)
                state, rows = _take(state, place(keep)), rows[keep]
                check_data, row_keys = member_data(rows), members.keys[rows]
            finished = not stopping.active.any() or out_of_time or check == n_checks
            if ckpt is not None:
                ckpt.save(snapshot(check), force=finished)
            notify(False)
            if out_of_time:
                break
    finally:
        if report is not None:
            notify(True)

    reasons = stopping.reasons(validated, out_of_time)
    epochs_run = np.where(stopping.active, history[0][-1], epochs_run)
    best_host = jax.tree_util.tree_map(np.asarray, host(best))
    models = tuple(nnx.merge(members.graphdef, _take(best_host, k), _take(rest, k))
                   for k in range(r))
    return FitResult(
        models=models,
        history=History(*history),
        best_epoch=stopping.best_epoch.astype(np.float64),
        best_val_rmse=(np.where(np.isfinite(stopping.best_rmse), stopping.best_rmse, np.inf)
                       if validated else np.full(r, np.nan)),
        epochs_run=epochs_run.astype(np.float64),
        stop_reason=reasons,
        seconds=time.perf_counter() - t0,
        tower_mode=mode,
        learning_rate=np.asarray(hyper.learning_rate, np.float64),
        penalty_weight=np.asarray(hyper.penalty_weight, np.float64),
    )


def _initial_loop(members: Members, r: int, next_check: int) -> LoopState:
    return LoopState(
        states=members.states,
        best_params=members.states.params,
        rows=np.arange(r),
        stopping=EarlyStopping.start(r),
        epochs_run=np.zeros(r),
        epochs=np.zeros(0),
        train_mse=np.zeros((0, r)),
        val_rmse=np.zeros((0, r)),
        learning_rate=np.zeros((0, r)),
        next_check=next_check,
        out_of_time=False,
    )
