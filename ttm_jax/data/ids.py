"""Where the one-hot id helpers went.

The hybrid model (SPEC §1: covariates plus ids) used to be built on the data:
``append_one_hot_ids`` appended ``np.eye(n)`` blocks to the covariate tables
(``O(n²)`` memory: 10^5 users made a 40 GB table), ``zero_unseen_ids`` zeroed
the blocks of users unseen in training, and ``with_id_dropout`` copied ratings
onto id-less "shadow" users. The model now holds the ids itself, as embedding
tables (``O((n_users + n_items) · width)``), and each of those tools became a
configuration field:

============================  ==================================================
removed                       now
============================  ==================================================
``append_one_hot_ids``        ``ModelConfig(user_ids=True, item_ids=True)``
``read_movielens(user_ids=)`` the same (the reader gives covariates only)
``zero_unseen_ids``           nothing to do: ids with no training rating read the
                              id table's unknown row (``ModelConfig.unseen_ids``)
``with_id_dropout``           ``TrainConfig(user_id_dropout=p)`` (per rating,
                              inside the training step; no copy of the data)
covariates scaled by 0.03     ``TrainConfig(id_penalty_weight=...)`` (a penalty
                              weight for the id tables apart from the rest)
============================  ==================================================

Importing a removed name raises an ``ImportError`` that says this.
"""

from __future__ import annotations

__all__ = ["REMOVED", "removed_name_error"]

#: Each removed name and what replaces it.
REMOVED = {
    "append_one_hot_ids": "ModelConfig(user_ids=True, item_ids=True): the towers hold id "
                          "embedding tables, without one-hot blocks in the data",
    "zero_unseen_ids": "nothing: a model with id tables scores ids that had no training "
                       "rating through the table's unknown row (ModelConfig.unseen_ids)",
    "zero_id_block": "nothing: a model with id tables scores ids that had no training "
                     "rating through the table's unknown row (ModelConfig.unseen_ids)",
    "with_id_dropout": "TrainConfig(user_id_dropout=p, item_id_dropout=q): id dropout per "
                       "rating inside the training step",
    "IdDropout": "TrainConfig(user_id_dropout=p, item_id_dropout=q): id dropout per rating "
                 "inside the training step",
}


def removed_name_error(name: str) -> ImportError:
    """The error for a removed name of :data:`REMOVED`, saying what replaces it."""
    return ImportError(f"ttm_jax.data.{name} was removed (ids are embedding tables in the model "
                       f"now); use {REMOVED[name]}. See docs/datasets.md, 'The hybrid model'")


def __getattr__(name: str):
    if name in REMOVED:
        raise removed_name_error(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
