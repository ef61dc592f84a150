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

__all__ = ["build_model", "init_model", "with_seen_ids"]


def build_model(config: ModelConfig, user_features: int, item_features: int, *,
                n_users: int = 0, n_items: int = 0,
                key: jax.Array | None = None) -> TwoTower:
    """An untrained :class:`TwoTower` with ``config``'s towers for ``D_u``, ``D_i`` inputs.

    Args:
      config: the architecture.
      user_features, item_features: ``D_u`` and ``D_i``.
      n_users, n_items: the id tables' entity counts, needed (``>= 1``) when
        ``config.user_ids`` (``config.item_ids``) is on, ignored otherwise.
      key: ``jax.random`` key of the initial weights; ``None`` gives placeholder
        weights, for a model whose state is about to be loaded.
    """
    for side, on, n in (("user", config.user_ids, n_users), ("item", config.item_ids, n_items)):
        if on and not (isinstance(n, int) and n >= 1):
            raise ValueError(f"ModelConfig({side}_ids=True) needs the number of {side}s for its "
                             f"id table: pass n_{side}s >= 1 (got {n!r})")
    return TwoTower(
        user_features,
        item_features,
        hidden=config.hidden,
        embedding_dim=config.embedding_dim,
        activation=config.activation,
        n_user_ids=n_users if config.user_ids else 0,
        n_item_ids=n_items if config.item_ids else 0,
        unseen_ids=config.unseen_ids,
        rngs=nnx.Rngs(params=jax.random.key(0) if key is None else key),
    )


def with_seen_ids(model: TwoTower, data: RatingData) -> TwoTower:
    """A copy of ``model`` whose id tables also count the users and items rated in
    ``data`` as seen (their own rows are read from now on; the rows keep their values).

    The warm refit uses it: ids met only in the hold-out start training there.
    A model without id tables is returned as a copy, unchanged.
    """
    model = nnx.clone(model)
    for tower, ids in ((model.user_tower, data.user_ids), (model.item_tower, data.item_ids)):
        if tower.n_ids:
            seen = np.asarray(tower.seen_ids()).copy()
            seen[np.unique(ids)] = True
            tower.set_seen_ids(seen)
    return model


def init_model(config: ModelConfig, train: RatingData, *, key: jax.Array) -> TwoTower:
    """A fresh :class:`TwoTower` sized for ``train``, its preprocessing fitted to it.

    With ``config.standardize``, covariate means and standard deviations come
    from the users and items that occur in ``train`` (constant columns keep
    scale 1). With ``config.center_ratings``, the offset is ``mean(r)`` over Ω.
    With ``config.user_ids`` (``item_ids``), the id table has a row per row of
    ``train.user_features`` (``item_features``), and the ids with no rating in
    ``train`` read the unknown row.

    Example:
      >>> data, _ = make_synthetic(100, 80, 2000, seed=0)
      >>> model = init_model(ModelConfig(hidden=(32,)), data, key=jax.random.key(0))
    """
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
    if not isinstance(train, RatingData):
        raise TypeError(f"train must be a RatingData, got {type(train).__name__}")
    model = build_model(config, train.user_features.shape[1], train.item_features.shape[1],
                        n_users=train.n_users, n_items=train.n_items, key=key)
    for tower, ids, n in ((model.user_tower, train.user_ids, train.n_users),
                          (model.item_tower, train.item_ids, train.n_items)):
        seen = np.zeros(n, bool)
        seen[ids] = True
        tower.set_seen_ids(seen)
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
