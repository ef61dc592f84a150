"""Embedding and scoring with a trained :class:`~ttm_jax.towers.TwoTower`, outside training.

Tower outputs are computed once per distinct user and item and then combined,
rather than once per rating. Row counts are padded up to a power of two (at
least 256) so that the jitted tower sees a handful of shapes, not one per call.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ttm_jax.model.towers import TwoTower

__all__ = ["embed_users", "embed_items", "predict_pairs"]

_CHUNK = 65536


@functools.partial(jax.jit, static_argnames=("graphdef", "side"))
def _embed(graphdef, state, x, side: str):
    model = nnx.merge(graphdef, state)
    return model.embed_users(x) if side == "user" else model.embed_items(x)


def _bucket(n: int) -> int:
    return max(256, 1 << (max(n, 1) - 1).bit_length())


def _embed_rows(model: TwoTower, x: np.ndarray, side: str) -> np.ndarray:
    tower = model.user_tower if side == "user" else model.item_tower
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != tower.in_features:
        who = "user" if side == "user" else "item"
        raise ValueError(
            f"{who} covariates have shape {x.shape}, but the model's {who} tower was built for "
            f"[n, {tower.in_features}]; pass features with the same {tower.in_features} "
            "columns (same encoding) as in training"
        )
    graphdef, state = nnx.split(model)
    out = np.empty((x.shape[0], tower.out_features), np.float32)
    for start in range(0, x.shape[0], _CHUNK):
        block = x[start : start + _CHUNK]
        n = block.shape[0]
        padded = np.zeros((_bucket(n), block.shape[1]), np.float32)
        padded[:n] = block
        out[start : start + n] = np.asarray(_embed(graphdef, state, jnp.asarray(padded), side))[:n]
    return out


def embed_users(model: TwoTower, user_features: np.ndarray) -> np.ndarray:
    """``f(x_u)``: user covariates ``[n, D_u]`` → embeddings ``[n, p]`` (numpy float32)."""
    return _embed_rows(model, user_features, "user")


def embed_items(model: TwoTower, item_features: np.ndarray) -> np.ndarray:
    """``g(x_i)``: item covariates ``[n, D_i]`` → embeddings ``[n, p]`` (numpy float32)."""
    return _embed_rows(model, item_features, "item")


def predict_pairs(
    model: TwoTower,
    user_features: np.ndarray,
    item_features: np.ndarray,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
) -> np.ndarray:
    """Scores ``R(x_u, x_i)`` for the pairs ``(user_ids[k], item_ids[k])``.

    Args:
      model: a trained two-tower model.
      user_features: ``[n_users, D_u]``; item_features: ``[n_items, D_i]``.
      user_ids, item_ids: ``[n]`` rows into the two tables.

    Returns:
      ``[n]`` float32 predicted ratings.
    """
    user_ids = np.asarray(user_ids)
    item_ids = np.asarray(item_ids)
    users, inv_u = np.unique(user_ids, return_inverse=True)
    items, inv_i = np.unique(item_ids, return_inverse=True)
    u_emb = embed_users(model, np.asarray(user_features)[users])
    i_emb = embed_items(model, np.asarray(item_features)[items])
    offset = np.float32(model.offset[...])
    return offset + np.einsum("np,np->n", u_emb[inv_u], i_emb[inv_i])
