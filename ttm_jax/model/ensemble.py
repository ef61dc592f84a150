"""The mean of ``K`` two-tower models, written as one two-tower model ``K`` times as wide.

``(1/K) Σ_k (c_k + <f_k(x_u), g_k(x_i)>) = c̄ + <F(x_u), G(x_i)>`` with
``F = [f_1, …, f_K] / √K`` and ``G = [g_1, …, g_K] / √K``: an average of two-tower
models is itself a two-tower model (eq. 1) whose towers run the members side by
side (block-diagonal hidden layers) and whose embedding is their concatenation.
So an ensemble needs nothing new downstream: ``predict_pairs``, ``recommend``, its
exact top-k and maximum-inner-product indexes, embedding export and
``save_model``/``load_model`` all take it as they take one model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from flax import nnx

from ttm_jax import checks
from ttm_jax.config import ModelConfig
from ttm_jax.model.towers import Tower, TwoTower

__all__ = ["mean_model", "mean_model_config"]


def _block_diagonal(blocks: Sequence[jnp.ndarray]) -> jnp.ndarray:
    rows = sum(b.shape[0] for b in blocks)
    cols = sum(b.shape[1] for b in blocks)
    out = jnp.zeros((rows, cols), blocks[0].dtype)
    r = c = 0
    for b in blocks:
        out = out.at[r:r + b.shape[0], c:c + b.shape[1]].set(b)
        r, c = r + b.shape[0], c + b.shape[1]
    return out


def _same(name: str, values: Sequence[np.ndarray]) -> None:
    first = np.asarray(values[0])
    for k, v in enumerate(values[1:], start=1):
        if np.asarray(v).shape != first.shape or not np.array_equal(np.asarray(v), first):
            raise ValueError(
                f"models[{k}] differs from models[0] in {name}: the members of a mean must be "
                "trained on the same data (the same tables, standardisation and seen ids)")


def _merge_tower(towers: Sequence[Tower], merged: Tower) -> None:
    """Set ``merged`` (``K`` times as wide) to run ``towers`` side by side, output / √K."""
    k = len(towers)
    last = len(merged.layers) - 1
    for name in ("mean", "scale"):
        _same(f"the {name} of a tower's standardisation", [getattr(t, name)[...] for t in towers])
    merged.mean[...] = towers[0].mean[...]
    merged.scale[...] = towers[0].scale[...]
    # The first layer reads the shared covariates: its kernels sit side by side; deeper
    # layers read only their own member's units: block-diagonal.
    for i, layer in enumerate(merged.layers):
        kernels = [t.layers[i].kernel[...] for t in towers]
        kernel = jnp.concatenate(kernels, axis=1) if i == 0 else _block_diagonal(kernels)
        bias = jnp.concatenate([t.layers[i].bias[...] for t in towers])
        shrink = 1 / math.sqrt(k) if i == last else 1.0
        layer.kernel[...] = kernel * shrink
        layer.bias[...] = bias * shrink
    if merged.n_ids:
        _same("the ids seen in training", [t.id_rows[...] for t in towers])
        merged.id_rows[...] = towers[0].id_rows[...]
        # The table adds to the first layer's pre-activation, which is the output of a
        # linear tower: then it is scaled with the output layer.
        shrink = 1 / math.sqrt(k) if last == 0 else 1.0
        merged.id_table[...] = jnp.concatenate([t.id_table[...] for t in towers], axis=1) * shrink


def mean_model(models: Sequence[TwoTower]) -> TwoTower:
    """One :class:`TwoTower` whose every score is the mean of ``models``' scores.

    ``R̄(x_u, x_i) = (1/K) Σ_k R_k(x_u, x_i)``, exactly (up to float32 rounding), as a
    two-tower model with hidden widths ``K p_l`` and embedding width ``K p``: the
    members side by side, block-diagonal after the first layer, outputs scaled by
    ``1/√K`` on both sides, offset the members' mean. Its memory and scoring cost are
    ``K`` times a member's (the block-diagonal layers hold their zeros).

    Args:
      models: ``K ≥ 1`` models of one architecture, trained on the same data (their
        standardisation and seen-id maps must agree; a :class:`ValueError` names the
        member and what differs otherwise). Not modified.

    Returns:
      A new :class:`TwoTower`. Its :class:`~ttm_jax.ModelConfig`, for
      :func:`~ttm_jax.save_model`, is :func:`mean_model_config` of the members'.

    Example:
      >>> members = [TwoTowerRegressor(*presets.movielens_100k(), seed=s).fit(train).model_
      ...            for s in range(5)]
      >>> ensemble = mean_model(members)     # a TwoTower with embedding_dim 5 * 64
    """
    models = list(models)
    if not models or not all(isinstance(m, TwoTower) for m in models):
        raise TypeError("models must be a non-empty sequence of TwoTower")
    shapes = [m.describe() for m in models]
    for k, s in enumerate(shapes[1:], start=1):
        if s != shapes[0]:
            raise ValueError(f"models[{k}] has architecture {s}, models[0] {shapes[0]}: the "
                             "members of a mean must share one architecture")
    k = len(models)
    first = models[0]

    def widths(tower: Tower) -> list[int]:
        return [int(layer.kernel.shape[1]) * k for layer in tower.layers]

    u, i = widths(first.user_tower), widths(first.item_tower)
    merged = TwoTower(first.user_tower.in_features, first.item_tower.in_features,
                      embedding_dim=u[-1], activation=first.user_tower.activation,
                      user_hidden=u[:-1], item_hidden=i[:-1],
                      n_user_ids=first.user_tower.n_ids, n_item_ids=first.item_tower.n_ids,
                      unseen_ids=first.unseen_ids, rngs=nnx.Rngs(params=0))
    _merge_tower([m.user_tower for m in models], merged.user_tower)
    _merge_tower([m.item_tower for m in models], merged.item_tower)
    merged.offset[...] = jnp.mean(jnp.stack([m.offset[...] for m in models]))
    return merged


def mean_model_config(config: ModelConfig, k: int) -> ModelConfig:
    """The :class:`~ttm_jax.ModelConfig` of :func:`mean_model` of ``k`` models built with
    ``config``: every hidden width and the embedding width ``p`` times ``k``.

    Example:
      >>> mean_model_config(ModelConfig(hidden=(200, 200), embedding_dim=30), 5).hidden
      (1000, 1000)
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
    k = checks.integer("k", k, low=1)
    return config.replace(hidden=tuple(k * h for h in config.hidden),
                          embedding_dim=k * config.embedding_dim)
