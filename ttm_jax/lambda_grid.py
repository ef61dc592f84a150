"""Choose λ by training the whole grid at once, vectorised over the penalty weight.

The paper picks λ from ``{10^(-6 + k/3) : k = 0..24}`` by validation RMSE
(SPEC §2). Every grid point trains the same architecture on the same data from
the same initial parameters and minibatch draws; only ``λ`` differs. Since the
jitted chunk of :func:`ttm_jax.train.make_train_chunk` takes ``lam`` as an array
argument, :func:`fit_lambda_grid` ``vmap``s it over ``(state, lam)`` with the
covariate tables, Ω and the key shared (not copied ``g`` times), so one
dispatch advances all ``g`` fits. Each λ keeps its own early stopping, as in
:mod:`ttm_jax.ensemble`: its best-validation parameters freeze once its
patience runs out. Grid point ``k`` ends with the parameters
``fit(model, train, validation, config.replace(penalty_weight=lambdas[k]), key=key)``
would return, up to float rounding.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ttm_jax.config import TrainConfig
from ttm_jax.data import RatingData
from ttm_jax.ensemble import _stack, _Stopping, _unstack
from ttm_jax.progress import epoch_bar
from ttm_jax.towers import TwoTower
from ttm_jax.train import (
    _val_rmse,
    cadence,
    check_epochs,
    device_arrays,
    init_train_state,
    make_train_chunk,
    resolve_tower_mode,
)

__all__ = ["PAPER_LAMBDAS", "LambdaGridResult", "fit_lambda_grid"]

#: The paper's grid ``{10^(-6 + k/3) : k = 0..24}``, ``[25]`` float64 (1e-6 … 1e2).
PAPER_LAMBDAS = 10.0 ** (-6.0 + np.arange(25) / 3.0)


class LambdaGridResult(NamedTuple):
    """What :func:`fit_lambda_grid` returns for a grid of ``g`` values of λ.

    Attributes:
      lambdas: ``[g]`` the grid, as given.
      val_rmse: ``[g]`` best validation RMSE of each λ (``inf`` if it diverged
        before its first check).
      best_epoch: ``[g]`` epoch of each λ's kept parameters.
      diverged: ``[g]`` whether that λ's loss became non-finite.
      best_index: index of the chosen λ (lowest ``val_rmse``; ties: the first).
      best_lambda: ``lambdas[best_index]``.
      model: the model for the chosen λ, with its best-validation parameters.
      history_val_rmse: ``[c, g]`` validation RMSE at each check (NaN once a
        λ's early stopping has ended its training).
      history_epoch: ``[c]`` epochs trained at each check.
      epochs_run: epochs trained by the stacked computation.
      seconds: wall-clock time, compilation included.
      stop_reason: ``"max_epochs"``, ``"early_stopping"`` (every λ stopped) or
        ``"time_limit"``.
      tower_mode: ``"entity"`` or ``"rating"``, as resolved.
    """

    lambdas: np.ndarray
    val_rmse: np.ndarray
    best_epoch: np.ndarray
    diverged: np.ndarray
    best_index: int
    best_lambda: float
    model: TwoTower
    history_val_rmse: np.ndarray
    history_epoch: np.ndarray
    epochs_run: float
    seconds: float
    stop_reason: str
    tower_mode: str


@functools.lru_cache(maxsize=32)
def _grid_chunk(graphdef, config: TrainConfig, mode: str, steps_per_epoch: int, n_steps: int):
    chunk = make_train_chunk(graphdef, config, mode, steps_per_epoch, n_steps)
    # Tables, Ω and the key are shared: the g fits differ only in state and λ.
    return jax.jit(jax.vmap(chunk, in_axes=(0, None, None, None, 0)))


def _take(rows, x):
    return x[rows]


@jax.jit
def _keep_rows(rows, mask, new, best):
    """``best[rows[j]] = new[j]`` where ``mask[j]``: ``new`` holds the batch's rows only."""

    def put(n, b):
        m = mask.reshape(mask.shape + (1,) * (n.ndim - 1))
        return b.at[rows].set(jnp.where(m, n, b[rows]))

    return jax.tree_util.tree_map(put, new, best)


@functools.lru_cache(maxsize=32)
def _grid_val_rmse(graphdef):
    # train.fit's own validation scorer, vmapped over the grid's parameters, so a
    # grid point reproduces fit()'s early-stopping decisions.
    return jax.jit(jax.vmap(functools.partial(_val_rmse, graphdef), in_axes=(0, 0, None, None)))


def _check_lambdas(lambdas) -> np.ndarray:
    lam = np.asarray(lambdas, np.float64)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"lambdas must be a non-empty 1-D sequence of λ values; got shape "
                         f"{lam.shape}")
    if not (np.isfinite(lam).all() and (lam >= 0).all()):
        raise ValueError(f"lambdas must be finite and >= 0; got {lam.tolist()}")
    return lam


def fit_lambda_grid(
    model: TwoTower,
    train: RatingData,
    validation: RatingData,
    config: TrainConfig | None = None,
    *,
    lambdas: Sequence[float] | np.ndarray = PAPER_LAMBDAS,
    key: jax.Array,
    progress: bool | None = None,
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 1,
) -> LambdaGridResult:
    """Train ``model`` once per λ in ``lambdas``, all in one ``vmap``; keep the best λ.

    Args:
      model: the initial :class:`TwoTower` shared by every grid point; not modified.
      train: training ratings Ω (tables ``[n_users, D_u]``, ``[n_items, D_i]``).
      validation: ratings for early stopping and for choosing λ, sharing
        ``train``'s covariate tables.
      config: training configuration; its ``penalty_weight`` is replaced by
        each λ (default ``TrainConfig()``). Its penalty must be applied through
        the loss or the proximal step (not ``optimizer="adamw"``, whose decay
        is a compile-time constant) and not ``"none"``.
      lambdas: ``[g]`` values of λ, each finite and ``>= 0`` (default: the
        paper's 25-point grid :data:`PAPER_LAMBDAS`).
      key: ``jax.random`` key for the minibatch draws (the same for every λ).
      progress: progress bar (default: when stderr is a terminal).
      checkpoint_dir: save the grid's training state to this folder every
        ``checkpoint_every`` validation checks and when it stops (atomically,
        see :class:`ttm_jax.checkpoint.GridCheckpointer`); if the folder
        already holds a checkpoint of this run (same data, settings, grid and
        key), resume from it, with the result an uninterrupted run would give.
        ``max_epochs``, ``max_seconds`` and ``patience`` may differ.
        ``None``: no checkpoints.
      checkpoint_every: validation checks between checkpoints. A save writes
        every λ's parameters and Adam moments (tens of MB for the paper's grid
        of 25 and towers of 200), so save less often than every check when
        checks are quick.

    Returns:
      A :class:`LambdaGridResult`.

    Raises:
      ValueError: empty or non-finite/negative ``lambdas``, a missing
        ``validation``, a ``config`` in which λ cannot vary, or a
        ``checkpoint_dir`` holding another run.
      ttm_jax.checkpoint.CheckpointError: a damaged checkpoint.
    """
    config = TrainConfig() if config is None else config
    lam_np = _check_lambdas(lambdas)
    if validation is None:
        raise ValueError("validation is required: λ is chosen by validation RMSE")
    if config.penalty == "none":
        raise ValueError("config.penalty='none' makes every λ identical; use 'l2' or 'l1'")
    if config.optimizer == "adamw":
        raise ValueError("config.optimizer='adamw' fixes λ at compile time; use 'adam' or 'sgd'")
    if train.user_features.shape[1] != model.user_tower.in_features or (
        train.item_features.shape[1] != model.item_tower.in_features
    ):
        raise ValueError("train's covariate widths do not match the model's towers")
    if (validation.user_features.shape != train.user_features.shape
            or validation.item_features.shape != train.item_features.shape):
        raise ValueError("validation must share train's covariate tables")

    g = lam_np.size
    t0 = time.perf_counter()
    mode = resolve_tower_mode(config.tower_mode, train.n_users, train.n_items, config.batch_size)
    steps_per_epoch, steps_per_check, n_checks = cadence(config, train.n_ratings)

    graphdef, state0 = init_train_state(model, config, steps_per_epoch)
    state = _stack([state0] * g)
    rest = state.rest
    chunk_of = functools.cache(lambda n_epochs: _grid_chunk(
        graphdef, config, mode, steps_per_epoch, n_epochs * steps_per_epoch))
    val_fn = _grid_val_rmse(graphdef)
    tables, train_b = device_arrays(train)
    val_b = device_arrays(validation)[1]
    lam = jnp.asarray(lam_np, jnp.float32)

    best_params = state.params
    stop = _Stopping.start(g)
    # Grid indices of the rows of the batched state. Once a quarter of the rows
    # have stopped they are dropped (large λ stop within one patience window), so
    # the cost follows the λ still training, at the price of one recompile each
    # time (at most ~10 for the paper's 25 points).
    rows = np.arange(g)
    epochs, val_rows = [], []
    stop_reason, first_check, ckpt = "max_epochs", 0, None
    if checkpoint_dir is not None:
        from ttm_jax.checkpoint import GridCheckpointer, GridProgress

        ckpt = GridCheckpointer(checkpoint_dir, every=checkpoint_every, config=config,
                                train=train, validation=validation, key=key, mode=mode,
                                lambdas=lam_np)
        saved = ckpt.restore(state, best_params)
        if saved is not None:
            state, best_params, rows = saved.state, saved.best_params, saved.rows
            lam = lam[jnp.asarray(rows)]
            stop = _Stopping(**{f: getattr(saved, f) for f in _Stopping._fields})
            epochs, val_rows = saved.epochs.tolist(), list(saved.val_rmse)
            first_check = saved.next_check
            if saved.stop_reason == "early_stopping":
                first_check, stop_reason = n_checks, saved.stop_reason  # it had finished

    def checkpoint(next_check: int, reason: str = "", force: bool = False) -> None:
        if ckpt is not None:
            ckpt.save(GridProgress(state, best_params, rows, **stop._asdict(),
                                   epochs=np.asarray(epochs, np.float64),
                                   val_rmse=np.asarray(val_rows, np.float64).reshape(-1, g),
                                   next_check=next_check, stop_reason=reason), force=force)

    bar = epoch_bar(config.max_epochs, f"λ grid ×{g}", progress)
    bar.update(min(first_check * config.eval_every_epochs, config.max_epochs))
    try:
        for check in range(first_check, n_checks):
            n_epochs, epoch = check_epochs(config, check)
            state, mses = chunk_of(n_epochs)(state, tables, train_b,
                                             jax.random.fold_in(key, check), lam)
            rmse = np.full(g, np.nan)
            rmse[rows] = np.asarray(val_fn(state.params, state.rest, tables, val_b), np.float64)
            mses_g = np.zeros((g, mses.shape[1]))
            mses_g[rows] = np.asarray(mses)
            stop, improved = stop.update(mses_g, np.where(np.isnan(rmse), np.inf, rmse), epoch,
                                         config)
            if improved.any():
                best_params = _keep_rows(jnp.asarray(rows), jnp.asarray(improved[rows]),
                                         state.params, best_params)
            epochs.append(epoch)
            val_rows.append(rmse)
            bar.update(n_epochs)
            bar.set_postfix(active=int(stop.active.sum()), best=f"{stop.best_rmse.min():.4f}")
            if not stop.active.any():
                stop_reason = "early_stopping"
                checkpoint(check + 1, stop_reason, force=True)
                break
            alive = stop.active[rows]
            if alive.sum() <= (3 * rows.size) // 4:
                keep = np.flatnonzero(alive)
                state = jax.tree_util.tree_map(functools.partial(_take, keep), state)
                lam, rows = lam[keep], rows[keep]
            if config.max_seconds is not None and time.perf_counter() - t0 > config.max_seconds:
                stop_reason = "time_limit"
                checkpoint(check + 1, stop_reason, force=True)
                break
            checkpoint(check + 1, force=check + 1 == n_checks)
    finally:
        bar.close()

    best = int(np.argmin(stop.best_rmse))
    chosen = nnx.merge(graphdef, _unstack(best_params, best), _unstack(rest, best))
    return LambdaGridResult(
        lambdas=lam_np,
        val_rmse=stop.best_rmse,
        best_epoch=stop.best_epoch,
        diverged=stop.diverged,
        best_index=best,
        best_lambda=float(lam_np[best]),
        model=chosen,
        history_val_rmse=np.asarray(val_rows, np.float64).reshape(-1, g),
        history_epoch=np.asarray(epochs, np.float64),
        epochs_run=epochs[-1] if epochs else 0.0,
        seconds=time.perf_counter() - t0,
        stop_reason=stop_reason,
        tower_mode=mode,
    )
