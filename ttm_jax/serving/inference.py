"""Embedding and scoring with a trained :class:`~ttm_jax.towers.TwoTower`, outside training.

Tower outputs are computed once per distinct user and item and then combined,
rather than once per rating. Row counts are padded up to a power of two (at
least 256) so that the jitted tower sees a handful of shapes, not one per call.

A tower with an id table (``ModelConfig(user_ids=True)``) reads a learnt row
per id, the ids being rows of the covariate table it was trained on. Every
entry point checks ids here, at the boundary: a negative id, one beyond the
table, or (with ``unseen_ids="error"``) one that had no training rating is
refused, naming it. Entities given by covariates alone (no ids) read the
unknown row: that is how new users and items are scored.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ttm_jax.checks import InvalidArgument
from ttm_jax.model.towers import TwoTower

__all__ = ["check_covariates", "check_entity_ids", "embed_users", "embed_items", "predict_pairs",
           "score_pairs"]

_CHUNK = 65536


@functools.partial(jax.jit, static_argnames=("graphdef", "side"))
def _embed(graphdef, state, x, ids, side: str):
    model = nnx.merge(graphdef, state)
    return model.embed_users(x, ids) if side == "user" else model.embed_items(x, ids)


def _bucket(n: int) -> int:
    return max(256, 1 << (max(n, 1) - 1).bit_length())


def _matrix(name: str, x, width: int, side: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise InvalidArgument(f"{name}: dtype {arr.dtype} is not a number type; pass numeric "
                              f"{side} covariates [n, {width}]")
    if arr.ndim != 2 or arr.shape[1] != width:
        raise InvalidArgument(
            f"{name}: {side} covariates have shape {arr.shape}, but the model's {side} tower was "
            f"built for [n, {width}]; pass features with the same {width} columns (same "
            "encoding) as in training"
        )
    return arr


def _finite(name: str, arr: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """``arr`` as float32, or :class:`InvalidArgument` naming its first row that is not finite
    (``rows``: the table row of each of ``arr``'s rows, for the message)."""
    with np.errstate(over="ignore"):  # an overflow is reported below, by row
        out = arr.astype(np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        row = int(r if rows is None else rows[r])
        was = arr[r, c]
        what = (f"value {was:g} does not fit in float32" if np.isfinite(was) else
                f"value {was}")
        raise InvalidArgument(
            f"{name}: row {row}, column {c}: {what}; a model cannot score covariates that are not "
            f"finite numbers ({int(bad.any(axis=1).sum())} row(s) affected): impute them or "
            "leave the rows out"
        )
    return out


def check_covariates(model: TwoTower, x, side: str, *, name: str | None = None) -> np.ndarray:
    """``x`` as float32 ``[n, D]`` for ``model``'s ``side`` (``"user"``/``"item"``) tower.

    Raises:
      ttm_jax.checks.InvalidArgument: not numbers, another width than the tower's,
        or a NaN, an infinity or a value beyond float32 (named by ``name``, row
        and column): such rows would get a NaN score, which ranks unpredictably.
    """
    if not isinstance(model, TwoTower):
        raise TypeError(f"model must be a TwoTower, got {type(model).__name__}")
    tower = model.user_tower if side == "user" else model.item_tower
    name = name or f"{side}_features"
    return _finite(name, _matrix(name, x, tower.in_features, side))


def check_entity_ids(model: TwoTower, ids, side: str, *, name: str | None = None,
                     rows: int | None = None) -> np.ndarray:
    """``ids`` as int32 rows of ``model``'s ``side`` id table, or :class:`InvalidArgument`.

    Refused, naming the first offender and its position: not a 1-D integer
    array (or not ``rows`` long), a negative id, an id beyond the table (a new
    entity: score it by its covariates, without an id), an id that had no
    training rating when the model was built with ``unseen_ids="error"``, and
    any id for a tower without an id table.
    """
    if not isinstance(model, TwoTower):
        raise TypeError(f"model must be a TwoTower, got {type(model).__name__}")
    tower = model.user_tower if side == "user" else model.item_tower
    name = name or f"{side}_ids"
    if not tower.n_ids:
        raise InvalidArgument(f"{name}: the model has no {side} id table (it was built with "
                              f"ModelConfig({side}_ids=False)), so it scores {side}s by their "
                              "covariates alone; pass no ids")
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise InvalidArgument(f"{name}: expected a 1-D array of integer {side} ids, got shape "
                              f"{arr.shape} and dtype {arr.dtype}")
    if rows is not None and arr.size != rows:
        raise InvalidArgument(f"{name}: {arr.size} ids for {rows} rows of covariates; give one "
                              "id per row")
    n = tower.n_ids
    if (arr < 0).any():
        pos = int(np.flatnonzero(arr < 0)[0])
        raise InvalidArgument(f"{name}: id {int(arr[pos])} at position {pos} is negative; ids "
                              f"are rows of the training {side} table, 0 .. {n - 1} (a new {side} "
                              "has no id: score it by its covariates alone)")
    if (arr >= n).any():
        pos = int(np.flatnonzero(arr >= n)[0])
        raise InvalidArgument(f"{name}: id {int(arr[pos])} at position {pos} is beyond the model's "
                              f"{side} id table ({n} {side}s, ids 0 .. {n - 1}); a {side} outside "
                              "the training table is new: score it by its covariates alone, "
                              "without an id")
    arr = arr.astype(np.int32)
    if model.unseen_ids == "error":
        unseen = ~np.asarray(tower.seen_ids())[arr]
        if unseen.any():
            pos = int(np.flatnonzero(unseen)[0])
            raise InvalidArgument(
                f"{name}: {side} {int(arr[pos])} at position {pos} had no rating in training "
                f"({int(unseen.sum())} such id(s)), and the model was built with "
                "unseen_ids='error'; leave such ids out, score them by covariates alone, or "
                "build the model with ModelConfig(unseen_ids='unknown') to read the unknown row")
    return arr


def _embed_rows(model: TwoTower, x: np.ndarray, side: str, ids=None) -> np.ndarray:
    tower = model.user_tower if side == "user" else model.item_tower
    x = check_covariates(model, x, side)
    if ids is not None:
        ids = check_entity_ids(model, ids, side, rows=x.shape[0])
    graphdef, state = nnx.split(model)
    out = np.empty((x.shape[0], tower.out_features), np.float32)
    for start in range(0, x.shape[0], _CHUNK):
        block = x[start : start + _CHUNK]
        n = block.shape[0]
        padded = np.zeros((_bucket(n), block.shape[1]), np.float32)
        padded[:n] = block
        id_block = None
        if ids is not None:
            # Padding rows read the unknown row; their outputs are dropped.
            id_block = np.full(padded.shape[0], tower.n_ids, np.int32)
            id_block[:n] = ids[start : start + n]
            id_block = jnp.asarray(id_block)
        out[start : start + n] = np.asarray(
            _embed(graphdef, state, jnp.asarray(padded), id_block, side))[:n]
    return out


def _ids(name: str, ids, n: int, table: str) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise InvalidArgument(f"{name}: expected a 1-D array of integer row ids into {table}, "
                              f"got shape {arr.shape} and dtype {arr.dtype}")
    outside = (arr < 0) | (arr >= n)
    if outside.any():
        pos = int(np.flatnonzero(outside)[0])
        raise InvalidArgument(f"{name}: id {int(arr[pos])} at position {pos} is out of range; "
                              f"{table} has {n} rows (0 .. {n - 1})")
    return arr.astype(np.int64)


def embed_users(model: TwoTower, user_features: np.ndarray, ids=None) -> np.ndarray:
    """``f(x_u)``: user covariates ``[n, D_u]`` → embeddings ``[n, p]`` (numpy float32).

    Covariates must be finite (see :func:`check_covariates`). ``ids``: ``[n]``
    the users' rows in the training table, read by a user id table (checked by
    :func:`check_entity_ids`); ``None``: the users are known by their
    covariates alone (new users), and an id table's unknown row is read."""
    return _embed_rows(model, user_features, "user", ids)


def embed_items(model: TwoTower, item_features: np.ndarray, ids=None) -> np.ndarray:
    """``g(x_i)``: item covariates ``[n, D_i]`` → embeddings ``[n, p]`` (numpy float32).

    Covariates must be finite (see :func:`check_covariates`); ``ids`` as in
    :func:`embed_users`."""
    return _embed_rows(model, item_features, "item", ids)


def _entity_ids(model: TwoTower, side: str, ids: np.ndarray, uniq: np.ndarray):
    """The distinct rows ``uniq`` as ids for a tower with an id table (``None`` without one),
    after checking every id of ``ids`` (so that a message gives its position there)."""
    if not (model.user_tower if side == "user" else model.item_tower).n_ids:
        return None
    check_entity_ids(model, ids, side)
    return uniq


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
      user_ids, item_ids: ``[n]`` rows into the two tables; a tower with an id
        table reads them as ids too (the tables are those it was trained on:
        a row beyond its id table is refused, see :func:`check_entity_ids`).

    Returns:
      ``[n]`` float32 predicted ratings.

    Raises:
      ttm_jax.checks.InvalidArgument: ids out of range or not integers, tables
        of the wrong width, or a scored row that is not finite (named by table
        and row).
    """
    if not isinstance(model, TwoTower):
        raise TypeError(f"model must be a TwoTower, got {type(model).__name__}")
    x_u = _matrix("user_features", user_features, model.user_tower.in_features, "user")
    x_i = _matrix("item_features", item_features, model.item_tower.in_features, "item")
    user_ids = _ids("user_ids", user_ids, x_u.shape[0], "user_features")
    item_ids = _ids("item_ids", item_ids, x_i.shape[0], "item_features")
    if user_ids.size != item_ids.size:
        raise InvalidArgument(f"user_ids and item_ids must have the same length; got "
                              f"{user_ids.size} and {item_ids.size}")
    users, inv_u = np.unique(user_ids, return_inverse=True)
    items, inv_i = np.unique(item_ids, return_inverse=True)
    # Only the rows scored must be finite; each is named by its row in the table.
    u_emb = embed_users(model, _finite("user_features", x_u[users], users),
                        _entity_ids(model, "user", user_ids, users))
    i_emb = embed_items(model, _finite("item_features", x_i[items], items),
                        _entity_ids(model, "item", item_ids, items))
    return score_pairs(model, u_emb, i_emb, inv_u, inv_i)


def score_pairs(model: TwoTower, user_embeddings: np.ndarray, item_embeddings: np.ndarray,
                user_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
    """The model's ratings ``R = offset + ⟨f(x_u), g(x_i)⟩`` of pairs of embedded entities.

    The one place the tower outputs become a rating, for callers that embed
    each distinct user and item once (:func:`predict_pairs`, the command
    line's ``evaluate``).

    Args:
      model: the model that made the embeddings (its ``offset``, the centring mean).
      user_embeddings: ``[n_u, p]``; item_embeddings: ``[n_i, p]``.
      user_rows, item_rows: ``[n]`` rows of the two, one pair per position.

    Returns:
      ``[n]`` float32 predicted ratings.
    """
    offset = np.float32(model.offset[...])
    return offset + np.einsum("np,np->n", user_embeddings[user_rows], item_embeddings[item_rows])
