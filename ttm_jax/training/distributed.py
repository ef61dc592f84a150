"""Data parallelism by placing arrays: a device mesh, replication, and multi-process start-up.

The training loop (:func:`ttm_jax.training.engine.train`) is the same on one
device and on many. Given a one-axis ``jax.sharding.Mesh`` it replicates the
parameters, optimiser state, covariate tables and Ω on every device of the
mesh, and the scan chunk (:func:`ttm_jax.training.step.make_train_chunk`)
constrains each minibatch's positions to be split along the mesh axis, so
every device computes the towers and gradient for ``batch_size / n_devices``
ratings and XLA all-reduces the gradients. Each step draws the same positions
of Ω as single-device training, so the two agree up to the order of
floating-point sums.

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

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ttm_jax.training.step import DATA_AXIS

__all__ = [
    "check_mesh",
    "data_parallel_mesh",
    "fetcher",
    "initialize_distributed",
    "local_copy",
    "placer",
    "replicate",
]


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
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def check_mesh(mesh: Mesh, batch_size: int) -> None:
    """Raise ``ValueError`` unless ``mesh`` is a one-axis data mesh that divides ``batch_size``."""
    if not isinstance(mesh, Mesh) or mesh.axis_names != (DATA_AXIS,):
        raise ValueError(f"mesh={mesh!r}: pass a one-axis mesh ('{DATA_AXIS}',) from "
                         "data_parallel_mesh()")
    n_dev = mesh.devices.size
    if batch_size % n_dev:
        raise ValueError(
            f"batch_size={batch_size} is not a multiple of the mesh's {n_dev} devices; use e.g. "
            f"batch_size={n_dev * max(1, batch_size // n_dev)}")


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


def placer(mesh: Mesh | None) -> Callable:
    """``tree -> tree`` placing arrays for training: on the default device, or
    replicated over ``mesh``."""
    if mesh is None:
        return lambda tree: jax.tree_util.tree_map(jnp.asarray, tree)
    return lambda tree: replicate(tree, mesh)


def fetcher(mesh: Mesh | None) -> Callable:
    """``tree -> numpy tree``: host copies of arrays placed by :func:`placer`."""
    if mesh is None:
        return lambda tree: jax.tree_util.tree_map(np.asarray, tree)
    return local_copy
