"""The two towers of the paper's eq. 1 as Flax NNX modules, and the score of a pair.

A tower is an L-layer fully-connected network ``f(x) = h_L ∘ … ∘ h_1(x)`` with
``h_l(x) = σ(A_l x + b_l)`` for the hidden layers and a linear output layer of
width ``p`` (SPEC §1), so that the embedding is sign-free. The two-tower model
scores a pair by the dot product of the two embeddings,
``R(x_u, x_i) = <f(x_u), g(x_i)>`` (eq. 1), plus an optional constant offset
(the training-set mean rating, when the regressor centres ratings).

Inputs are standardised inside the module (``(x - mean) / scale``, both
non-trainable :class:`Standardizer` variables) so that a saved model carries
the preprocessing it was trained with. The identity standardiser (mean 0,
scale 1) leaves the paper's model exactly as written.

A tower may also hold an id table (SPEC §1's hybrid model): a learnt row per
entity added to the first layer's pre-activation, ``A_1 x + b_1 + E[id]``,
which is exactly what a first layer on ``[x, one_hot(id)]`` computes, without
the one-hot block. Its last row is the "unknown" row, read by ids that had no
training rating (the non-trainable :class:`IdRows` map sends them there) and
by entities given by covariates alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = [
    "ACTIVATIONS",
    "ID_TABLE",
    "IdRows",
    "Offset",
    "Standardizer",
    "Tower",
    "TwoTower",
    "is_id_table",
]

#: The attribute name of a tower's id table (how the penalty and the optimiser find it).
ID_TABLE = "id_table"

#: Activations a tower may use, by name (the names are :data:`ttm_jax.config.ACTIVATION_NAMES`).
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "silu": jax.nn.silu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "softplus": jax.nn.softplus,
    "identity": lambda x: x,
}


class Standardizer(nnx.Variable):
    """Non-trainable preprocessing state (per-feature mean or scale)."""


class Offset(nnx.Variable):
    """Non-trainable constant added to every score (the centring mean rating)."""


class IdRows(nnx.Variable):
    """Non-trainable ``[n + 1]`` int32 map from an id to the row of the id table it reads:
    itself for an id seen in training, ``n`` (the unknown row) otherwise; ``n`` maps to ``n``."""


def is_id_table(path) -> bool:
    """Whether a ``jax.tree_util`` key path (of a model's state) leads to an id table."""
    return any(getattr(k, "key", getattr(k, "name", None)) == ID_TABLE for k in path)


def _id_table_init(key: jax.Array, n_ids: int, in_features: int, width: int) -> jax.Array:
    """``[n_ids + 1, width]``: the id rows drawn as ``lecun_normal`` draws the id rows of a
    dense first layer on ``[x, one_hot(id)]`` (fan-in ``D + n_ids``); the unknown row 0,
    as a one-hot block of zeros contributes nothing."""
    init = nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
    # The fan-in is the dense layer's, D + n_ids; only the id rows are drawn.
    rows = init(key, (in_features + n_ids, width), jnp.float32)[in_features:]
    return jnp.concatenate([rows, jnp.zeros((1, width), jnp.float32)])


class Tower(nnx.Module):
    """A fully-connected tower ``R^{D} → R^{p}`` (SPEC §1).

    Args:
      in_features: covariate width ``D`` (``D_u`` or ``D_i``).
      hidden: widths ``p_1, …, p_{L-1}`` of the hidden layers; may be empty, in
        which case the tower is a single linear map (an embedding table when
        the covariates are one-hot ids).
      out_features: embedding width ``p``.
      activation: name of σ, a key of :data:`ACTIVATIONS`.
      n_ids: entities in the id table (0: no table); ids ``0 .. n_ids - 1``
        are rows of the covariate table, ``n_ids`` is "unknown".
      rngs: NNX random streams for the initialisation.

    Attributes:
      layers: ``nnx.List`` of ``nnx.Linear``; layer ``l`` holds ``A_l`` as
        ``kernel`` with shape ``[p_{l-1}, p_l]`` (transposed w.r.t. the paper's
        ``A_l ∈ R^{p_l × p_{l-1}}``) and ``b_l`` as ``bias`` ``[p_l]``.
        σ follows every layer but the last.
      mean, scale: input standardisation ``[D]`` (identity by default).
      id_table: with ``n_ids``, ``E [n_ids + 1, p_1]`` (``nnx.Param``), added
        to the first layer's pre-activation; its last row is the unknown row.
      id_rows: with ``n_ids``, the :class:`IdRows` map ``[n_ids + 1]``
        (identity until :meth:`set_seen_ids`).
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation: str = "relu",
        *,
        n_ids: int = 0,
        rngs: nnx.Rngs,
    ):
        if in_features < 1:
            raise ValueError(f"in_features={in_features} must be >= 1")
        if out_features < 1:
            raise ValueError(f"out_features={out_features} must be >= 1")
        if any(int(w) < 1 for w in hidden):
            raise ValueError(f"hidden={tuple(hidden)} must hold widths >= 1")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation={activation!r} is not known; choose one of {sorted(ACTIVATIONS)}"
            )
        widths = [in_features, *[int(w) for w in hidden], out_features]
        self.layers = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(widths[:-1], widths[1:])]
        )
        self.activation = activation
        self.in_features = in_features
        self.out_features = out_features
        self.mean = Standardizer(jnp.zeros((in_features,), jnp.float32))
        self.scale = Standardizer(jnp.ones((in_features,), jnp.float32))
        if n_ids < 0:
            raise ValueError(f"n_ids={n_ids} must be >= 0")
        self.n_ids = int(n_ids)
        if self.n_ids:
            self.id_table = nnx.Param(_id_table_init(rngs.params(), self.n_ids, in_features,
                                                     widths[1]))
            self.id_rows = IdRows(jnp.arange(self.n_ids + 1, dtype=jnp.int32))

    def __call__(self, x: jax.Array, ids: jax.Array | None = None) -> jax.Array:
        """Embed covariates ``x [n, D]`` (and ids ``[n]``) into ``[n, p]``.

        ``ids`` (int, ``0 .. n_ids``) are read only by a tower with an id table;
        ``None`` reads the unknown row for every row of ``x`` (entities known by
        their covariates alone). Ids are not range-checked here (this runs
        under ``jit``); :mod:`ttm_jax.serving` checks them at the boundary.
        """
        if x.ndim != 2 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"covariates have shape {tuple(x.shape)}, but this tower expects "
                f"[n, {self.in_features}]; pass a 2-D array with {self.in_features} columns"
            )
        sigma = ACTIVATIONS[self.activation]
        h = (x - self.mean[...][None, :]) / self.scale[...][None, :]
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            h = layer(h)
            if k == 0 and self.n_ids:
                h = h + self.id_table[...][self._rows(ids, x.shape[0])]
            if k < last:
                h = sigma(h)
        return h

    def _rows(self, ids: jax.Array | None, n: int) -> jax.Array:
        if ids is None:
            return jnp.full((n,), self.n_ids, jnp.int32)
        if ids.shape != (n,):
            raise ValueError(f"ids have shape {tuple(ids.shape)}; expected [{n}], one per row "
                             "of the covariates")
        return self.id_rows[...][ids]

    def set_seen_ids(self, seen: jax.Array) -> None:
        """Map the ids with ``seen [n_ids]`` (bool) True to their own rows, the others to
        the unknown row (a tower without an id table ignores this)."""
        if not self.n_ids:
            return
        seen = jnp.asarray(seen, bool).reshape(self.n_ids)
        own = jnp.arange(self.n_ids, dtype=jnp.int32)
        self.id_rows[...] = jnp.concatenate([jnp.where(seen, own, self.n_ids),
                                             jnp.full((1,), self.n_ids, jnp.int32)])

    def seen_ids(self) -> jax.Array:
        """``[n_ids]`` bool: the ids that read their own row (those seen in training)."""
        return self.id_rows[...][:-1] == jnp.arange(self.n_ids, dtype=jnp.int32)

    def describe(self) -> dict:
        """The architecture as plain data: input width ``D``, layer widths, σ (and the
        id table's entity count, when there is one)."""
        out = {"in_features": self.in_features,
               "widths": [int(layer.kernel.shape[1]) for layer in self.layers],
               "activation": self.activation}
        if self.n_ids:
            out["ids"] = self.n_ids
        return out

    def set_standardization(self, mean: jax.Array, scale: jax.Array) -> None:
        """Set the input standardisation ``(x - mean) / scale``, both ``[D]``."""
        self.mean[...] = jnp.asarray(mean, jnp.float32).reshape(self.in_features)
        self.scale[...] = jnp.asarray(scale, jnp.float32).reshape(self.in_features)


class TwoTower(nnx.Module):
    """The two-tower model ``R(x_u, x_i) = offset + <f(x_u), g(x_i)>`` (eq. 1).

    Args:
      user_features: ``D_u``.
      item_features: ``D_i``.
      hidden: hidden widths shared by both towers (``user_hidden`` and
        ``item_hidden`` override it per tower).
      embedding_dim: ``p``.
      activation: σ, a key of :data:`ACTIVATIONS`.
      n_user_ids, n_item_ids: entities in each tower's id table (0: none).
      unseen_ids: ``"unknown"`` or ``"error"``: what the scoring functions of
        :mod:`ttm_jax.serving` do with an id that had no training rating
        (:class:`~ttm_jax.ModelConfig`).
      rngs: NNX random streams.
    """

    def __init__(
        self,
        user_features: int,
        item_features: int,
        hidden: Sequence[int] = (50, 50, 50, 50),
        embedding_dim: int = 30,
        activation: str = "relu",
        *,
        user_hidden: Sequence[int] | None = None,
        item_hidden: Sequence[int] | None = None,
        n_user_ids: int = 0,
        n_item_ids: int = 0,
        unseen_ids: str = "unknown",
        rngs: nnx.Rngs,
    ):
        if unseen_ids not in ("unknown", "error"):
            raise ValueError(f"unseen_ids={unseen_ids!r}: choose 'unknown' or 'error'")
        self.unseen_ids = unseen_ids
        self.user_tower = Tower(
            user_features,
            hidden if user_hidden is None else user_hidden,
            embedding_dim,
            activation,
            n_ids=n_user_ids,
            rngs=rngs,
        )
        self.item_tower = Tower(
            item_features,
            hidden if item_hidden is None else item_hidden,
            embedding_dim,
            activation,
            n_ids=n_item_ids,
            rngs=rngs,
        )
        self.offset = Offset(jnp.zeros((), jnp.float32))

    def describe(self) -> dict:
        """The architecture as plain data (both towers' :meth:`Tower.describe`)."""
        out = {"user_tower": self.user_tower.describe(), "item_tower": self.item_tower.describe()}
        if self.unseen_ids != "unknown":
            out["unseen_ids"] = self.unseen_ids
        return out

    def embed_users(self, x_u: jax.Array, ids: jax.Array | None = None) -> jax.Array:
        """``f(x_u)``: user covariates ``[n, D_u]`` (and ids ``[n]``, see
        :meth:`Tower.__call__`) → embeddings ``[n, p]``."""
        return self.user_tower(x_u, ids)

    def embed_items(self, x_i: jax.Array, ids: jax.Array | None = None) -> jax.Array:
        """``g(x_i)``: item covariates ``[n, D_i]`` (and ids ``[n]``) → embeddings ``[n, p]``."""
        return self.item_tower(x_i, ids)

    def __call__(self, x_u: jax.Array, x_i: jax.Array, user_ids: jax.Array | None = None,
                 item_ids: jax.Array | None = None) -> jax.Array:
        """Score aligned pairs: ``x_u [n, D_u]``, ``x_i [n, D_i]`` (ids ``[n]``) → ``[n]``."""
        return score(self.embed_users(x_u, user_ids), self.embed_items(x_i, item_ids),
                     self.offset[...])


def score(user_emb: jax.Array, item_emb: jax.Array, offset: jax.Array) -> jax.Array:
    """Row-wise dot product of aligned embeddings ``[n, p] × [n, p] → [n]``."""
    return offset + jnp.sum(user_emb * item_emb, axis=-1)
