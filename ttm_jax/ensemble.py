"""Several replications of the same training problem, trained in one ``vmap``.

A rate study fits the same architecture to ``r`` independent data sets of the
same shape (same ``|Ω|``, ``n_users``, ``n_items``, ``D``). :func:`fit_ensemble`
stacks the ``r`` training states along a leading axis and runs
:func:`ttm_jax.train.make_train_chunk` under ``jax.vmap``, so one dispatch
advances every replication (the batched matrix products use the cores better
than ``r`` small ones in turn). Each replication keeps its own early stopping:
its best-validation parameters are frozen once its patience runs out, while the
stacked computation carries on until every replication has stopped. Replication
``k`` therefore ends with the parameters :func:`ttm_jax.train.fit` would return
for ``(models[k], trains[k], validations[k], keys[k])``, up to float rounding.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ttm_jax.config import TrainConfig
from ttm_jax.data import RatingData
from ttm_jax.objective import squared_error
from ttm_jax.progress import epoch_bar
from ttm_jax.towers import TwoTower, score
from ttm_jax.train import (
    Batch,
    Tables,
    cadence,
    check_epochs,
    device_arrays,
    init_train_state,
    make_schedule,
    make_train_chunk,
    resolve_tower_mode,
)

__all__ = ["EnsembleHistory", "EnsembleResult", "fit_ensemble"]


class EnsembleHistory(NamedTuple):
    """Per validation check (rows) and replication (columns).

    Attributes:
      epoch: ``[c]`` epochs trained at each check.
      train_mse: ``[c, r]`` mean training MSE since the previous check.
      val_rmse: ``[c, r]`` validation RMSE (NaN without validation).
      learning_rate: ``[c]`` step size in force.
    """

    epoch: np.ndarray
    train_mse: np.ndarray
    val_rmse: np.ndarray
    learning_rate: np.ndarray


class EnsembleResult(NamedTuple):
    """What :func:`fit_ensemble` returns (``r`` replications).

    Attributes:
      models: ``r`` trained models, each with its best-validation parameters.
      history: :class:`EnsembleHistory`.
      best_epoch: ``[r]`` epoch of each kept parameter set.
      best_val_rmse: ``[r]`` their validation RMSE (NaN without validation).
      diverged: ``[r]`` whether the replication's loss became non-finite (its
        model then holds the best parameters found before).
      epochs_run: epochs trained by the stacked computation.
      seconds: wall-clock time, compilation included.
      stop_reason: ``"max_epochs"``, ``"early_stopping"`` (every replication
        stopped), ``"diverged"`` (every replication stopped, some diverged) or
        ``"time_limit"``.
      tower_mode: ``"entity"`` or ``"rating"``, as resolved.
    """

    models: tuple[TwoTower, ...]
    history: EnsembleHistory
    best_epoch: np.ndarray
    best_val_rmse: np.ndarray
    diverged: np.ndarray
    epochs_run: float
    seconds: float
    stop_reason: str
    tower_mode: str


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def _unstack(tree, k: int):
    return jax.tree_util.tree_map(lambda x: x[k], tree)


@functools.lru_cache(maxsize=32)
def _vmapped_chunk(graphdef, config: TrainConfig, mode: str, steps_per_epoch: int, n_steps: int):
    chunk = make_train_chunk(graphdef, config, mode, steps_per_epoch, n_steps)
    return jax.jit(jax.vmap(chunk, in_axes=(0, 0, 0, 0, None)))


@functools.lru_cache(maxsize=32)
def _vmapped_val_rmse(graphdef, mode: str):
    def one(params, rest, tables: Tables, val: Batch):
        model = nnx.merge(graphdef, params, rest)
        if mode == "entity":
            pred = score(
                model.embed_users(tables.user_x)[val.user_ids],
                model.embed_items(tables.item_x)[val.item_ids],
                model.offset[...],
            )
        else:
            # Embedding only the validation rows: with many entities (iid pairs)
            # this costs |validation| tower passes instead of n_users + n_items.
            pred = model(tables.user_x[val.user_ids], tables.item_x[val.item_ids])
        return jnp.sqrt(squared_error(pred, val.ratings))

    return jax.jit(jax.vmap(one))


class _Stopping(NamedTuple):
    """Per-member early-stopping state of a batched fit, each ``[r]``."""

    best_rmse: np.ndarray
    best_epoch: np.ndarray
    since_best: np.ndarray
    active: np.ndarray
    diverged: np.ndarray

    @classmethod
    def start(cls, r: int) -> _Stopping:
        return cls(np.full(r, math.inf), np.zeros(r), np.zeros(r, np.int64), np.ones(r, bool),
                   np.zeros(r, bool))

    def update(self, mses: np.ndarray, rmse: np.ndarray | None, epoch: float,
               config: TrainConfig) -> tuple[_Stopping, np.ndarray]:
        """One validation check: ``mses [r, steps]``, ``rmse [r]`` (``None``: no
        validation, so every healthy member keeps its latest parameters).
        Returns the new state and the mask of members whose parameters to keep."""
        bad = self.active & ~np.isfinite(mses).all(axis=1)
        if rmse is not None:
            bad |= self.active & ~np.isfinite(rmse)
        diverged, active = self.diverged | bad, self.active & ~bad
        if rmse is None:
            return self._replace(best_epoch=np.where(active, epoch, self.best_epoch),
                                 active=active, diverged=diverged), active
        improved = active & (rmse < self.best_rmse - config.min_delta)
        since_best = np.where(improved, 0, self.since_best + active)
        return _Stopping(
            best_rmse=np.where(improved, rmse, self.best_rmse),
            best_epoch=np.where(improved, epoch, self.best_epoch),
            since_best=since_best,
            active=active & (since_best < config.patience),
            diverged=diverged,
        ), improved


@jax.jit
def _keep_where(mask, new, old):
    def pick(a, b):
        return jnp.where(mask.reshape(mask.shape + (1,) * (a.ndim - 1)), a, b)

    return jax.tree_util.tree_map(pick, new, old)


def _check_same_shapes(name: str, parts: Sequence[RatingData]) -> None:
    ref = parts[0]
    for k, part in enumerate(parts[1:], start=1):
        if (part.user_features.shape, part.item_features.shape, part.n_ratings) != (
            ref.user_features.shape, ref.item_features.shape, ref.n_ratings
        ):
            raise ValueError(
                f"{name}[{k}] is {part!r} but {name}[0] is {ref!r}; replications trained "
                "together need equal n_users, n_items, D_u, D_i and |Ω|"
            )


def fit_ensemble(
    models: Sequence[TwoTower],
    trains: Sequence[RatingData],
    validations: Sequence[RatingData] | None = None,
    config: TrainConfig | None = None,
    *,
    keys: Sequence[jax.Array],
    progress: bool | None = None,
) -> EnsembleResult:
    """Train ``r`` replications at once, each as :func:`ttm_jax.train.fit` would.

    Args:
      models: ``r`` models of one architecture (e.g. from ``init_model`` with
        different keys and data); not modified.
      trains: ``r`` training sets of equal shapes (tables ``[n_users, D_u]``,
        ``[n_items, D_i]``, ``|Ω|``).
      validations: ``r`` validation sets of equal shapes, each sharing its
        training set's tables, for early stopping; ``None`` trains for
        ``config.max_epochs``.
      config: optimiser, schedule, penalty, stopping rule, shared (default
        ``TrainConfig()``).
      keys: ``r`` ``jax.random`` keys for the minibatch draws (replication
        ``k`` draws the minibatches ``fit(..., key=keys[k])`` would).
      progress: progress bar (default: when stderr is a terminal).

    Returns:
      An :class:`EnsembleResult`.

    Raises:
      ValueError: for an empty ensemble, mismatched lengths, shapes or
        architectures.
    """
    config = TrainConfig() if config is None else config
    r = len(models)
    if r == 0:
        raise ValueError("models is empty; pass at least one model")
    if len(trains) != r or len(keys) != r or (validations is not None and len(validations) != r):
        raise ValueError(
            f"models, trains, keys (and validations) must have one entry per replication; got "
            f"{r}, {len(trains)}, {len(keys)}"
            + ("" if validations is None else f" and {len(validations)}")
        )
    _check_same_shapes("trains", trains)
    if validations is not None:
        _check_same_shapes("validations", validations)
        for k, (t, v) in enumerate(zip(trains, validations)):
            if v.user_features.shape != t.user_features.shape or (
                v.item_features.shape != t.item_features.shape
            ):
                raise ValueError(f"validations[{k}] must share trains[{k}]'s covariate tables")
    graphdef = nnx.graphdef(models[0])
    for k, m in enumerate(models[1:], start=1):
        if nnx.graphdef(m) != graphdef:
            raise ValueError(f"models[{k}] has a different architecture from models[0]")
    if trains[0].user_features.shape[1] != models[0].user_tower.in_features or (
        trains[0].item_features.shape[1] != models[0].item_tower.in_features
    ):
        raise ValueError("trains' covariate widths do not match the models' towers")

    t0 = time.perf_counter()
    train0 = trains[0]
    mode = resolve_tower_mode(config.tower_mode, train0.n_users, train0.n_items, config.batch_size)
    steps_per_epoch, steps_per_check, n_checks = cadence(config, train0.n_ratings)

    # The same initial state fit() builds, one per replication, stacked on axis 0.
    inits = [init_train_state(m, config, steps_per_epoch) for m in models]
    graphdef = inits[0][0]
    state = _stack([st for _, st in inits])
    params, rest = state.params, state.rest
    schedule = make_schedule(config, steps_per_epoch)
    chunk_of = functools.cache(lambda n_epochs: _vmapped_chunk(
        graphdef, config, mode, steps_per_epoch, n_epochs * steps_per_epoch))
    tables, train_b = _stack([device_arrays(t) for t in trains])
    val_b = None if validations is None else _stack([device_arrays(v)[1] for v in validations])
    val_fn = _vmapped_val_rmse(graphdef, mode)
    lam = jnp.asarray(config.penalty_weight, jnp.float32)
    base_keys = jnp.stack(list(keys))
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))

    best_params = params
    stop = _Stopping.start(r)
    epochs, lrs, mse_rows, val_rows = [], [], [], []
    stop_reason = "max_epochs"
    bar = epoch_bar(config.max_epochs, f"fit ×{r}", progress)
    try:
        for check in range(n_checks):
            with jax.numpy_dtype_promotion("standard"):
                lr = float(schedule(check * steps_per_check))
            n_epochs, epoch = check_epochs(config, check)
            state, mses = chunk_of(n_epochs)(state, tables, train_b, fold(base_keys, check), lam)
            mses = np.asarray(mses)
            if val_b is not None:
                rmse = np.asarray(val_fn(state.params, state.rest, tables, val_b), np.float64)
                stop, improved = stop.update(mses, rmse, epoch, config)
            else:
                rmse = np.full(r, math.nan)
                stop, improved = stop.update(mses, None, epoch, config)
            if improved.any():
                best_params = _keep_where(jnp.asarray(improved), state.params, best_params)
            epochs.append(epoch)
            lrs.append(lr)
            mse_rows.append(mses.mean(axis=1))
            val_rows.append(rmse)
            bar.update(n_epochs)
            if val_b is not None:
                bar.set_postfix(active=int(stop.active.sum()), val_rmse=f"{np.nanmean(rmse):.4f}")
            if not stop.active.any():
                stop_reason = "diverged" if stop.diverged.any() else "early_stopping"
                break
            if config.max_seconds is not None and time.perf_counter() - t0 > config.max_seconds:
                stop_reason = "time_limit"
                break
    finally:
        bar.close()

    trained = tuple(
        nnx.merge(graphdef, _unstack(best_params, k), _unstack(rest, k)) for k in range(r)
    )
    history = EnsembleHistory(
        np.asarray(epochs, np.float64),
        np.asarray(mse_rows, np.float64).reshape(-1, r),
        np.asarray(val_rows, np.float64).reshape(-1, r),
        np.asarray(lrs, np.float64),
    )
    return EnsembleResult(
        models=trained,
        history=history,
        best_epoch=stop.best_epoch,
        best_val_rmse=stop.best_rmse if val_b is not None else np.full(r, math.nan),
        diverged=stop.diverged,
        epochs_run=epochs[-1] if epochs else 0.0,
        seconds=time.perf_counter() - t0,
        stop_reason=stop_reason,
        tower_mode=mode,
    )

