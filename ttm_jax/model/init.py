"""Building a :class:`~ttm_jax.model.towers.TwoTower` from a :class:`ModelConfig`,
with its preprocessing fitted to the training data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ttm_jax.config import ModelConfig
from ttm_jax.data.ratings import RatingData
from ttm_jax.model.towers import TwoTower

__all__ = ["build_model", "init_model"]


def build_model(config: ModelConfig, user_features: int, item_features: int, *,
                key: jax.Array | None = None) -> TwoTower:
    """An untrained :class:`TwoTower` with ``config``'s towers for ``D_u``, ``D_i`` inputs.

    Args:
      config: the architecture.
      user_features, item_features: ``D_u`` and ``D_i``.
      key: ``jax.random`` key of the initial weights; ``None`` gives placeholder
        weights, for a model whose state is about to be loaded.
    """
    return TwoTower(
        user_features,
        item_features,
        hidden=config.hidden,
        embedding_dim=config.embedding_dim,
        activation=config.activation,
        rngs=nnx.Rngs(params=jax.random.key(0) if key is None else key),
    )


def init_model(config: ModelConfig, train: RatingData, *, key: jax.Array) -> TwoTower:
    """A fresh :class:`TwoTower` sized for ``train``, its preprocessing fitted to it.

    With ``config.standardize``, covariate means and standard deviations come
    from the users and items that occur in ``train`` (constant columns keep
    scale 1). With ``config.center_ratings``, the offset is ``mean(r)`` over Ω.

    Example:
      >>> data, _ = make_synthetic(100, 80, 2000, seed=0)
      >>> model = init_model(ModelConfig(hidden=(32,)), data, key=jax.random.key(0))
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
    if not isinstance(train, RatingData):
        raise TypeError(f"train must be a RatingData, got {type(train).__name__}")
    model = build_model(config, train.user_features.shape[1], train.item_features.shape[1],
                        key=key)
    if config.standardize:
        for tower, table, ids in (
            (model.user_tower, train.user_features, train.user_ids),
            (model.item_tower, train.item_features, train.item_ids),
        ):
            # float64: a column near 1e20 would overflow float32 in its variance.
            rows = table[np.unique(ids)].astype(np.float64)
            mean = rows.mean(axis=0)
            std = rows.std(axis=0)
            tower.set_standardization(mean, np.where(std > 1e-8, std, 1.0))
    if config.center_ratings:
        model.offset[...] = jnp.asarray(train.ratings.mean(), jnp.float32)
    return model
