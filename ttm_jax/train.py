"""Minibatch training of the two-tower model on eq. 2, with early stopping.

The core is pure: :func:`make_train_step` returns a jitted function
``(state, tables, batch, lam) -> (state, mse)`` over arrays only, built from
``nnx.split`` state (the functional pattern of Flax's NNX examples), and
:func:`make_train_chunk` runs ``n_steps`` of it per dispatch with
``jax.lax.scan``, sampling each minibatch uniformly (with replacement) from Ω
inside the scan. :func:`fit` is the Python loop around it: validation checks,
early stopping that restores the best parameters, a wall-clock budget, a
progress bar, and a clear error when the loss turns non-finite.
"""

from __future__ import annotations

import functools
import math
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ttm_jax.config import ModelConfig, TrainConfig
from ttm_jax.data import RatingData
from ttm_jax.objective import penalty, soft_threshold, squared_error
from ttm_jax.progress import epoch_bar
from ttm_jax.towers import TwoTower, score

__all__ = [
    "Tables",
    "Batch",
    "TrainState",
    "History",
    "FitResult",
    "TrainingDivergedError",
    "init_model",
    "init_train_state",
    "device_arrays",
    "make_optimizer",
    "make_schedule",
    "make_train_step",
    "make_train_chunk",
    "resolve_tower_mode",
    "Cadence",
    "cadence",
    "check_epochs",
    "fit",
    "refit",
]


class Tables(NamedTuple):
    """Covariate tables on device: ``user_x [n_users, D_u]``, ``item_x [n_items, D_i]``."""

    user_x: jax.Array
    item_x: jax.Array


class Batch(NamedTuple):
    """Aligned ratings: ``user_ids [B]``, ``item_ids [B]`` (int32), ``ratings [B]`` (float32)."""

    user_ids: jax.Array
    item_ids: jax.Array
    ratings: jax.Array


class TrainState(NamedTuple):
    """Everything that changes during training, as arrays.

    ``params`` is the ``nnx.Param`` state of the model; ``rest`` its
    non-trainable state (standardisation, offset), carried so that the step
    can rebuild the model with ``nnx.merge``.
    """

    params: nnx.State
    rest: nnx.State
    opt_state: optax.OptState
    step: jax.Array


class History(NamedTuple):
    """One entry per validation check: ``epoch``, mean training MSE since the
    last check (the data term of eq. 2, without the penalty), validation RMSE
    (NaN without a validation set) and the step size in force."""

    epoch: np.ndarray
    train_mse: np.ndarray
    val_rmse: np.ndarray
    learning_rate: np.ndarray


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
      model: the trained model, holding the best parameters found (lowest
        validation RMSE; the last ones without a validation set).
      history: per-check curves.
      best_epoch: epoch of the kept parameters.
      best_val_rmse: their validation RMSE (NaN without validation).
      epochs_run: epochs trained in all.
      seconds: wall-clock training time, compilation included.
      stop_reason: ``"max_epochs"``, ``"early_stopping"`` or ``"time_limit"``.
      tower_mode: ``"entity"`` or ``"rating"``, as resolved.
    """

    model: TwoTower
    history: History
    best_epoch: float
    best_val_rmse: float
    epochs_run: float
    seconds: float
    stop_reason: str
    tower_mode: str


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite.

    Attributes:
      result: a :class:`FitResult` whose model holds the best parameters found
        before the divergence (the initial ones if it diverged at once).
    """

    def __init__(self, message: str, result: FitResult):
        super().__init__(message)
        self.result = result


def init_model(
    config: ModelConfig, train: RatingData, *, key: jax.Array
) -> TwoTower:
    """A fresh :class:`TwoTower` sized for ``train``, its preprocessing fitted to it.

    With ``config.standardize``, covariate means and standard deviations come
    from the users and items that occur in ``train`` (constant columns keep
    scale 1). With ``config.center_ratings``, the offset is ``mean(r)`` over Ω.
    """
    model = TwoTower(
        train.user_features.shape[1],
        train.item_features.shape[1],
        hidden=config.hidden,
        embedding_dim=config.embedding_dim,
        activation=config.activation,
        rngs=nnx.Rngs(params=key),
    )
    if config.standardize:
        for tower, table, ids in (
            (model.user_tower, train.user_features, train.user_ids),
            (model.item_tower, train.item_features, train.item_ids),
        ):
            rows = table[np.unique(ids)]
            mean = rows.mean(axis=0)
            std = rows.std(axis=0)
            tower.set_standardization(mean, np.where(std > 1e-8, std, 1.0))
    if config.center_ratings:
        model.offset[...] = jnp.asarray(train.ratings.mean(), jnp.float32)
    return model


def make_schedule(config: TrainConfig, steps_per_epoch: int) -> optax.Schedule:
    """Step size per step: linear warm-up, ``decay_begin_epochs`` at ``lr``, then
    ``lr · decay_rate^((epoch − begin)/decay_epochs)`` floored at ``min_learning_rate``
    (the paper: 0.01, 0.9 per epoch, floor 0.005)."""
    decay = optax.exponential_decay(
        init_value=config.learning_rate,
        transition_steps=max(1, int(round(config.decay_epochs * steps_per_epoch))),
        transition_begin=int(round(config.decay_begin_epochs * steps_per_epoch)),
        decay_rate=config.decay_rate,
        end_value=config.min_learning_rate if config.decay_rate < 1 else None,
    )
    warmup_steps = int(round(config.warmup_epochs * steps_per_epoch))
    if warmup_steps == 0:
        return decay
    warm = optax.linear_schedule(0.0, config.learning_rate, warmup_steps)
    return optax.join_schedules([warm, decay], [warmup_steps])


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """The optax transformation for ``config`` (clipping, then the optimiser)."""
    schedule = make_schedule(config, steps_per_epoch)
    if config.optimizer == "adam":
        opt = optax.adam(schedule)
    elif config.optimizer == "adamw":
        opt = optax.adamw(schedule, weight_decay=config.penalty_weight)
    else:
        opt = optax.sgd(schedule)
    if config.grad_clip is not None:
        opt = optax.chain(optax.clip_by_global_norm(config.grad_clip), opt)
    return opt


class Cadence(NamedTuple):
    """How a run's steps are grouped: ``steps_per_epoch = ⌈|Ω| / B⌉``, the steps
    run per dispatch between validation checks (``eval_every_epochs`` epochs), and
    the number of checks that ``max_epochs`` allows."""

    steps_per_epoch: int
    steps_per_check: int
    n_checks: int


def check_epochs(config: TrainConfig, check: int) -> tuple[int, float]:
    """Epochs trained before validation check ``check`` (0-based), and the epoch
    count at that check: ``eval_every_epochs`` each, except that the last check
    takes only what remains of ``max_epochs``, so that a run trains exactly
    ``max_epochs`` epochs whether or not they are a multiple of
    ``eval_every_epochs`` (that last, shorter chunk compiles once more)."""
    start = check * config.eval_every_epochs
    n = min(config.eval_every_epochs, config.max_epochs - start)
    return n, float(start + n)


def cadence(config: TrainConfig, n_ratings: int) -> Cadence:
    """The :class:`Cadence` of training ``config`` on ``n_ratings`` ratings (``|Ω|``)."""
    steps_per_epoch = max(1, math.ceil(n_ratings / config.batch_size))
    return Cadence(steps_per_epoch, steps_per_epoch * config.eval_every_epochs,
                   math.ceil(config.max_epochs / config.eval_every_epochs))


def resolve_tower_mode(mode: str, n_users: int, n_items: int, batch_size: int) -> str:
    """``"auto"`` → ``"entity"`` when computing every tower output once per step
    is no dearer than twice per rating (``n_users + n_items <= 2 B``), else ``"rating"``."""
    if mode != "auto":
        return mode
    return "entity" if n_users + n_items <= 2 * batch_size else "rating"


def _loss_fn(graphdef, config: TrainConfig, mode: str):
    # AdamW and the proximal L1 step apply λ outside the gradient.
    use_penalty = config.penalty != "none" and config.optimizer != "adamw" and not config.proximal

    def loss(params, rest, tables: Tables, batch: Batch, lam):
        model = nnx.merge(graphdef, params, rest)
        if mode == "entity":
            u_emb = model.embed_users(tables.user_x)
            i_emb = model.embed_items(tables.item_x)
            pred = score(u_emb[batch.user_ids], i_emb[batch.item_ids], model.offset[...])
        else:
            pred = model(tables.user_x[batch.user_ids], tables.item_x[batch.item_ids])
        mse = squared_error(pred, batch.ratings)
        total = mse + lam * penalty(params, config.penalty) if use_penalty else mse
        return total, mse

    return loss


def _step_body(graphdef, config: TrainConfig, mode: str, tx: optax.GradientTransformation,
               schedule: optax.Schedule):
    grad_fn = jax.value_and_grad(_loss_fn(graphdef, config, mode), has_aux=True)

    def step(state: TrainState, tables: Tables, batch: Batch, lam):
        (_, mse), grads = grad_fn(state.params, state.rest, tables, batch, lam)
        # optax mixes int step counts with float decay rates, which strict
        # promotion (on in the tests, to check this library) would refuse.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            lr = jnp.asarray(schedule(state.step), jnp.float32)
        if config.proximal:
            params = soft_threshold(params, lr * lam)
        return TrainState(params, state.rest, opt_state, state.step + 1), mse

    return step


@functools.lru_cache(maxsize=64)
def make_train_step(graphdef, config: TrainConfig, mode: str, steps_per_epoch: int):
    """A jitted ``step(state, tables, batch, lam) -> (state, mse)``.

    Args:
      graphdef: the model's ``nnx.GraphDef`` (from ``nnx.split``).
      config: training configuration (optimiser, schedule, penalty).
      mode: ``"entity"`` or ``"rating"`` (see :func:`resolve_tower_mode`).
      steps_per_epoch: sets the schedule's time scale.

    ``lam`` is ``λ`` as a float32 scalar array, an argument rather than a
    constant so that one compiled step serves (and ``vmap``s over) a grid of λ.
    Cached: the same arguments return the same compiled function.
    """
    tx = make_optimizer(config, steps_per_epoch)
    schedule = make_schedule(config, steps_per_epoch)
    return jax.jit(_step_body(graphdef, config, mode, tx, schedule))


@functools.lru_cache(maxsize=64)
def make_train_chunk(graphdef, config: TrainConfig, mode: str, steps_per_epoch: int,
                     n_steps: int):
    """A jitted ``chunk(state, tables, train, key, lam) -> (state, mse [n_steps])``.

    Runs ``n_steps`` training steps in one dispatch (``lax.scan``); step ``t``
    draws ``batch_size`` positions of Ω uniformly with replacement from
    ``fold_in(key, t)``. ``train`` is the whole training :class:`Batch` (``[|Ω|]``).
    """
    tx = make_optimizer(config, steps_per_epoch)
    schedule = make_schedule(config, steps_per_epoch)
    step = _step_body(graphdef, config, mode, tx, schedule)
    batch_size = config.batch_size

    def chunk(state: TrainState, tables: Tables, train: Batch, key, lam):
        n = train.ratings.shape[0]

        def body(state, t):
            idx = jax.random.randint(jax.random.fold_in(key, t), (batch_size,), 0, n)
            batch = Batch(train.user_ids[idx], train.item_ids[idx], train.ratings[idx])
            return step(state, tables, batch, lam)

        return jax.lax.scan(body, state, jnp.arange(n_steps, dtype=jnp.int32))

    return jax.jit(chunk)


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _val_rmse(graphdef, params, rest, tables: Tables, val: Batch):
    model = nnx.merge(graphdef, params, rest)
    pred = score(
        model.embed_users(tables.user_x)[val.user_ids],
        model.embed_items(tables.item_x)[val.item_ids],
        model.offset[...],
    )
    return jnp.sqrt(squared_error(pred, val.ratings))


def _to_batch(data: RatingData) -> Batch:
    return Batch(jnp.asarray(data.user_ids), jnp.asarray(data.item_ids), jnp.asarray(data.ratings))


def device_arrays(data: RatingData) -> tuple[Tables, Batch]:
    """``data`` as device arrays: its covariate :class:`Tables` and all of Ω as one :class:`Batch`."""
    return Tables(jnp.asarray(data.user_features), jnp.asarray(data.item_features)), _to_batch(data)


def init_train_state(model: TwoTower, config: TrainConfig, steps_per_epoch: int):
    """``(graphdef, TrainState)`` at step 0: ``model`` split by ``nnx.split`` into its
    ``nnx.Param`` state and the rest, with fresh optimiser state for ``config``."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = make_optimizer(config, steps_per_epoch)
    # optax's init mixes int and float scalars, which strict promotion refuses.
    with jax.numpy_dtype_promotion("standard"):
        state = TrainState(params, rest, tx.init(params), jnp.zeros((), jnp.int32))
    return graphdef, state


def _check_compatible(train: RatingData, validation: RatingData | None, model: TwoTower) -> None:
    if train.user_features.shape[1] != model.user_tower.in_features:
        raise ValueError(
            f"train.user_features has {train.user_features.shape[1]} columns but the model's "
            f"user tower expects {model.user_tower.in_features}"
        )
    if train.item_features.shape[1] != model.item_tower.in_features:
        raise ValueError(
            f"train.item_features has {train.item_features.shape[1]} columns but the model's "
            f"item tower expects {model.item_tower.in_features}"
        )
    if validation is not None and (
        validation.user_features is not train.user_features
        and not np.array_equal(validation.user_features, train.user_features)
        or validation.item_features is not train.item_features
        and not np.array_equal(validation.item_features, train.item_features)
    ):
        raise ValueError(
            "validation must share train's covariate tables (build both with random_split or "
            "cold_start_split, or RatingData.subset of one data set)"
        )


def fit(
    model: TwoTower,
    train: RatingData,
    validation: RatingData | None = None,
    config: TrainConfig | None = None,
    *,
    key: jax.Array,
    progress: bool | None = None,
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 1,
    mesh=None,
) -> FitResult:
    """Train ``model`` on ``train`` by minibatch stochastic gradients on eq. 2.

    Args:
      model: a :class:`TwoTower` (e.g. from :func:`init_model`); not modified.
      train: the training ratings Ω.
      validation: ratings for early stopping (sharing ``train``'s covariate
        tables); ``None`` trains for ``config.max_epochs``.
      config: optimiser, schedule, penalty and stopping rule (default ``TrainConfig()``).
      key: ``jax.random`` key for the minibatch draws.
      progress: show a progress bar (default: when stderr is a terminal).
      checkpoint_dir: save the training state to this folder every
        ``checkpoint_every`` validation checks and when training stops
        (atomically, see :mod:`ttm_jax.checkpoint`); if it already holds a
        checkpoint of this run (same data, settings and key), resume from it.
        ``max_epochs``, ``max_seconds`` and ``patience`` may differ, so a run
        can be continued for more epochs. ``None``: no checkpoints.
      checkpoint_every: validation checks between checkpoints.
      mesh: a one-axis ``jax.sharding.Mesh`` to train data-parallel over its
        devices (see :mod:`ttm_jax.parallel`); ``None``: one device.

    Returns:
      A :class:`FitResult`; ``result.model`` holds the best parameters.

    Raises:
      TrainingDivergedError: the loss became NaN/inf; its ``result`` keeps the
        best parameters found before that.

    Example:
      >>> from ttm_jax import ModelConfig, TrainConfig, make_synthetic, random_split
      >>> data, _ = make_synthetic(200, 200, 5000, seed=0)
      >>> split = random_split(data, 0.3, 0.2, seed=0)
      >>> model = init_model(ModelConfig(hidden=(32,)), split.train, key=jax.random.key(0))
      >>> res = fit(model, split.train, split.validation, TrainConfig(max_epochs=20),
      ...           key=jax.random.key(1), progress=False)
    """
    config = TrainConfig() if config is None else config
    _check_compatible(train, validation, model)
    t0 = time.perf_counter()
    mode = resolve_tower_mode(config.tower_mode, train.n_users, train.n_items, config.batch_size)
    steps_per_epoch, steps_per_check, n_checks = cadence(config, train.n_ratings)

    graphdef, state = init_train_state(model, config, steps_per_epoch)
    schedule = make_schedule(config, steps_per_epoch)
    if mesh is None:
        place, host, chunk_key = jnp.asarray, np.asarray, (lambda k: k)

        @functools.cache
        def chunk_of(n_epochs):
            return make_train_chunk(graphdef, config, mode, steps_per_epoch,
                                    n_epochs * steps_per_epoch)
    else:
        from ttm_jax import parallel

        place = functools.partial(parallel.replicate, mesh=mesh)
        host = parallel.local_copy

        def chunk_key(k):
            return place(jax.random.key_data(k))

        @functools.cache
        def chunk_of(n_epochs):
            return parallel.make_parallel_chunk(graphdef, config, mode, steps_per_epoch,
                                                n_epochs * steps_per_epoch, mesh,
                                                str(jax.random.key_impl(key)))
        state = place(state)
    tables, train_b = jax.tree_util.tree_map(place, device_arrays(train))
    val_b = (jax.tree_util.tree_map(place, _to_batch(validation))
             if validation is not None else None)
    lam = place(np.float32(config.penalty_weight))
    params = state.params

    best_params, best_rmse, best_epoch = params, math.inf, 0.0
    rows: list[tuple[float, float, float, float]] = []
    stop_reason = "max_epochs"
    bar = epoch_bar(config.max_epochs, "fit", progress if jax.process_index() == 0 else False)
    since_best = 0
    first_check, ckpt = 0, None
    if checkpoint_dir is not None:
        from ttm_jax.checkpoint import TrainingCheckpointer, TrainingProgress

        ckpt = TrainingCheckpointer(checkpoint_dir, every=checkpoint_every, config=config,
                                    train=train, validation=validation, key=key, mode=mode)
        saved = ckpt.restore(TrainingProgress(state, best_params, 0.0, 0.0, 0, None, 0, ""))
        if saved is not None:
            state, best_params = saved.state, saved.best_params
            best_rmse, best_epoch, since_best = saved.best_rmse, saved.best_epoch, saved.since_best
            rows, first_check = [tuple(r) for r in saved.rows], saved.next_check
            if saved.stop_reason == "early_stopping" and since_best >= config.patience:
                first_check, stop_reason = n_checks, saved.stop_reason  # it had finished
            bar.update(min(first_check * config.eval_every_epochs, config.max_epochs))

    def checkpoint(next_check: int, stop: str = "", force: bool = False) -> None:
        if ckpt is not None:
            ckpt.save(TrainingProgress(state, best_params, best_rmse, best_epoch, since_best,
                                       np.asarray(rows, np.float64).reshape(-1, 4), next_check,
                                       stop), force=force)

    def result(stop: str, epochs: float) -> FitResult:
        hist = np.asarray(rows, np.float64).reshape(-1, 4)
        kept = (best_params, state.rest)
        if mesh is not None:  # a plain single-device copy of the replicated arrays
            kept = jax.tree_util.tree_map(lambda x: jnp.asarray(host(x)), kept)
        trained = nnx.merge(graphdef, *kept)
        return FitResult(
            trained,
            History(*(hist[:, k] for k in range(4))),
            best_epoch,
            best_rmse if val_b is not None else math.nan,
            epochs,
            time.perf_counter() - t0,
            stop,
            mode,
        )

    try:
        for check in range(first_check, n_checks):
            with jax.numpy_dtype_promotion("standard"):
                lr = float(schedule(check * steps_per_check))
            n_epochs, epoch = check_epochs(config, check)
            state, mses = chunk_of(n_epochs)(state, tables, train_b,
                                             chunk_key(jax.random.fold_in(key, check)), lam)
            mses = host(mses)
            if not np.isfinite(mses).all():
                bad = int(np.flatnonzero(~np.isfinite(mses))[0]) + check * steps_per_check
                bar.close()
                raise TrainingDivergedError(
                    f"training loss became non-finite at step {bad} (epoch {epoch:g}, step size "
                    f"{lr:.3g}); kept the best parameters found before it (epoch "
                    f"{best_epoch:g}). Lower learning_rate or set grad_clip.",
                    result("diverged", epoch),
                )
            if val_b is not None:
                rmse = float(host(_val_rmse(graphdef, state.params, state.rest, tables, val_b)))
                if not math.isfinite(rmse):
                    bar.close()
                    raise TrainingDivergedError(
                        f"validation RMSE became non-finite at epoch {epoch:g}; kept the best "
                        f"parameters (epoch {best_epoch:g}). Lower learning_rate or set grad_clip.",
                        result("diverged", epoch),
                    )
                if rmse < best_rmse - config.min_delta:
                    best_params, best_rmse, best_epoch, since_best = state.params, rmse, epoch, 0
                else:
                    since_best += 1
            else:
                rmse = math.nan
                best_params, best_epoch = state.params, epoch
            rows.append((epoch, float(mses.mean()), rmse, lr))
            bar.update(n_epochs)
            # Without a validation set (e.g. the regressor's refit) there is no
            # RMSE to show: "val_rmse=nan" would read as a failure.
            bar.set_postfix(train_mse=f"{mses.mean():.4f}",
                            **({} if val_b is None else dict(val_rmse=f"{rmse:.4f}")))
            if val_b is not None and since_best >= config.patience:
                stop_reason = "early_stopping"
                checkpoint(check + 1, stop_reason, force=True)
                break
            if config.max_seconds is not None and time.perf_counter() - t0 > config.max_seconds:
                stop_reason = "time_limit"
                checkpoint(check + 1, stop_reason, force=True)
                break
            checkpoint(check + 1, force=check + 1 == n_checks)
    finally:
        bar.close()
    return result(stop_reason, rows[-1][0] if rows else 0.0)


def refit(
    model_config: ModelConfig,
    data: RatingData,
    config: TrainConfig,
    best_epoch: float,
    *,
    init_key: jax.Array,
    key: jax.Array,
    progress: bool | None = None,
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 1,
) -> FitResult:
    """Retrain on all of ``data`` for the epochs an early-stopped fit kept.

    The second half of the default protocol (``TwoTowerRegressor()``, the
    command line's ``fit``, Table 1): a fit on part of the ratings,
    early-stopped on the rest, chose ``best_epoch``; this trains a fresh model
    on every rating, hold-out included, for that many epochs (rounded, at
    least 1), with no early stopping. Pass the first fit's keys so that the
    two differ only in the data they see (and the standardisation statistics,
    now taken from all of ``data``).

    Args:
      model_config: the architecture (:class:`ModelConfig`) of the first fit.
      data: all the training ratings Ω.
      config: the first fit's :class:`TrainConfig`; its ``max_epochs`` is replaced.
      best_epoch: the first fit's ``FitResult.best_epoch``.
      init_key: ``jax.random`` key for :func:`init_model`.
      key: ``jax.random`` key for the minibatch draws, as in :func:`fit`.
      progress, checkpoint_dir, checkpoint_every: as in :func:`fit`.

    Returns:
      The refit's :class:`FitResult` (no validation curve: ``best_val_rmse`` NaN).

    Raises:
      TrainingDivergedError: as :func:`fit`.
    """
    epochs = max(1, round(best_epoch))
    model = init_model(model_config, data, key=init_key)
    return fit(model, data, None, config.replace(max_epochs=epochs), key=key,
               progress=progress, checkpoint_dir=checkpoint_dir,
               checkpoint_every=checkpoint_every)
