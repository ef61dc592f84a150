"""Row-wise Adagrad for embedding tables: one accumulator per row, as an optax transformation.

For a table ``E [n, w]`` with gradient ``G``, each step adds the row's mean squared
gradient to its accumulator and divides the row's gradient by its root:

    a_r ← a_r + mean_j G_rj²,        u_rj = G_rj / (√a_r + ε).

The state is ``[n]``, one number per row, against ``2 n w`` for Adam's moments:
what TorchRec and FBGEMM use for tables of millions of rows. A row without a
gradient keeps its accumulator and does not move, so updating only the rows a
minibatch reads (``TrainConfig(id_updates="rows")``) is the same update.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["RowwiseAdagradState", "scale_by_rowwise_adagrad"]


class RowwiseAdagradState(NamedTuple):
    """``sum_of_squares``: per table ``[n]``, each row's accumulated mean squared gradient."""

    sum_of_squares: optax.Updates


def scale_by_rowwise_adagrad(initial_accumulator_value: float = 0.1,
                             eps: float = 1e-10) -> optax.GradientTransformation:
    """Row-wise Adagrad scaling (no step size: chain ``scale_by_learning_rate``).

    Args:
      initial_accumulator_value: ``a_r`` at step 0 (TensorFlow's Adagrad default, 0.1),
        which bounds the first steps.
      eps: added to ``√a_r``.

    Returns:
      An ``optax.GradientTransformation`` over tables ``[n, ...]`` whose state is
      one float per row.

    Example:
      >>> tx = optax.chain(scale_by_rowwise_adagrad(), optax.scale_by_learning_rate(0.1))
      >>> state = tx.init({"table": jnp.zeros((1000, 64))})  # 1000 accumulators
    """

    def init_fn(params):
        return RowwiseAdagradState(jax.tree_util.tree_map(
            lambda p: jnp.full(p.shape[:1], initial_accumulator_value, p.dtype), params))

    def update_fn(updates, state, params=None):
        del params

        def row_mean_square(g):
            return jnp.mean(jnp.square(g), axis=tuple(range(1, g.ndim)))

        acc = jax.tree_util.tree_map(lambda a, g: a + row_mean_square(g), state.sum_of_squares,
                                     updates)
        scaled = jax.tree_util.tree_map(
            lambda g, a: g / (jnp.sqrt(a) + eps).reshape(a.shape + (1,) * (g.ndim - 1)),
            updates, acc)
        return scaled, RowwiseAdagradState(acc)

    return optax.GradientTransformation(init_fn, update_fn)
