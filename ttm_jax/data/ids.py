"""One-hot id blocks for the hybrid model (SPEC §1: covariates plus ids), and
id dropout, which teaches the towers a covariate-only path for cold entities.

With ids appended, a warm user is scored through its id columns (an embedding
table in the first layer) and its covariates; a user unseen in training has
an id block whose weights never received data, so only its covariates carry
information. A network trained only on warm rows has never had to predict
from covariates alone, so that fallback is poor. :func:`with_id_dropout`
adds, for a random share of the training ratings, a copy attached to a
"shadow" entity whose id block is all zeros: the same covariates, no id. The
towers then learn both paths, and a cold entity's zero (or never-trained) id
block lands on the path they learnt for it. This is id dropout done on the
data, so the core training loop needs no change.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ttm_jax.data.ratings import RatingData

__all__ = [
    "append_one_hot_ids",
    "IdDropout",
    "with_id_dropout",
    "zero_id_block",
    "zero_unseen_ids",
]


def append_one_hot_ids(data: RatingData, *, users: bool = True, items: bool = True) -> RatingData:
    """``data`` with an identity block appended to the user and/or item covariates.

    Shapes: ``[n_users, D_u] → [n_users, D_u + n_users]`` (likewise for items).
    """
    uf, itf = data.user_features, data.item_features
    if users:
        uf = np.concatenate([uf, np.eye(data.n_users, dtype=np.float32)], axis=1)
    if items:
        itf = np.concatenate([itf, np.eye(data.n_items, dtype=np.float32)], axis=1)
    return RatingData(uf, itf, data.user_ids, data.item_ids, data.ratings)


def zero_id_block(features: np.ndarray, n_id_columns: int) -> np.ndarray:
    """A copy of ``features [n, D]`` with its last ``n_id_columns`` columns set to 0."""
    if not 0 <= n_id_columns <= features.shape[1]:
        raise ValueError(
            f"n_id_columns={n_id_columns} must lie in 0 .. {features.shape[1]} (the table's width)"
        )
    out = np.array(features, np.float32, copy=True)
    if n_id_columns:
        out[:, -n_id_columns:] = 0.0
    return out


class IdDropout(NamedTuple):
    """Training data augmented by :func:`with_id_dropout`.

    Attributes:
      train: the augmented training set. Its user table is
        ``[2 n_users, D_u]`` when user ids are dropped (rows ``n_users + u`` are
        the shadows of users ``u``, id block zero), likewise for items.
      validation: the validation set re-based onto the augmented tables (same
        pairs), or ``None``; early stopping needs tables shared with ``train``.
    """

    train: RatingData
    validation: RatingData | None


def with_id_dropout(
    train: RatingData,
    validation: RatingData | None = None,
    *,
    user_id_columns: int = 0,
    item_id_columns: int = 0,
    fraction: float = 0.5,
    seed: int,
) -> IdDropout:
    """Add id-less copies of a random share of the training ratings.

    Each training rating is copied with probability ``fraction``; a copy
    points at the shadow of its user (when ``user_id_columns > 0``) and/or of
    its item (when ``item_id_columns > 0``), whose id block (the last
    ``*_id_columns`` columns) is zero. When both blocks are dropped, each copy
    drops one of them at random, or both with probability 1/3 each, so all
    three fall-back paths (cold user, cold item, both) are trained.

    Args:
      train: training ratings whose tables end in the one-hot id blocks.
      validation: validation ratings sharing ``train``'s tables, or ``None``.
      user_id_columns, item_id_columns: widths of the trailing id blocks (0: none).
      fraction: share of training ratings copied, in ``(0, 1]``.
      seed: seeds the choice of copies.

    Returns:
      An :class:`IdDropout`. Predict for test pairs with the original tables
      (a model fitted here works on them: the widths are unchanged).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction} must lie in (0, 1]")
    if user_id_columns == 0 and item_id_columns == 0:
        raise ValueError("with_id_dropout needs user_id_columns > 0 or item_id_columns > 0")
    rng = np.random.default_rng(seed)
    n_u, n_i = train.n_users, train.n_items
    pick = np.flatnonzero(rng.random(train.n_ratings) < fraction)
    if user_id_columns and item_id_columns:
        which = rng.integers(0, 3, pick.size)  # 0: user, 1: item, 2: both
    else:
        which = np.full(pick.size, 0 if user_id_columns else 1)
    uf, itf = train.user_features, train.item_features
    cu, ci = train.user_ids[pick].copy(), train.item_ids[pick].copy()
    if user_id_columns:
        uf = np.concatenate([uf, zero_id_block(uf, user_id_columns)])
        cu = np.where(which != 1, cu + n_u, cu).astype(np.int32)
    if item_id_columns:
        itf = np.concatenate([itf, zero_id_block(itf, item_id_columns)])
        ci = np.where(which != 0, ci + n_i, ci).astype(np.int32)
    aug = RatingData(
        uf,
        itf,
        np.concatenate([train.user_ids, cu]),
        np.concatenate([train.item_ids, ci]),
        np.concatenate([train.ratings, train.ratings[pick]]),
    )
    val = None
    if validation is not None:
        val = RatingData(aug.user_features, aug.item_features, validation.user_ids,
                         validation.item_ids, validation.ratings)
    return IdDropout(aug, val)


def zero_unseen_ids(
    data: RatingData,
    train: RatingData,
    *,
    user_id_columns: int = 0,
    item_id_columns: int = 0,
) -> RatingData:
    """``data`` with the id blocks of users/items that have no rating in ``train`` set to 0.

    A held-out user's id columns never saw a data gradient, so their weights
    are what initialisation and the penalty left: noise. Zeroing them scores
    the user as "no id", the path :func:`with_id_dropout` trains (SPEC §1's
    hybrid falls back on covariates). Warm entities keep their ids.

    Args:
      data: the pairs to score (tables ending in the id blocks).
      train: the training ratings that define which entities are seen.
      user_id_columns, item_id_columns: widths of the trailing id blocks.

    Returns:
      A :class:`RatingData` with the same pairs and patched copies of the tables.
    """
    uf, itf = data.user_features, data.item_features
    if user_id_columns:
        unseen = np.setdiff1d(np.arange(data.n_users), train.user_ids)
        uf = np.array(uf, np.float32, copy=True)
        uf[unseen, uf.shape[1] - user_id_columns:] = 0.0
    if item_id_columns:
        unseen = np.setdiff1d(np.arange(data.n_items), train.item_ids)
        itf = np.array(itf, np.float32, copy=True)
        itf[unseen, itf.shape[1] - item_id_columns:] = 0.0
    return RatingData(uf, itf, data.user_ids, data.item_ids, data.ratings)
