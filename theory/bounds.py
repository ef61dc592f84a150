"""Theorems 1 and 2 as pure functions of their parameters (SPEC §5).

The paper states orders, not constants: every function here returns the order
with a ``constant`` factor argument (1 by default), so that a study can plug in
a constant it has calibrated. Symbols: ``|Ω|`` the number of observed pairs
(``n_obs``), ``β`` the Hölder smoothness of ``f*`` and ``g*``, ``d_u`` and ``d_i``
the upper Minkowski dimensions of the covariate supports and
``d_ui = max{d_u, d_i}``, ``s`` Theorem 1's exponent of the parameter scale.

Theorem 2 (strong convergence): with probability at least
``1 − 24 exp(−C_1 |Ω|^{d_ui/(2β+d_ui)} log|Ω|)``,

    ‖R̂ − R*‖²_{L2(μ_ui)} ≤ L_ui · |Ω|^{−2β/(2β+d_ui)} · (log|Ω|)²

with depth ``L = O(β log²β / d_u)``, width ``W = O(|Ω|^{d_ui/(2β+d_ui)} log|Ω|)``,
scale ``B = O(|Ω|^{2βs/(2β+d_ui)})`` and ``4 λ |Ω| J(R_0) ≤ L_ui |Ω|^{−2β/(2β+d_ui)} log|Ω|``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "Theorem2Architecture",
    "theorem1_error",
    "theorem1_scale",
    "theorem1_width",
    "theorem2_architecture",
    "theorem2_depth",
    "theorem2_exponent",
    "theorem2_max_penalty",
    "theorem2_probability",
    "theorem2_rate",
    "theorem2_scale",
    "theorem2_width",
]


class Theorem2Architecture(NamedTuple):
    """Theorem 2's prescribed towers at one ``|Ω|`` (orders times the given constants).

    Attributes:
      user_depth: ``L = c_L β log²β / d_u`` (real-valued; use ``max(1, ceil(·))`` layers).
      item_depth: ``L̃ = c_L β log²β / d_i``.
      width: ``W = W̃ = c_W |Ω|^{d_ui/(2β+d_ui)} log|Ω|`` effective parameters.
      scale: ``B = B̃ = c_B |Ω|^{2βs/(2β+d_ui)}``.
      exponent: the rate exponent ``2β/(2β + d_ui)``.
    """

    user_depth: float
    item_depth: float
    width: float
    scale: float
    exponent: float


def theorem2_exponent(beta: float, d_u: float, d_i: float | None = None) -> float:
    """The rate exponent ``2β / (2β + d_ui)`` of Theorem 2, ``d_ui = max{d_u, d_i}``.

    The predicted log-log slope of the squared L2 error against ``|Ω|`` is minus
    this (before the ``(log|Ω|)²`` factor). It tends to 1 as ``β → ∞`` (pass
    ``math.inf``) and equals 1 when ``d_ui = 0`` (finite covariate supports).

    Args:
      beta: ``β > 0`` (``math.inf`` allowed).
      d_u: ``d_u ≥ 0``, the user covariates' intrinsic dimension.
      d_i: ``d_i ≥ 0``; ``None`` means ``d_i = d_u``.

    Returns:
      The exponent in ``(0, 1]``.

    Example::

      >>> theorem2_exponent(2.0, 20.0, 30.0)      # 4 / (4 + 30)
      0.11764705882352941
      >>> theorem2_exponent(math.inf, 20.0)
      1.0
    """
    beta = _checked_beta(beta, allow_inf=True)
    d_ui = _d_ui(d_u, d_i)
    if math.isinf(beta):
        return 1.0
    return 2.0 * beta / (2.0 * beta + d_ui)


def theorem2_rate(
    n_obs: float | np.ndarray,
    beta: float,
    d_u: float,
    d_i: float | None = None,
    *,
    constant: float = 1.0,
    log_power: float = 2.0,
) -> float | np.ndarray:
    """Theorem 2's bound ``c · |Ω|^{−2β/(2β+d_ui)} · (log|Ω|)²`` on the squared L2 error.

    Args:
      n_obs: ``|Ω| > 1``, the number of observed pairs; scalar or array ``[k]``.
      beta: ``β > 0`` (``math.inf`` gives ``|Ω|^{-1} (log|Ω|)²``).
      d_u: ``d_u ≥ 0``.
      d_i: ``d_i ≥ 0`` (``None``: same as ``d_u``).
      constant: ``c``, the theorem's ``L_ui`` times the unknown constants.
      log_power: the power of ``log|Ω|`` (2 in the theorem).

    Returns:
      Same shape as ``n_obs`` (units: squared rating).

    Example::

      >>> float(theorem2_rate(math.e**2, math.inf, 1.0))   # e^-2 · 2²
      0.5413411329464508
    """
    n = _checked_n_obs(n_obs)
    exponent = theorem2_exponent(beta, d_u, d_i)
    constant = _checked_constant(constant)
    return _like(n_obs, constant * n ** (-exponent) * np.log(n) ** float(log_power))


def theorem2_width(
    n_obs: float | np.ndarray,
    beta: float,
    d_u: float,
    d_i: float | None = None,
    *,
    constant: float = 1.0,
) -> float | np.ndarray:
    """Theorem 2's width ``W(|Ω|) = c · |Ω|^{d_ui/(2β+d_ui)} · log|Ω|`` (effective parameters).

    Args:
      n_obs: ``|Ω| > 1``, scalar or array.
      beta: ``β > 0``.
      d_u, d_i: intrinsic dimensions (``d_i=None``: same as ``d_u``).
      constant: ``c``.

    Returns:
      ``W`` (a count, real-valued), same shape as ``n_obs``.

    Example::

      >>> round(float(theorem2_width(100_000, 1.0, 2.0)), 1)   # |Ω|^{1/2} log|Ω|
      3640.7
    """
    n = _checked_n_obs(n_obs)
    beta = _checked_beta(beta, allow_inf=True)
    d_ui = _d_ui(d_u, d_i)
    power = 0.0 if math.isinf(beta) else d_ui / (2.0 * beta + d_ui)
    return _like(n_obs, _checked_constant(constant) * n**power * np.log(n))


def theorem2_depth(beta: float, d: float, *, constant: float = 1.0) -> float:
    """Theorem 2's depth ``L = c · β log²β / d`` for a tower whose covariates have dimension d.

    Args:
      beta: ``β > 0``.
      d: ``d > 0``, that tower's ``d_u`` (or ``d_i``).
      constant: ``c``.

    Returns:
      ``L`` as a real number; the order says nothing below 1 layer, so a tower
      uses ``max(1, ceil(L))`` layers.

    Example::

      >>> round(theorem2_depth(math.e**2, 2.0), 4)   # e² · 2² / 2
      14.7781
    """
    beta = _checked_beta(beta, allow_inf=False)
    d = _checked_dimension("d", d)
    if d == 0:
        raise ValueError("d=0 makes the depth β log²β / d infinite; pass a dimension d > 0")
    return _checked_constant(constant) * beta * math.log(beta) ** 2 / d


def theorem2_scale(
    n_obs: float | np.ndarray,
    beta: float,
    d_u: float,
    d_i: float | None = None,
    *,
    s: float,
    constant: float = 1.0,
) -> float | np.ndarray:
    """Theorem 2's parameter scale ``B = c · |Ω|^{2βs/(2β+d_ui)}``.

    Args:
      n_obs: ``|Ω| > 1``, scalar or array.
      beta: ``β > 0``.
      d_u, d_i: intrinsic dimensions.
      s: ``s ≥ 0``, Theorem 1's exponent (``B = O(ε^{-s})``).
      constant: ``c``.

    Returns:
      ``B`` (units of the weights), same shape as ``n_obs``.

    Example::

      >>> float(theorem2_scale(10_000, 1.0, 2.0, s=1.0))   # |Ω|^{1/2}
      100.0
    """
    n = _checked_n_obs(n_obs)
    s = float(s)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"s={s} must be a finite exponent >= 0 (Theorem 1's B = O(ε^-s))")
    exponent = theorem2_exponent(beta, d_u, d_i)
    return _like(n_obs, _checked_constant(constant) * n ** (exponent * s))


def theorem2_probability(
    n_obs: float | np.ndarray,
    beta: float,
    d_u: float,
    d_i: float | None = None,
    *,
    c1: float,
) -> float | np.ndarray:
    """Theorem 2's probability ``1 − 24 exp(−C_1 |Ω|^{d_ui/(2β+d_ui)} log|Ω|)``, floored at 0.

    Args:
      n_obs: ``|Ω| > 1``.
      beta: ``β > 0``.
      d_u, d_i: intrinsic dimensions.
      c1: ``C_1 > 0`` (the paper's ``6 max{50p²M⁴ + 4σ², 1}(25p²M⁴ + B_ε²)/13``).

    Returns:
      The lower bound on the probability that the rate holds.

    Example::

      >>> round(float(theorem2_probability(1000, 1.0, 2.0, c1=1.0)), 6)
      1.0
    """
    c1 = _checked_constant(c1, name="c1")
    width = theorem2_width(n_obs, beta, d_u, d_i)
    return _like(n_obs, np.maximum(0.0, 1.0 - 24.0 * np.exp(-c1 * np.asarray(width))))


def theorem2_max_penalty(
    n_obs: float | np.ndarray,
    beta: float,
    d_u: float,
    d_i: float | None = None,
    *,
    depth_ui: float,
    penalty_at_truth: float,
) -> float | np.ndarray:
    """The largest λ Theorem 2 allows: ``4 λ |Ω| J(R_0) ≤ L_ui |Ω|^{−2β/(2β+d_ui)} log|Ω|``.

    Args:
      n_obs: ``|Ω| > 1``.
      beta: ``β > 0``.
      d_u, d_i: intrinsic dimensions.
      depth_ui: ``L_ui = max{L, L̃} > 0``.
      penalty_at_truth: ``J(R_0) > 0``, the penalty of the approximating model.

    Returns:
      The bound on λ, same shape as ``n_obs``.

    Example::

      >>> lam = theorem2_max_penalty(10_000, math.inf, 1.0, depth_ui=4.0, penalty_at_truth=100.0)
      >>> f"{lam:.3e}"                 # 4 · 10^-4 · log(10^4) / (4 · 10^4 · 100)
      '9.210e-10'
    """
    n = _checked_n_obs(n_obs)
    exponent = theorem2_exponent(beta, d_u, d_i)
    depth_ui = _checked_constant(depth_ui, name="depth_ui")
    j0 = _checked_constant(penalty_at_truth, name="penalty_at_truth")
    return _like(n_obs, depth_ui * n ** (-exponent) * np.log(n) / (4.0 * n * j0))


def theorem2_architecture(
    n_obs: float,
    beta: float,
    d_u: float,
    d_i: float | None = None,
    *,
    s: float,
    depth_constant: float = 1.0,
    width_constant: float = 1.0,
    scale_constant: float = 1.0,
) -> Theorem2Architecture:
    """All of Theorem 2's prescribed tower sizes at one ``|Ω|``.

    Args:
      n_obs: ``|Ω| > 1`` (scalar).
      beta: ``β > 0`` (finite: the depth grows without bound with β).
      d_u, d_i: intrinsic dimensions (both ``> 0`` for the depths).
      s: Theorem 1's scale exponent.
      depth_constant, width_constant, scale_constant: the unknown constants.

    Returns:
      A :class:`Theorem2Architecture`.

    Example::

      >>> arch = theorem2_architecture(100_000, 2.0, 20.0, 20.0, s=1.0)
      >>> round(arch.exponent, 4), round(arch.width)
      (0.1667, 168987)
    """
    d_i = d_u if d_i is None else d_i
    return Theorem2Architecture(
        user_depth=theorem2_depth(beta, d_u, constant=depth_constant),
        item_depth=theorem2_depth(beta, d_i, constant=depth_constant),
        width=float(theorem2_width(n_obs, beta, d_u, d_i, constant=width_constant)),
        scale=float(theorem2_scale(n_obs, beta, d_u, d_i, s=s, constant=scale_constant)),
        exponent=theorem2_exponent(beta, d_u, d_i),
    )


def theorem1_width(epsilon: float, beta: float, d: float, *, constant: float = 1.0) -> float:
    """Theorem 1's effective parameters for sup-norm error ε: ``W = c · ε^{−d/β}``.

    The model then sits within ``3pMε`` of ``R*`` (:func:`theorem1_error`), at any depth.

    Args:
      epsilon: ``0 < ε``, the per-coordinate approximation accuracy.
      beta: ``β > 0``.
      d: ``d ≥ 0``, the tower's covariate dimension (``d_u`` or ``d_i``).
      constant: ``c``.

    Returns:
      ``W`` (a count, real-valued).

    Example::

      >>> round(theorem1_width(0.1, 2.0, 4.0), 9)        # 0.1^{-2}
      100.0
    """
    epsilon = _checked_epsilon(epsilon)
    beta = _checked_beta(beta, allow_inf=False)
    d = _checked_dimension("d", d)
    return _checked_constant(constant) * epsilon ** (-d / beta)


def theorem1_scale(epsilon: float, *, s: float, constant: float = 1.0) -> float:
    """Theorem 1's parameter scale ``B = c · ε^{−s}``.

    Args:
      epsilon: ``ε > 0``, the per-coordinate approximation accuracy.
      s: ``s ≥ 0``, the paper's unspecified exponent.
      constant: ``c``.

    Returns:
      ``B`` (units of the weights).

    Example::

      >>> theorem1_scale(0.5, s=2.0)
      4.0
    """
    epsilon = _checked_epsilon(epsilon)
    s = float(s)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"s={s} must be a finite exponent >= 0")
    return _checked_constant(constant) * epsilon ** (-s)


def theorem1_error(epsilon: float, *, embedding_dim: int, sup_bound: float) -> float:
    """Theorem 1's sup-norm approximation error ``3 p M ε`` of the two-tower model.

    Args:
      epsilon: ``ε > 0``, each tower coordinate's accuracy.
      embedding_dim: ``p``.
      sup_bound: ``M > 0``, the Hölder-ball radius of ``f*`` and ``g*``.

    Returns:
      The bound on ``sup |R − R*|`` over the covariate supports (rating units).

    Example::

      >>> theorem1_error(0.01, embedding_dim=30, sup_bound=1.0)
      0.9
    """
    epsilon = _checked_epsilon(epsilon)
    if int(embedding_dim) != embedding_dim or embedding_dim < 1:
        raise ValueError(f"embedding_dim={embedding_dim} must be an integer p >= 1")
    sup_bound = _checked_constant(sup_bound, name="sup_bound")
    return 3.0 * embedding_dim * sup_bound * epsilon


def _checked_beta(beta: float, *, allow_inf: bool) -> float:
    beta = float(beta)
    if math.isnan(beta) or beta <= 0 or (math.isinf(beta) and not allow_inf):
        fix = "a smoothness β > 0" + (" (math.inf for the β → ∞ limit)" if allow_inf else ", finite")
        raise ValueError(f"beta={beta} must be {fix}")
    return beta


def _checked_dimension(name: str, d: float) -> float:
    d = float(d)
    if not math.isfinite(d) or d < 0:
        raise ValueError(f"{name}={d} must be a finite intrinsic dimension >= 0")
    return d


def _d_ui(d_u: float, d_i: float | None) -> float:
    d_u = _checked_dimension("d_u", d_u)
    d_i = d_u if d_i is None else _checked_dimension("d_i", d_i)
    return max(d_u, d_i)


def _checked_n_obs(n_obs: float | np.ndarray) -> np.ndarray:
    n = np.asarray(n_obs, dtype=np.float64)
    if not np.all(np.isfinite(n)) or np.any(n <= 1):
        raise ValueError(
            f"n_obs={n_obs!r} must hold finite pair counts |Ω| > 1 (log|Ω| must be positive)"
        )
    return n


def _checked_epsilon(epsilon: float) -> float:
    epsilon = float(epsilon)
    if not math.isfinite(epsilon) or epsilon <= 0:
        raise ValueError(f"epsilon={epsilon} must be a finite accuracy ε > 0")
    return epsilon


def _checked_constant(value: float, *, name: str = "constant") -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value} must be a finite number > 0")
    return value


def _like(template: float | np.ndarray, value: np.ndarray) -> float | np.ndarray:
    return float(value) if np.ndim(template) == 0 else np.asarray(value, dtype=np.float64)
