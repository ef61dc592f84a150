"""The paper's synthetic study (SPEC §6) with its ground truth.

Covariates: coordinates ``1..d`` iid Uniform[0, 1], and ``x_l = x_{l-d}`` for
``l = d+1..D`` (so the support has Minkowski dimension ``d`` inside ``[0,1]^D``).
True towers, for ``j = 1..p``::

    f*_j(x) = Σ_{l=1}^{D} α_jl sin(2π x_l) + Σ_{l=1}^{D} β_jl cos(2π x_l)
              + Σ_{l=1}^{D-1} ζ_jl x_l x_{l+1}

with every coefficient iid Uniform[-c, c] (c = 0.15), and ``g*`` of the same
form with its own coefficients. Ratings ``r_ui = <f*(x_u), g*(x_i)> + ε_ui``,
``ε ~ Normal(0, σ²)`` with ``σ² = 0.1``; Ω is drawn uniformly without
replacement from all ``n_users × n_items`` pairs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ttm_jax.data.ratings import RatingData

__all__ = [
    "GroundTruth",
    "SyntheticData",
    "TrigMap",
    "make_synthetic",
    "sample_pairs",
    "sample_intrinsic_covariates",
    "assemble_synthetic",
]


class GroundTruth(NamedTuple):
    """The truth behind a synthetic :class:`RatingData`.

    Attributes:
      user_map: ``f*``: covariates ``[n, D_u]`` → embeddings ``[n, p]`` (numpy).
      item_map: ``g*``: covariates ``[n, D_i]`` → embeddings ``[n, p]``.
      user_embeddings: ``f*(x_u)`` for the data's users, ``[n_users, p]``.
      item_embeddings: ``g*(x_i)`` for the data's items, ``[n_items, p]``.
      sample_users: ``(n, seed) -> [n, D_u]`` fresh covariates from μ_u.
      sample_items: ``(n, seed) -> [n, D_i]`` fresh covariates from μ_i.
      noise_var: ``σ²`` of the rating noise (the squared test-RMSE floor).
      intrinsic_dim: ``d`` of the covariate supports (both sides).
      smoothness: Hölder ``β`` of the true maps (``inf`` for analytic maps).
    """

    user_map: Callable[[np.ndarray], np.ndarray]
    item_map: Callable[[np.ndarray], np.ndarray]
    user_embeddings: np.ndarray
    item_embeddings: np.ndarray
    sample_users: Callable[[int, int | np.random.Generator], np.ndarray]
    sample_items: Callable[[int, int | np.random.Generator], np.ndarray]
    noise_var: float
    intrinsic_dim: int
    smoothness: float

    def rating(self, x_u: np.ndarray, x_i: np.ndarray) -> np.ndarray:
        """``R*(x_u, x_i) = <f*(x_u), g*(x_i)>`` for aligned rows ``[n, D_u]``, ``[n, D_i]``."""
        return np.sum(self.user_map(x_u) * self.item_map(x_i), axis=-1)


class SyntheticData(NamedTuple):
    """A synthetic data set and the truth that generated it."""

    data: RatingData
    truth: GroundTruth


def sample_intrinsic_covariates(
    n: int, ambient_dim: int, intrinsic_dim: int, rng: np.random.Generator,
    dtype=np.float32,
) -> np.ndarray:
    """SPEC §6 covariates ``[n, D]``: ``x_1..x_d`` iid Uniform[0,1], ``x_l = x_{l-d}`` for ``l > d``.

    The one sampler of the library and of :mod:`theory` (whose
    ``known_sets.spec_covariates`` calls it): the support is a ``d``-dimensional
    cube inside ``[0,1]^D``, of Minkowski dimension ``d``.

    Args:
      n: rows (users or items).
      ambient_dim: ``D``.
      intrinsic_dim: ``d <= D``.
      rng: the generator to draw from.
      dtype: of the result (float32 for models, float64 for dimension estimates).
    """
    free = rng.uniform(0.0, 1.0, size=(n, intrinsic_dim))
    return free[:, np.arange(ambient_dim) % intrinsic_dim].astype(dtype)


def sample_pairs(
    n_users: int, n_items: int, n_pairs: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` distinct (user, item) pairs, uniformly without replacement."""
    total = n_users * n_items
    if not 0 < n_pairs <= total:
        raise ValueError(
            f"n_ratings={n_pairs} must lie in 1 .. n_users*n_items = {total}"
        )
    if n_pairs > total // 4:
        codes = rng.choice(total, size=n_pairs, replace=False)
    else:
        # Rejection keeps memory O(n_pairs) for huge catalogues, where a
        # permutation of all n_users*n_items pairs would not fit.
        codes = np.empty(0, np.int64)
        while codes.size < n_pairs:
            extra = rng.integers(0, total, size=int(1.1 * (n_pairs - codes.size)) + 16)
            codes = np.concatenate([codes, extra])
            _, first = np.unique(codes, return_index=True)
            codes = codes[np.sort(first)]
        codes = codes[:n_pairs]
    return (codes // n_items).astype(np.int32), (codes % n_items).astype(np.int32)


def assemble_synthetic(
    user_map: Callable[[np.ndarray], np.ndarray],
    item_map: Callable[[np.ndarray], np.ndarray],
    x_u: np.ndarray,
    x_i: np.ndarray,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    rng: np.random.Generator,
    *,
    noise_var: float,
    intrinsic_dim: int,
    smoothness: float,
) -> SyntheticData:
    """Rate the pairs ``(user_ids[k], item_ids[k])`` by ``<f*(x_u), g*(x_i)> + ε``,
    ``ε ~ Normal(0, noise_var)`` drawn from ``rng``, and package the truth.

    Fresh covariates come from :func:`sample_intrinsic_covariates` with the
    ambient width of ``x_u``/``x_i`` and ``intrinsic_dim``.
    """
    u_emb, i_emb = user_map(x_u), item_map(x_i)
    clean = np.sum(u_emb[user_ids] * i_emb[item_ids], axis=-1)
    ratings = clean + rng.normal(0.0, np.sqrt(noise_var), size=len(user_ids))

    def sampler_for(width: int):
        def sample(n: int, seed_or_rng: int | np.random.Generator) -> np.ndarray:
            return sample_intrinsic_covariates(n, width, intrinsic_dim,
                                               np.random.default_rng(seed_or_rng))
        return sample

    truth = GroundTruth(
        user_map=user_map,
        item_map=item_map,
        user_embeddings=u_emb,
        item_embeddings=i_emb,
        sample_users=sampler_for(x_u.shape[1]),
        sample_items=sampler_for(x_i.shape[1]),
        noise_var=float(noise_var),
        intrinsic_dim=int(intrinsic_dim),
        smoothness=float(smoothness),
    )
    return SyntheticData(RatingData(x_u, x_i, user_ids, item_ids, ratings), truth)


@dataclasses.dataclass(frozen=True)
class TrigMap:
    """SPEC §6's trigonometric map of the first ``m`` coordinates (analytic: β = ∞).

    ``f_j(z) = Σ_{l<m} A_jl sin(2π z_l) + B_jl cos(2π z_l) + Σ_{l<m−1} C_jl z_l z_{l+1}``
    with ``z = x[:, :m]``; call on ``x [n, D ≥ m]``, returns ``[n, p]`` float64.
    :func:`make_synthetic` reads all ``m = D`` ambient coordinates (SPEC §6 as
    written); :func:`~ttm_jax.data.holder.make_holder_synthetic` reads the
    ``m = d`` free ones.

    Attributes:
      coef_sin, coef_cos: ``[p, m]``; coef_prod: ``[p, m − 1]``.
    """

    coef_sin: np.ndarray
    coef_cos: np.ndarray
    coef_prod: np.ndarray

    @property
    def intrinsic_dim(self) -> int:
        """``m``, the number of leading coordinates the map reads."""
        return int(self.coef_sin.shape[1])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        d = self.intrinsic_dim
        if x.ndim != 2 or x.shape[1] < d:
            raise ValueError(f"x has shape {x.shape}; expected [n, D] with D >= intrinsic_dim={d}")
        z = x[:, :d]
        out = np.sin(2 * np.pi * z) @ self.coef_sin.T + np.cos(2 * np.pi * z) @ self.coef_cos.T
        if d > 1:
            out = out + (z[:, :-1] * z[:, 1:]) @ self.coef_prod.T
        return out


def _check_positive_int(name: str, value: int) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"{name}={value} must be a positive integer")


def make_synthetic(
    n_users: int = 1500,
    n_items: int = 1500,
    n_ratings: int = 100_000,
    *,
    intrinsic_dim: int = 20,
    ambient_dim: int = 50,
    embedding_dim: int = 30,
    coef_range: float = 0.15,
    noise_var: float = 0.1,
    seed: int,
) -> SyntheticData:
    """Draw the paper's synthetic data set (SPEC §6) with its ground truth.

    Args:
      n_users, n_items: table sizes (the paper: 1500, 2000 or 3000 each).
      n_ratings: ``|Ω|``, drawn uniformly without replacement (paper: 100,000).
      intrinsic_dim: ``d`` (paper: 20, 30, 40); must be ``<= ambient_dim``.
      ambient_dim: ``D = D_u = D_i`` (paper: 50).
      embedding_dim: ``p`` (paper: 30).
      coef_range: ``c``: coefficients iid Uniform[-c, c] (paper: 0.15).
      noise_var: ``σ²`` of the Gaussian rating noise (paper: 0.1).
      seed: seeds everything (covariates, coefficients, Ω, noise).

    Returns:
      :class:`SyntheticData` ``(data, truth)``.

    Example:
      >>> data, truth = make_synthetic(100, 80, 2000, seed=0)
      >>> data.user_features.shape, truth.user_embeddings.shape
      ((100, 50), (100, 30))
    """
    for name, v in (
        ("n_users", n_users),
        ("n_items", n_items),
        ("n_ratings", n_ratings),
        ("intrinsic_dim", intrinsic_dim),
        ("ambient_dim", ambient_dim),
        ("embedding_dim", embedding_dim),
    ):
        _check_positive_int(name, v)
    if intrinsic_dim > ambient_dim:
        raise ValueError(
            f"intrinsic_dim={intrinsic_dim} must be <= ambient_dim={ambient_dim}"
        )
    if ambient_dim < 2:
        raise ValueError(f"ambient_dim={ambient_dim} must be >= 2 (the maps use x_l x_(l+1))")
    if not (np.isfinite(coef_range) and coef_range > 0):
        raise ValueError(f"coef_range={coef_range} must be positive and finite")
    if not (np.isfinite(noise_var) and noise_var >= 0):
        raise ValueError(f"noise_var={noise_var} must be >= 0 and finite")

    rng = np.random.default_rng(seed)
    D, p, c = ambient_dim, embedding_dim, coef_range

    def coefs():
        return (
            rng.uniform(-c, c, (p, D)),
            rng.uniform(-c, c, (p, D)),
            rng.uniform(-c, c, (p, D - 1)),
        )

    f_star = TrigMap(*coefs())
    g_star = TrigMap(*coefs())
    x_u = sample_intrinsic_covariates(n_users, D, intrinsic_dim, rng)
    x_i = sample_intrinsic_covariates(n_items, D, intrinsic_dim, rng)
    u_ids, i_ids = sample_pairs(n_users, n_items, n_ratings, rng)
    return assemble_synthetic(
        f_star, g_star, x_u, x_i, u_ids, i_ids, rng,
        noise_var=noise_var, intrinsic_dim=intrinsic_dim, smoothness=float("inf"),
    )
