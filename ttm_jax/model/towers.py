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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = [
    "ACTIVATIONS",
    "Standardizer",
    "Tower",
    "TwoTower",
    "Offset",
]

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


class Tower(nnx.Module):
    """A fully-connected tower ``R^{D} → R^{p}`` (SPEC §1).

    Args:
      in_features: covariate width ``D`` (``D_u`` or ``D_i``).
      hidden: widths ``p_1, …, p_{L-1}`` of the hidden layers; may be empty, in
        which case the tower is a single linear map (an embedding table when
        the covariates are one-hot ids).
      out_features: embedding width ``p``.
      activation: name of σ, a key of :data:`ACTIVATIONS`.
      rngs: NNX random streams for the initialisation.

    Attributes:
      layers: ``nnx.List`` of ``nnx.Linear``; layer ``l`` holds ``A_l`` as
        ``kernel`` with shape ``[p_{l-1}, p_l]`` (transposed w.r.t. the paper's
        ``A_l ∈ R^{p_l × p_{l-1}}``) and ``b_l`` as ``bias`` ``[p_l]``.
        σ follows every layer but the last.
      mean, scale: input standardisation ``[D]`` (identity by default).
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation: str = "relu",
        *,
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

    def __call__(self, x: jax.Array) -> jax.Array:
        """Embed covariates ``x [n, D]`` into ``[n, p]``."""
        if x.ndim != 2 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"covariates have shape {tuple(x.shape)}, but this tower expects "
                f"[n, {self.in_features}]; pass a 2-D array with {self.in_features} columns"
            )
        sigma = ACTIVATIONS[self.activation]
        h = (x - self.mean[...][None, :]) / self.scale[...][None, :]
        for layer in self.layers[:-1]:
            h = sigma(layer(h))
        return self.layers[-1](h)

    def describe(self) -> dict:
        """The architecture as plain data: input width ``D``, layer widths, σ."""
        return {"in_features": self.in_features,
                "widths": [int(layer.kernel.shape[1]) for layer in self.layers],
                "activation": self.activation}

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
        rngs: nnx.Rngs,
    ):
        self.user_tower = Tower(
            user_features,
            hidden if user_hidden is None else user_hidden,
            embedding_dim,
            activation,
            rngs=rngs,
        )
        self.item_tower = Tower(
            item_features,
            hidden if item_hidden is None else item_hidden,
            embedding_dim,
            activation,
            rngs=rngs,
        )
        self.offset = Offset(jnp.zeros((), jnp.float32))

    def describe(self) -> dict:
        """The architecture as plain data (both towers' :meth:`Tower.describe`)."""
        return {"user_tower": self.user_tower.describe(), "item_tower": self.item_tower.describe()}

    def embed_users(self, x_u: jax.Array) -> jax.Array:
        """``f(x_u)``: user covariates ``[n, D_u]`` → embeddings ``[n, p]``."""
        return self.user_tower(x_u)

    def embed_items(self, x_i: jax.Array) -> jax.Array:
        """``g(x_i)``: item covariates ``[n, D_i]`` → embeddings ``[n, p]``."""
        return self.item_tower(x_i)

    def __call__(self, x_u: jax.Array, x_i: jax.Array) -> jax.Array:
        """Score aligned pairs: ``x_u [n, D_u]``, ``x_i [n, D_i]`` → ``[n]``."""
        return score(self.embed_users(x_u), self.embed_items(x_i), self.offset[...])


def score(user_emb: jax.Array, item_emb: jax.Array, offset: jax.Array) -> jax.Array:
    """Row-wise dot product of aligned embeddings ``[n, p] × [n, p] → [n]``."""
    return offset + jnp.sum(user_emb * item_emb, axis=-1)
