"""Top-k recommendation with a trained two-tower model, and embedding export.

Scoring is exact: for each batch of users, the catalogue is scanned in chunks
of items; each chunk's scores ``[user_batch, item_chunk]`` are masked (items the
user already rated, padding), reduced with ``jax.lax.top_k``, and merged into a
running top-k. Memory is bounded by ``user_batch × item_chunk`` scores plus the
item embeddings ``[n_items, p]`` (120 MB for 10^6 items at p = 30), whatever the
catalogue size.

Because the towers read covariates, users and items need not have been seen in
training: pass their covariates instead of row ids. For an approximate index at
larger scale, :func:`export_embeddings` gives the tables ``f(x_u)``, ``g(x_i)``
(the score is ``offset + <f(x_u), g(x_i)>``; the offset does not change a ranking,
so a maximum-inner-product index over the tables ranks exactly as this module).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ttm_jax import checks
from ttm_jax.checks import InvalidArgument
from ttm_jax.data.ratings import RatingData
from ttm_jax.model.towers import TwoTower
from ttm_jax.serving.inference import check_covariates, embed_items, embed_users

__all__ = [
    "EmbeddingTables",
    "ItemIndex",
    "Recommendations",
    "export_embeddings",
    "index_items",
    "recommend",
    "top_k",
]


class Recommendations(NamedTuple):
    """The top ``k`` items per user, best first.

    Attributes:
      item_ids: ``[n_users, k]`` int64 item ids (rows of the candidate table);
        ``-1`` where a user has fewer than ``k`` candidates left after exclusion.
      scores: ``[n_users, k]`` float32 predicted ratings; ``-inf`` where the id is ``-1``.
    """

    item_ids: np.ndarray
    scores: np.ndarray


class EmbeddingTables(NamedTuple):
    """Embeddings of every user and item: ``score(u, i) = offset + users[u] @ items[i]``.

    Attributes:
      users: ``f(x_u)``, ``[n_users, p]`` float32.
      items: ``g(x_i)``, ``[n_items, p]`` float32.
      offset: the constant added to every score (the centring mean rating, or 0).
    """

    users: np.ndarray
    items: np.ndarray
    offset: float

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``user_embeddings.npy``, ``item_embeddings.npy`` and ``offset.npy``.

        Plain ``.npy`` files (no pickle), readable with ``np.load(path, mmap_mode="r")``
        by any nearest-neighbour library.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "user_embeddings.npy", self.users, allow_pickle=False)
        np.save(folder / "item_embeddings.npy", self.items, allow_pickle=False)
        np.save(folder / "offset.npy", np.float32(self.offset), allow_pickle=False)
        return folder


def export_embeddings(
    model: TwoTower, user_features: np.ndarray, item_features: np.ndarray
) -> EmbeddingTables:
    """Embed whole covariate tables ``[n_users, D_u]``, ``[n_items, D_i]`` for an external index.

    A tower with an id table reads row ``r`` of its table as id ``r`` (the
    tables are those it was trained on, or their first rows); a table with more
    rows than the id table is refused (new entities: embed them with
    :func:`~ttm_jax.embed_users` without ids).

    Example:
      >>> tables = export_embeddings(reg.model_, data.user_features, data.item_features)
      >>> tables.save("out/embeddings")   # user_embeddings.npy [n_users, p], ...
    """
    if not isinstance(model, TwoTower):
        raise TypeError(f"model must be a TwoTower, got {type(model).__name__}")
    # Row r of each table is id r.
    user_rows = np.arange(np.shape(user_features)[0], dtype=np.int64)
    item_rows = np.arange(np.shape(item_features)[0], dtype=np.int64)
    return EmbeddingTables(
        embed_users(model, user_features, _rows_as_ids(model, user_rows, "user")),
        embed_items(model, item_features, _rows_as_ids(model, item_rows, "item")),
        float(np.float32(model.offset[...])),
    )


def _rows_as_ids(model: TwoTower, rows: np.ndarray | None, side: str) -> np.ndarray | None:
    """Row ids into the training table, as ids for a tower with an id table (else ``None``)."""
    tower = model.user_tower if side == "user" else model.item_tower
    return rows if rows is not None and tower.n_ids else None


def _pow2(n: int, least: int) -> int:
    return max(least, 1 << (max(n, 1) - 1).bit_length())


@functools.partial(jax.jit, static_argnames=("k",))
def _top_k_batch(users, items, n_items, seen, offset, *, k: int):
    """Exact top-k of ``users [B, p]`` against ``items [n_chunks, C, p]``.

    ``seen [B, S]`` holds item ids to exclude per user (``-1`` pads);
    ids ``>= n_items`` are padding. Returns scores and ids ``[B, k]``.
    """
    b, c = users.shape[0], items.shape[1]
    rows = jnp.arange(b, dtype=jnp.int32)[:, None]
    col = jnp.arange(c, dtype=jnp.int32)

    def body(carry, chunk):
        best_s, best_i = carry
        block, start = chunk
        # HIGHEST: accelerators would otherwise multiply in reduced precision,
        # and exact top-k should rank as float32 arithmetic does.
        s = offset + jnp.matmul(users, block.T, precision=jax.lax.Precision.HIGHEST)
        local = seen - start
        hit = (seen >= 0) & (local >= 0) & (local < c)
        # Out-of-chunk ids are sent to column c, which mode="drop" discards.
        mask = jnp.zeros((b, c), bool).at[rows, jnp.where(hit, local, c)].set(True, mode="drop")
        mask = mask | (start + col >= n_items)[None, :]
        s = jnp.where(mask, -jnp.inf, s)
        cs, ci = jax.lax.top_k(s, k)
        # The running best comes first, so ties keep the lower item id.
        all_s = jnp.concatenate([best_s, cs], axis=1)
        all_i = jnp.concatenate([best_i, ci + start], axis=1)
        ms, pos = jax.lax.top_k(all_s, k)
        return (ms, jnp.take_along_axis(all_i, pos, axis=1)), None

    init = (jnp.full((b, k), -jnp.inf, jnp.float32), jnp.full((b, k), -1, jnp.int32))
    starts = jnp.arange(items.shape[0], dtype=jnp.int32) * c
    (scores, ids), _ = jax.lax.scan(body, init, (items, starts))
    return scores, jnp.where(jnp.isneginf(scores), -1, ids)


class ItemIndex(NamedTuple):
    """Item embeddings laid out for :func:`top_k`: on the device, padded to whole chunks.

    Build it once with :func:`index_items` and query it many times: a catalogue
    of 10^6 items is 120 MB, and copying it to the device on every request would
    cost more than scoring it.

    Attributes:
      chunks: ``[n_chunks, item_chunk, p]`` float32 (rows past ``n_items`` are padding).
      n_items: ``m``, the number of real items.
    """

    chunks: jax.Array
    n_items: int

    @property
    def item_chunk(self) -> int:
        return int(self.chunks.shape[1])


def index_items(item_embeddings: np.ndarray, *, item_chunk: int = 65536) -> ItemIndex:
    """Lay out ``item_embeddings [m, p]`` for :func:`top_k` (chunks of at most ``item_chunk``)."""
    v = _embeddings("item_embeddings", item_embeddings)
    if v.ndim != 2 or v.shape[0] == 0:
        raise ValueError(f"item_embeddings: expected a non-empty [m, p] array, got {v.shape}")
    if int(item_chunk) != item_chunk or item_chunk < 1:
        raise ValueError(f"item_chunk={item_chunk} must be a positive integer")
    m = v.shape[0]
    # Power-of-two chunk sizes keep the number of compiled variants small.
    c = min(_pow2(item_chunk, 8), _pow2(m, 8))
    n_chunks = -(-m // c)
    padded = np.zeros((n_chunks * c, v.shape[1]), np.float32)
    padded[:m] = v
    return ItemIndex(jnp.asarray(padded.reshape(n_chunks, c, v.shape[1])), m)


def _embeddings(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise InvalidArgument(f"{name}: dtype {arr.dtype} is not a number type")
    arr = arr.astype(np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise InvalidArgument(f"{name}: row {row} is not finite (NaN or inf); its scores could not "
                              "be ranked. Embed finite covariates")
    return arr


def _check_k(k, n_items: int) -> int:
    if checks.integer("k", k) < 1:
        raise ValueError(f"k={k} must be a positive integer")
    if k > n_items:
        raise ValueError(f"k={k} exceeds the {n_items} candidate items; ask for k <= {n_items}")
    return int(k)


def top_k(
    user_embeddings: np.ndarray,
    item_embeddings: np.ndarray | ItemIndex,
    k: int,
    *,
    offset: float = 0.0,
    exclude: tuple[np.ndarray, np.ndarray] | None = None,
    user_batch: int = 256,
    item_chunk: int = 65536,
) -> Recommendations:
    """Exact top-k items by inner product, batched over users and chunked over items.

    Args:
      user_embeddings: ``[n, p]``.
      item_embeddings: ``[m, p]``, or an :class:`ItemIndex` of them (faster
        for repeated queries: the catalogue is copied to the device once).
      k: items per user, ``1 <= k <= m``.
      offset: added to every score (does not change the ranking).
      exclude: pairs ``(rows [e], items [e])`` to leave out: item ``items[j]``
        is never recommended to user row ``rows[j]``.
      user_batch: users scored per dispatch.
      item_chunk: items scored per step of the scan; with ``user_batch`` it
        bounds the score buffer (``user_batch × item_chunk`` floats). Ignored
        for an :class:`ItemIndex`, which has its own.

    Returns:
      :class:`Recommendations` with ``[n, k]`` ids (rows of ``item_embeddings``) and scores.

    Example:
      >>> recs = top_k(np.eye(2, 3), np.eye(3), k=1)
      >>> recs.item_ids.tolist()
      [[0], [1]]
    """
    u = _embeddings("user_embeddings", user_embeddings)
    if int(user_batch) != user_batch or user_batch < 1:
        raise ValueError(f"user_batch={user_batch} must be a positive integer")
    if isinstance(item_embeddings, ItemIndex):
        index = item_embeddings
    else:
        v = _embeddings("item_embeddings", item_embeddings)
        if v.ndim != 2 or v.size == 0:
            raise ValueError(f"item_embeddings: expected a non-empty [m, p] array, got {v.shape}")
        if int(item_chunk) != item_chunk or item_chunk < 1:
            raise ValueError(f"item_chunk={item_chunk} must be a positive integer")
        # lax.top_k of one chunk needs at least k columns.
        index = index_items(v, item_chunk=max(int(item_chunk), _check_k(k, v.shape[0])))
    p = index.chunks.shape[2]
    if u.ndim != 2 or u.shape[1] != p:
        raise ValueError(
            f"user_embeddings {u.shape} and item embeddings [m, {p}] must be [n, p] and "
            "[m, p] with the same p"
        )
    n, m = u.shape[0], index.n_items
    k = _check_k(k, m)
    if k > index.item_chunk:
        raise ValueError(f"k={k} exceeds the index's item_chunk={index.item_chunk}; build it "
                         f"with index_items(..., item_chunk >= {k})")
    # Power-of-two buffer sizes keep the number of compiled variants small.
    b = min(_pow2(user_batch, 1), _pow2(n, 8))

    if exclude is None:
        order = np.zeros(0, np.int64)
        ex_items = np.zeros(0, np.int64)
        counts = np.zeros(n, np.int64)
    else:
        rows, ex_items = (np.asarray(a).reshape(-1).astype(np.int64) for a in exclude)
        if rows.shape != ex_items.shape:
            raise ValueError(f"exclude: rows {rows.shape} and items {ex_items.shape} must align")
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise ValueError(f"exclude: user rows must lie in 0 .. {n - 1}")
        keep = (ex_items >= 0) & (ex_items < m)
        rows, ex_items = rows[keep], ex_items[keep]
        order = np.argsort(rows, kind="stable")
        ex_items = ex_items[order]
        counts = np.bincount(rows, minlength=n)
    indptr = np.concatenate([[0], np.cumsum(counts)])

    out_ids = np.empty((n, k), np.int64)
    out_scores = np.empty((n, k), np.float32)
    off = jnp.asarray(offset, jnp.float32)
    n_items = jnp.asarray(m, jnp.int32)
    for lo in range(0, n, b):
        hi = min(lo + b, n)
        ub = np.zeros((b, u.shape[1]), np.float32)
        ub[: hi - lo] = u[lo:hi]
        width = _pow2(int(counts[lo:hi].max(initial=0)), 1)
        seen = np.full((b, width), -1, np.int32)
        for r in range(lo, hi):
            s = ex_items[indptr[r] : indptr[r + 1]]
            seen[r - lo, : s.size] = s
        scores, ids = _top_k_batch(jnp.asarray(ub), index.chunks, n_items, jnp.asarray(seen),
                                   off, k=k)
        out_scores[lo:hi] = np.asarray(scores)[: hi - lo]
        out_ids[lo:hi] = np.asarray(ids)[: hi - lo]
    return Recommendations(out_ids, out_scores)


def _ids_or_features(name: str, value, table: np.ndarray | None, model: TwoTower, side: str):
    """``(features [n, D], ids [n] or None)`` for rows of ``table`` or raw covariates."""
    width = (model.user_tower if side == "user" else model.item_tower).in_features
    arr = np.asarray(value)
    if arr.ndim == 1:
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"{name}: a 1-D array means row ids into data, so it must hold integers; "
                f"got dtype {arr.dtype}. Pass covariates as a 2-D array [n, {width}]"
            )
        if table is None:
            raise ValueError(f"{name} are row ids, so pass data= (the RatingData they index)")
        if arr.size and (arr.min() < 0 or arr.max() >= table.shape[0]):
            bad = int(arr[(arr < 0) | (arr >= table.shape[0])][0])
            raise ValueError(f"{name}: id {bad} is out of range 0 .. {table.shape[0] - 1}")
        return table[arr], arr.astype(np.int64)
    if arr.ndim == 2:
        if arr.shape[1] != width:
            raise ValueError(
                f"{name}: covariates have {arr.shape[1]} columns but the model expects {width}"
            )
        # A NaN covariate would give a NaN score, which sorts unpredictably: refused.
        return check_covariates(model, arr, side, name=name), None
    raise ValueError(f"{name}: pass row ids [n] or covariates [n, {width}], got shape {arr.shape}")


def recommend(
    model: TwoTower,
    users: np.ndarray,
    k: int,
    *,
    data: RatingData | None = None,
    items: np.ndarray | None = None,
    exclude_seen: bool = True,
    user_batch: int = 256,
    item_chunk: int = 65536,
) -> Recommendations:
    """The ``k`` best items for each user, for known or new users and items.

    Args:
      model: a trained :class:`TwoTower`.
      users: either row ids ``[n]`` (int) into ``data.user_features`` (known
        users; a user id table reads them as ids), or covariates ``[n, D_u]``
        of any users, e.g. new ones (an id table's unknown row is read).
      k: items per user.
      data: the known users, items and ratings; needed for ids, for
        ``items=None`` and for ``exclude_seen``.
      items: the candidates: ``None`` for all of ``data``'s items, row ids
        ``[m]`` (distinct) into ``data.item_features``, or covariates
        ``[m, D_i]`` of any items (new ones included).
      exclude_seen: leave out items the user rated in ``data``. It applies when
        both users and items are given as ids (or ``items=None``): covariates
        alone do not say who is who.
      user_batch, item_chunk: memory bound, as in :func:`top_k`.

    Returns:
      :class:`Recommendations`: ``item_ids [n, k]`` are rows of
      ``data.item_features`` when the candidates are ids or ``None``, and rows of
      ``items`` when they are covariates; ``scores [n, k]`` the predicted ratings.

    Example:
      >>> recs = recommend(reg.model_, np.array([0, 5]), k=10, data=split.train)
      >>> new = recommend(reg.model_, truth.sample_users(3, 0), k=10, data=split.train)
    """
    if not isinstance(model, TwoTower):
        raise TypeError(f"model must be a TwoTower, got {type(model).__name__}")
    x_u, user_rows = _ids_or_features(
        "users", users, None if data is None else data.user_features, model, "user")
    if items is None:
        if data is None:
            raise ValueError("pass items= (candidate covariates or ids) or data= (all its items)")
        items = np.arange(data.n_items)
    x_i, item_rows = _ids_or_features(
        "items", items, None if data is None else data.item_features, model, "item")
    if item_rows is not None and np.unique(item_rows).size != item_rows.size:
        raise ValueError("items: candidate ids must be distinct")
    k = _check_k(k, x_i.shape[0])

    exclude = None
    if exclude_seen and data is not None and user_rows is not None and item_rows is not None:
        # Map each rating (user, item) of Ω to (query row, candidate position).
        pos_of_item = np.full(data.n_items, -1, np.int64)
        pos_of_item[item_rows] = np.arange(item_rows.size)
        query_of_user = np.full(data.n_users, -1, np.int64)
        # One query row per user; repeated users get the same exclusions.
        uniq, first = np.unique(user_rows, return_index=True)
        query_of_user[uniq] = first
        q = query_of_user[data.user_ids]
        p = pos_of_item[data.item_ids]
        keep = (q >= 0) & (p >= 0)
        q, p = q[keep], p[keep]
        dup_rows = np.flatnonzero(query_of_user[user_rows] != np.arange(user_rows.size))
        if dup_rows.size:
            src = query_of_user[user_rows[dup_rows]]
            extra_q, extra_p = [], []
            for r, s in zip(dup_rows, src):
                sel = q == s
                extra_q.append(np.full(int(sel.sum()), r))
                extra_p.append(p[sel])
            q = np.concatenate([q, *extra_q])
            p = np.concatenate([p, *extra_p])
        exclude = (q, p)

    u_emb = embed_users(model, x_u, _rows_as_ids(model, user_rows, "user"))
    i_emb = embed_items(model, x_i, _rows_as_ids(model, item_rows, "item"))
    recs = top_k(u_emb, i_emb, k, offset=float(np.float32(model.offset[...])), exclude=exclude,
                 user_batch=user_batch, item_chunk=item_chunk)
    if item_rows is None:
        return recs
    ids = np.where(recs.item_ids >= 0, item_rows[np.maximum(recs.item_ids, 0)], -1)
    return Recommendations(ids, recs.scores)
