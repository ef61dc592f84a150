"""Data-parallel training over all devices, on one host or several.

The parameters, optimiser state, covariate tables and Ω are replicated on every
device of a one-axis ``jax.sharding.Mesh``; each step's minibatch is drawn as in
:func:`ttm_jax.train.fit` (the same positions of Ω for the same key) and then
sharded along the mesh axis, so every device computes the towers and gradient
for ``batch_size / n_devices`` ratings and XLA all-reduces the gradients. The
result equals single-device training up to the order of floating-point sums.

Several hosts: call :func:`initialize_distributed` first in every process
(``jax.distributed``); ``jax.devices()`` then lists the devices of all
processes and the same code trains over all of them. Every process must load
the same data (each holds all of Ω; only the per-step work is split). On CPU,
collectives between processes use gloo. See ``docs/scaling.md``.

Which mode pays: with ``tower_mode="rating"`` the tower work is split across
devices. In ``"entity"`` mode every device embeds every user and item, and only
the gather and loss are split, so ``"rating"`` is the mode to scale out.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ttm_jax.config import TrainConfig
from ttm_jax.data import RatingData
from ttm_jax.towers import TwoTower
from ttm_jax.train import (
    Batch,
    FitResult,
    Tables,
    TrainState,
    _step_body,
    fit,
    make_optimizer,
    make_schedule,
)

__all__ = [
    "data_parallel_mesh",
    "fit_data_parallel",
    "initialize_distributed",
    "local_copy",
    "make_parallel_chunk",
    "replicate",
]

AXIS = "data"


def initialize_distributed(
    coordinator_address: str, num_processes: int, process_id: int, **kwargs
) -> None:
    """Join a multi-process JAX job (``jax.distributed.initialize``), before any other JAX call.

    On CPU it selects gloo for the collectives between processes (JAX's CPU
    backend has no cross-process collectives otherwise). Extra keyword
    arguments go to ``jax.distributed.initialize``.

    Example (one line per process, on one or several hosts)::

        initialize_distributed("host0:12345", num_processes=2, process_id=0)
    """
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id={process_id} must lie in 0 .. num_processes-1 "
                         f"= {num_processes - 1}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes=num_processes,
                               process_id=process_id, **kwargs)


def data_parallel_mesh(devices=None) -> Mesh:
    """A one-axis mesh ``("data",)`` over ``devices`` (default: ``jax.devices()``,
    every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices is empty; pass at least one device")
    return Mesh(np.asarray(devices), (AXIS,))


def replicate(tree, mesh: Mesh):
    """Place every array of ``tree`` on every device of ``mesh`` (also across processes:
    each process must pass the same values)."""
    sharding = NamedSharding(mesh, P())

    def put(x):
        x = np.asarray(jax.device_get(x))
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    return jax.tree_util.tree_map(put, tree)


def local_copy(tree):
    """Host copy of replicated arrays (the local shard holds the whole value)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x.addressable_data(0)), tree)


@functools.lru_cache(maxsize=16)
def make_parallel_chunk(graphdef, config: TrainConfig, mode: str, steps_per_epoch: int,
                        n_steps: int, mesh: Mesh, key_impl: str = "threefry2x32"):
    """Like :func:`ttm_jax.train.make_train_chunk`, with each minibatch sharded over ``mesh``.

    Returns a jitted ``chunk(state, tables, train, key_data, lam) -> (state, mse [n_steps])``
    whose outputs are replicated. ``key_data`` is ``jax.random.key_data`` of the
    key (raw integers replicate across processes like any array).
    """
    tx = make_optimizer(config, steps_per_epoch)
    schedule = make_schedule(config, steps_per_epoch)
    step = _step_body(graphdef, config, mode, tx, schedule)
    batch_size = config.batch_size
    sharded = NamedSharding(mesh, P(AXIS))
    replicated = NamedSharding(mesh, P())

    def chunk(state: TrainState, tables: Tables, train: Batch, key_data, lam):
        n = train.ratings.shape[0]
        key = jax.random.wrap_key_data(key_data, impl=key_impl)

        def body(state, t):
            # The same draw as single-device training, so both see the same batches.
            idx = jax.random.randint(jax.random.fold_in(key, t), (batch_size,), 0, n)
            idx = jax.lax.with_sharding_constraint(idx, sharded)
            batch = Batch(train.user_ids[idx], train.item_ids[idx], train.ratings[idx])
            batch = jax.lax.with_sharding_constraint(batch, sharded)
            state, mse = step(state, tables, batch, lam)
            return jax.lax.with_sharding_constraint(state, replicated), mse

        return jax.lax.scan(body, state, jnp.arange(n_steps, dtype=jnp.int32))

    return jax.jit(chunk, out_shardings=replicated)


def fit_data_parallel(
    model: TwoTower,
    train: RatingData,
    validation: RatingData | None = None,
    config: TrainConfig | None = None,
    *,
    key: jax.Array,
    mesh: Mesh | None = None,
    progress: bool | None = None,
) -> FitResult:
    """:func:`ttm_jax.train.fit`, data-parallel over the devices of ``mesh``.

    Same arguments (``config=None``: ``TrainConfig()``), stopping rules and result
    as ``fit`` (validation checks, early stopping that keeps the best parameters,
    ``max_seconds``, a :class:`~ttm_jax.train.TrainingDivergedError` on NaN),
    without checkpoints.
    With the same ``key`` it draws the same minibatches as ``fit``, so the two
    agree up to floating-point summation order.

    Args:
      mesh: a one-axis mesh (default :func:`data_parallel_mesh`: all devices of
        all processes). ``config.batch_size`` must be a multiple of its size.

    Example:
      >>> mesh = data_parallel_mesh()                      # e.g. 8 GPUs
      >>> res = fit_data_parallel(model, split.train, split.validation,
      ...                         TrainConfig(batch_size=8 * 4096, tower_mode="rating"),
      ...                         key=jax.random.key(1), mesh=mesh)
    """
    config = TrainConfig() if config is None else config
    mesh = data_parallel_mesh() if mesh is None else mesh
    if mesh.axis_names != (AXIS,):
        raise ValueError(f"mesh has axes {mesh.axis_names}; pass a one-axis mesh ('{AXIS}',) "
                         "from data_parallel_mesh()")
    n_dev = mesh.devices.size
    if config.batch_size % n_dev:
        raise ValueError(
            f"batch_size={config.batch_size} is not a multiple of the {n_dev} devices; use e.g. "
            f"batch_size={n_dev * max(1, config.batch_size // n_dev)}"
        )
    return fit(model, train, validation, config, key=key, progress=progress, mesh=mesh)
