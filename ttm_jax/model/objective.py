"""The paper's objective (eq. 2): mean squared error plus ``λ (J(f) + J(g))``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ttm_jax.model.towers import is_id_table

__all__ = ["penalty", "split_penalty", "squared_error"]


def penalty(params, kind: str) -> jax.Array:
    """``J(f) + J(g)`` summed over every weight matrix and bias vector in ``params``.

    Args:
      params: pytree of trainable arrays (``A_l`` kernels and ``b_l`` biases of
        both towers; e.g. the ``nnx.Param`` state of a ``TwoTower``).
      kind: ``"l2"``: ``Σ_l ‖A_l‖_F² + ‖b_l‖₂²`` (SPEC §2); ``"l1"``:
        ``Σ_l ‖vec A_l‖₁ + ‖b_l‖₁``; ``"none"``: 0.

    Returns:
      A float32 scalar.
    """
    leaves = jax.tree_util.tree_leaves(params)
    if kind == "none" or not leaves:
        return jnp.zeros((), jnp.float32)
    if kind == "l2":
        return sum(jnp.sum(jnp.square(x)) for x in leaves)
    if kind == "l1":
        return sum(jnp.sum(jnp.abs(x)) for x in leaves)
    raise ValueError(f"penalty kind={kind!r}: choose 'l2', 'l1' or 'none'")


def split_penalty(params, kind: str) -> tuple[jax.Array, jax.Array]:
    """:func:`penalty` of ``params`` in two parts: ``(J of the weights and biases, J of the
    id tables)``, so that each may have its own λ (``TrainConfig.id_penalty_weight``).

    The two add up to ``penalty(params, kind)``: the id table of a tower is the
    block of its first layer's kernel that a one-hot id block would meet.
    """
    ids, rest = [], []
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        (ids if is_id_table(path) else rest).append(leaf)
    return penalty(rest, kind), penalty(ids, kind)


def squared_error(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared error of aligned ``[B]`` vectors (shapes must match exactly)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} != target shape {target.shape}")
    return jnp.mean(jnp.square(target - pred))
