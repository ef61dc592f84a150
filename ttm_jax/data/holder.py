"""Synthetic data with a chosen Hölder smoothness β and intrinsic dimension d.

Theorem 2 predicts ``‖R̂ − R*‖² ≲ |Ω|^{−2β/(2β+d_ui)} (log|Ω|)²``; measuring that
rate needs true maps ``f*``, ``g*`` whose smoothness is exactly β and that are
genuinely functions of all ``d`` intrinsic coordinates. This module draws them.

Covariates (as SPEC §6): ``z ~ Uniform[0,1]^d`` and ``x_l = z_{l mod d}`` for
``l = 0..D−1``, so the support is a ``d``-dimensional cube inside ``[0,1]^D``
(Minkowski dimension ``d``). The maps read the free coordinates ``z = x[:, :d]``.

**Finite β: random multilevel "value noise".** For each output ``j = 1..p``::

    f*_j(z) = a / N · Σ_{k=0}^{K} 2^{−kβ} Σ_{c ∈ {0..2^k}^d} ξ_{jkc} Φ(2^k z − c)

with ``Φ(u) = Π_m φ(u_m)``, ``φ(t) = w(|t|)`` on ``[−1, 1]`` (0 outside), and the
C^∞ fade ``w(t) = s(1−t) / (s(t) + s(1−t))``, ``s(t) = exp(−1/t)`` (``s = 0`` for
``t ≤ 0``). ``w`` goes from 1 at ``t = 0`` to 0 at ``t = 1`` with every derivative
vanishing at both ends and ``w(t) + w(1−t) = 1``, so ``{Φ(· − c)}`` is a C^∞
partition of unity on the lattice ``Z^d``: level ``k`` is a C^∞ interpolation of
independent random signs ``ξ_{jkc} = ±1`` placed on the lattice ``2^{−k} Z^d``.
The signs come from a 64-bit hash of (seed, level, lattice point) — bit ``j`` of
the hash is output ``j``'s sign — so no ``(2^k + 1)^d`` table is ever stored; a
point touches ``2^d`` lattice corners per level and costs ``O(K 2^d)``.
``N² = ρ^d Σ_k 2^{−2kβ}`` with ``ρ = ∫_0^1 w² + (1−w)²`` makes
``E f*_j(z)² = a²`` exactly (averaged over signs and ``z``); ``a = (s²/p)^{1/4}``
gives ``Var R* = p a⁴ = s²`` for a chosen signal variance ``s²``.

*Why the smoothness is exactly β* (``docs/rate_sweep.md`` has the details).
Upper bound: within a level the bumps overlap only ``2^d`` at a time, so
``‖∂^α (level k)‖_∞ ≤ C_α 2^{k(|α| − β)}``; summing the small-``h`` Taylor
bound ``2^{k(m+1−β)} |h|`` over ``2^k ≤ 1/|h|`` and the crude bound
``2^{k(m−β)}`` over the rest gives ``|∂^m f(x+h) − ∂^m f(x)| ≲ |h|^{β−m}`` for
``m = ⌊β⌋`` and non-integer β: ``f ∈ C^β``, uniformly in ``K``. At integer β the
two sums meet with a ``log(1/|h|)``: the maps are in the Zygmund class
``Λ^β = B^β_{∞,∞}`` (``|Δ_h² ∂^{β−1} f| ≲ |h|``), which has the same
approximation and minimax rates as ``C^β``. Lower bound: pair ``f`` with a test
function ``Δ^r χ`` localised at scale ``2^{−k}`` (it annihilates polynomials of
degree ``< 2r``, so for any ``f ∈ C^{β'}``, ``|⟨f, Δ^r χ_{k}⟩| ≲ 2^{−k(β'+d)}``).
The level-``k`` sign of one lattice point enters this pairing with a fixed
non-zero weight ``∝ 2^{−k(β+d)}``, independently of everything else, so with
probability ≥ 1/2 per location the pairing is at least that large: no
``β' > β`` can hold, at any resolved level ``k ≤ K``.

*Truncation.* The sum stops at level ``K``: the truncated map is C^∞, but it is
β-smooth at every scale ``≥ 2^{−K}``, and its missing tail carries a fraction
``≈ 2^{−2(K+1)β}`` of the signal variance. :func:`default_levels` picks ``K`` so
that this tail is below 1% of the predicted excess risk at the largest ``|Ω|``.

*Genuinely d-variate.* Level ``k ≥ 1`` assigns independent signs to the
``(2^k+1)^d`` lattice points, so its ``d``-fold mixed difference is non-zero:
``f*`` is not a sum of functions of fewer than ``d`` coordinates (which would
converge at the lower-dimensional rate). ``tests/test_holder.py`` checks this.

**β = ∞.** The SPEC §6 trigonometric maps restricted to the ``d`` free
coordinates, ``f*_j(z) = Σ_{l<d} α_jl sin(2π z_l) + β_jl cos(2π z_l) +
Σ_{l<d−1} ζ_jl z_l z_{l+1}``, coefficients iid Uniform[−c, c] with ``c`` set so
that ``E f*_j² = a²`` as above (analytic maps: every β holds).
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

import numpy as np

from ttm_jax.data.synthetic import (
    SyntheticData,
    TrigMap,
    assemble_synthetic,
    sample_intrinsic_covariates,
    sample_pairs,
)

__all__ = [
    "HolderMap",
    "default_levels",
    "holder_map",
    "make_holder_synthetic",
    "smooth_fade",
]

_MAX_LEVELS = 30          # 2^k z stays exact in float64 and lattice ids in int64
_MAX_EMBEDDING_DIM = 64   # one sign bit of the 64-bit corner hash per output
_ROW_CHUNK = 4096         # rows per block: keeps the [rows, 2^d] corner arrays small

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        return x ^ (x >> np.uint64(31))


def smooth_fade(t: np.ndarray) -> np.ndarray:
    """``w(t) = s(1−t) / (s(t) + s(1−t))``, ``s(t) = exp(−1/t)``: C^∞, 1 at 0, 0 at 1.

    Every derivative vanishes at ``t = 0`` and ``t = 1``, and ``w(t) + w(1 − t) = 1``.
    Input ``[...]`` in ``[0, 1]`` (clipped), output the same shape.
    """
    t = np.clip(np.asarray(t, np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", over="ignore"):  # exp(-1/t) → 0 as t → 0
        s0 = np.where(t > 0, np.exp(-1.0 / np.where(t > 0, t, 1.0)), 0.0)
        s1 = np.where(t < 1, np.exp(-1.0 / np.where(t < 1, 1.0 - t, 1.0)), 0.0)
    return s1 / (s0 + s1)


@lru_cache(maxsize=1)
def _fade_rho() -> float:
    """``ρ = ∫_0^1 w(t)² + (1 − w(t))² dt`` (Gauss–Legendre; w is smooth)."""
    nodes, weights = np.polynomial.legendre.leggauss(200)
    t = 0.5 * (nodes + 1.0)
    w = smooth_fade(t)
    return float(0.5 * np.sum(weights * (w**2 + (1.0 - w) ** 2)))


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or int(value) != value or value < low or (
        high is not None and value > high
    ):
        bound = f"an integer >= {low}" if high is None else f"an integer in {low} .. {high}"
        raise ValueError(f"{name}={value!r} must be {bound}")
    return int(value)


def _check_smoothness(beta: float, *, allow_inf: bool) -> float:
    beta = float(beta)
    if math.isnan(beta) or beta <= 0 or (math.isinf(beta) and not allow_inf):
        allowed = "positive (math.inf allowed)" if allow_inf else "positive and finite"
        raise ValueError(f"smoothness={beta!r} must be {allowed}")
    return beta


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    value = float(value)
    ok = value >= 0 if allow_zero else value > 0
    if not (math.isfinite(value) and ok):
        raise ValueError(f"{name}={value!r} must be {'>= 0' if allow_zero else 'positive'} and finite")
    return value


@dataclasses.dataclass(frozen=True)
class HolderMap:
    """A random map ``[0,1]^d → R^p`` of Hölder smoothness β (module docstring).

    Call it on covariates ``x [n, D]`` (``D ≥ d``; only ``x[:, :d]`` is read) to
    get ``[n, p]`` float64. Build it with :func:`holder_map`.

    Attributes:
      smoothness: β (finite, > 0).
      intrinsic_dim: ``d``.
      embedding_dim: ``p``.
      levels: ``K``, the finest level (levels ``0..K``).
      amplitude: ``a``, the root mean square of each output coordinate.
      seed: seeds the signs.
    """

    smoothness: float
    intrinsic_dim: int
    embedding_dim: int
    levels: int
    amplitude: float
    seed: int

    @property
    def normalizer(self) -> float:
        """``N = (ρ^d Σ_k 2^{−2kβ})^{1/2}``, so that ``E f_j² = a²``."""
        k = np.arange(self.levels + 1)
        total = float(np.sum(2.0 ** (-2.0 * self.smoothness * k)))
        return math.sqrt(_fade_rho() ** self.intrinsic_dim * total)

    def level(self, x: np.ndarray, k: int) -> np.ndarray:
        """Level ``k``'s unscaled term ``Σ_c ξ_{jkc} Φ(2^k z − c)``, ``[n, p]``."""
        z = self._free_coordinates(x)
        out = np.empty((z.shape[0], self.embedding_dim), np.float64)
        for start in range(0, z.shape[0], _ROW_CHUNK):
            out[start : start + _ROW_CHUNK] = self._level_block(z[start : start + _ROW_CHUNK], k)
        return out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = self._free_coordinates(x)
        out = np.zeros((z.shape[0], self.embedding_dim), np.float64)
        for start in range(0, z.shape[0], _ROW_CHUNK):
            block = z[start : start + _ROW_CHUNK]
            acc = out[start : start + _ROW_CHUNK]
            for k in range(self.levels + 1):
                acc += 2.0 ** (-k * self.smoothness) * self._level_block(block, k)
        return out * (self.amplitude / self.normalizer)

    def _free_coordinates(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] < self.intrinsic_dim:
            raise ValueError(
                f"x has shape {x.shape}; expected [n, D] with D >= intrinsic_dim="
                f"{self.intrinsic_dim}"
            )
        return np.clip(x[:, : self.intrinsic_dim], 0.0, 1.0)

    def _level_block(self, z: np.ndarray, k: int) -> np.ndarray:
        n, d = z.shape
        cells = 1 << k
        u = z * cells
        lo = np.minimum(np.floor(u), cells - 1).astype(np.int64)
        w_lo = smooth_fade(u - lo)
        # Additive per-coordinate hash keys: the key of a corner is the wrapped
        # sum over coordinates, so the 2^d corners are built by doubling, O(2^d)
        # per point, instead of hashing d coordinates for each corner.
        keys = np.zeros((n, 1), np.uint64)
        weights = np.ones((n, 1), np.float64)
        with np.errstate(over="ignore"):
            level_key = _splitmix64(
                np.array([self.seed], np.uint64) * _MIX1 + np.uint64(k) * _MIX2
            )[0]
            for m in range(d):
                coord_key = _splitmix64(level_key + np.uint64(m + 1) * _GOLDEN)
                k_lo = _splitmix64(coord_key ^ lo[:, m].astype(np.uint64))
                k_hi = _splitmix64(coord_key ^ (lo[:, m] + 1).astype(np.uint64))
                keys = np.concatenate([keys + k_lo[:, None], keys + k_hi[:, None]], axis=1)
                weights = np.concatenate(
                    [weights * w_lo[:, m, None], weights * (1.0 - w_lo[:, m, None])], axis=1
                )
        corner_hash = _splitmix64(keys)
        out = np.empty((n, self.embedding_dim), np.float64)
        total = weights.sum(axis=1)  # 1 (partition of unity); kept for rounding
        for j in range(self.embedding_dim):
            bit = ((corner_hash >> np.uint64(j)) & np.uint64(1)).astype(np.float64)
            out[:, j] = total - 2.0 * np.sum(weights * bit, axis=1)  # Σ_c w_c ξ_c, ξ = 1 − 2 bit
        return out


def _random_trig_map(intrinsic_dim: int, embedding_dim: int, amplitude: float, seed: int) -> TrigMap:
    d, p = intrinsic_dim, embedding_dim
    # E f_j² = (c²/3) (d · (1/2 + 1/2) + (d − 1) E[z_l² z_{l+1}²]) with E z² z'² = 1/9.
    c = amplitude * math.sqrt(3.0 / (d + (d - 1) / 9.0))
    rng = np.random.default_rng([seed, 0x7219])
    return TrigMap(
        rng.uniform(-c, c, (p, d)), rng.uniform(-c, c, (p, d)), rng.uniform(-c, c, (p, d - 1))
    )


def default_levels(smoothness: float, intrinsic_dim: int, max_ratings: int,
                   *, tail_fraction: float = 0.01) -> int:
    """The finest level ``K`` whose truncated tail is invisible at ``|Ω| ≤ max_ratings``.

    Levels above ``K`` would carry a fraction ``≈ 2^{−2(K+1)β}`` of the signal
    variance; this returns the least ``K ≥ 1`` with that fraction at most
    ``tail_fraction · max_ratings^{−2β/(2β+d)}`` (a fraction of Theorem 2's rate at
    the largest ``|Ω|``), capped at 30. β = ∞ returns 0 (no levels are used).

    Example::

      >>> default_levels(1.0, 2, 16_000)
      6
    """
    beta = _check_smoothness(smoothness, allow_inf=True)
    d = _check_int("intrinsic_dim", intrinsic_dim, 1)
    n = _check_int("max_ratings", max_ratings, 2)
    tail_fraction = _check_positive("tail_fraction", tail_fraction)
    if math.isinf(beta):
        return 0
    need = math.log2(1.0 / tail_fraction) / (2 * beta) + math.log2(n) / (2 * beta + d)
    return int(min(_MAX_LEVELS, max(1, math.ceil(need) - 1)))


def holder_map(
    smoothness: float,
    intrinsic_dim: int,
    embedding_dim: int,
    *,
    levels: int,
    amplitude: float = 1.0,
    seed: int,
) -> HolderMap | TrigMap:
    """A random map ``[0,1]^d → R^p`` with Hölder smoothness exactly β.

    Args:
      smoothness: β > 0; ``math.inf`` gives the SPEC §6 trigonometric map.
      intrinsic_dim: ``d ≥ 1``, the number of free coordinates it depends on.
      embedding_dim: ``p`` in 1 .. 64.
      levels: ``K ≥ 0``, the finest dyadic level (see :func:`default_levels`);
        ignored for β = ∞.
      amplitude: ``a``, the root mean square of each output coordinate.
      seed: seeds the random signs (or coefficients).

    Returns:
      A callable ``x [n, D ≥ d] → [n, p]`` (:class:`HolderMap` or :class:`TrigMap`).
    """
    beta = _check_smoothness(smoothness, allow_inf=True)
    d = _check_int("intrinsic_dim", intrinsic_dim, 1)
    p = _check_int("embedding_dim", embedding_dim, 1, _MAX_EMBEDDING_DIM)
    amplitude = _check_positive("amplitude", amplitude)
    seed = _check_int("seed", seed, 0)
    if math.isinf(beta):
        return _random_trig_map(d, p, amplitude, seed)
    levels = _check_int("levels", levels, 0, _MAX_LEVELS)
    return HolderMap(beta, d, p, levels, amplitude, seed)


def make_holder_synthetic(
    n_ratings: int,
    *,
    smoothness: float,
    intrinsic_dim: int,
    ambient_dim: int = 16,
    embedding_dim: int = 3,
    n_users: int | None = None,
    n_items: int | None = None,
    levels: int | None = None,
    signal_var: float = 1.0,
    noise_var: float = 0.25,
    seed: int,
    map_seed: int | None = None,
) -> SyntheticData:
    """Ratings ``r = <f*(x_u), g*(x_i)> + ε`` with β-smooth maps on a d-dimensional support.

    Args:
      n_ratings: ``|Ω|``.
      smoothness: β of ``f*`` and ``g*`` (``math.inf``: SPEC §6 trigonometric maps).
      intrinsic_dim: ``d = d_u = d_i`` (so ``d_ui = d``).
      ambient_dim: ``D = D_u = D_i ≥ d``; coordinates repeat cyclically (SPEC §6).
      embedding_dim: ``p`` of the true maps, 1 .. 64.
      n_users, n_items: ``None`` (both): Theorem 2's design, ``|Ω|`` iid pairs
        from ``μ_u × μ_i``: ``n_users = n_items = |Ω|`` and pair ``k`` is
        (user ``k``, item ``k``), each with fresh covariates. Given (both): the
        SPEC §6 design, Ω drawn uniformly without replacement from the
        ``n_users × n_items`` table.
      levels: the finest level ``K`` (default :func:`default_levels` at ``n_ratings``).
      signal_var: ``Var R*`` (``E f*_j² = (signal_var / p)^{1/2}``).
      noise_var: ``σ²`` of the Gaussian noise ε (excluded from the excess risk).
      seed: seeds covariates, Ω and noise.
      map_seed: seeds ``f*`` and ``g*`` (default: derived from ``seed``); hold it
        fixed while ``|Ω|`` varies to study one truth at several sample sizes.

    Returns:
      :class:`~ttm_jax.synthetic.SyntheticData` with the same :class:`GroundTruth`
      interface as :func:`~ttm_jax.synthetic.make_synthetic` (``smoothness = β``).

    Example::

      >>> data, truth = make_holder_synthetic(1000, smoothness=1.0, intrinsic_dim=2, seed=0)
      >>> data.user_features.shape, truth.user_embeddings.shape, truth.smoothness
      ((1000, 16), (1000, 3), 1.0)
    """
    n_ratings = _check_int("n_ratings", n_ratings, 1)
    beta = _check_smoothness(smoothness, allow_inf=True)
    d = _check_int("intrinsic_dim", intrinsic_dim, 1)
    D = _check_int("ambient_dim", ambient_dim, 1)
    if d > D:
        raise ValueError(f"intrinsic_dim={d} must be <= ambient_dim={D}")
    p = _check_int("embedding_dim", embedding_dim, 1, _MAX_EMBEDDING_DIM)
    if (n_users is None) != (n_items is None):
        raise ValueError(
            "n_users and n_items must both be given (SPEC §6 design) or both be None "
            "(iid pairs, Theorem 2's design)"
        )
    if n_users is not None:
        n_users = _check_int("n_users", n_users, 1)
        n_items = _check_int("n_items", n_items, 1)
    signal_var = _check_positive("signal_var", signal_var)
    noise_var = _check_positive("noise_var", noise_var, allow_zero=True)
    seed = _check_int("seed", seed, 0)
    if map_seed is None:
        map_seed = int(np.random.default_rng([seed, 0x4D41]).integers(2**62))
    map_seed = _check_int("map_seed", map_seed, 0)
    if levels is None:
        levels = default_levels(beta, d, max(n_ratings, 2))

    amplitude = (signal_var / p) ** 0.25
    map_rng = np.random.default_rng(map_seed)
    user_seed, item_seed = (int(s) for s in map_rng.integers(0, 2**62, size=2))
    f_star = holder_map(beta, d, p, levels=levels, amplitude=amplitude, seed=user_seed)
    g_star = holder_map(beta, d, p, levels=levels, amplitude=amplitude, seed=item_seed)

    rng = np.random.default_rng(seed)
    if n_users is None:
        x_u = sample_intrinsic_covariates(n_ratings, D, d, rng)
        x_i = sample_intrinsic_covariates(n_ratings, D, d, rng)
        u_ids = i_ids = np.arange(n_ratings, dtype=np.int32)
    else:
        x_u = sample_intrinsic_covariates(n_users, D, d, rng)
        x_i = sample_intrinsic_covariates(n_items, D, d, rng)
        u_ids, i_ids = sample_pairs(n_users, n_items, n_ratings, rng)
    return assemble_synthetic(
        f_star, g_star, x_u, x_i, u_ids, i_ids, rng,
        noise_var=noise_var, intrinsic_dim=d, smoothness=beta,
    )
