"""Lemma 3: the bracketing entropy of the two-tower class ``R_Φ``.

SPEC §5 reads the lemma as

    log N_[](ε, R_Φ, ‖·‖_{L2}) ≤ C_2 (W log W + W̃ log W̃) · log(ε^{-1} C_3 (C(W,L,B) + C(W̃,L̃,B̃)))

with ``C_2 = 28 max{L, L̃}`` and ``C_3 = 2 p^{3/2} M max{B, B̃}``, where
``C(W, L, B)`` is Lemma 2's constant. The source's ``C`` is illegible, so this
module plugs in :func:`theory.perturbation.lemma2_constant` evaluated on
Lemma 1's unified architecture ``K_D(W, L, B)``: an input layer ``[2W, D]``,
``L − 2`` hidden layers ``[2W, 2W]`` and an output layer ``[p, 2W]``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from theory.perturbation import lemma2_constant

__all__ = ["TowerClass", "bracketing_entropy_bound", "lemma1_widths"]


class TowerClass(NamedTuple):
    """The size parameters of one tower class ``F_D(W, L, B, M)`` (SPEC §3).

    Attributes:
      in_features: ``D``, the covariate width (``D_u`` or ``D_i``).
      width: ``W``, the bound on the effective parameters ``Z(f)``.
      depth: ``L``, the bound on the number of layers ``U(f)``.
      scale: ``B``, the bound on the parameter scale ``D(f)``.
    """

    in_features: int
    width: int
    depth: int
    scale: float


def lemma1_widths(in_features: int, width: int, depth: int, embedding_dim: int) -> tuple[int, ...]:
    """Layer widths ``(D, 2W, …, 2W, p)`` of Lemma 1's class ``K_D(W, L, B, M)``.

    Args:
      in_features: ``D``.
      width: ``W``.
      depth: ``L ≥ 1`` layers (``L − 1`` hidden layers of width ``2W``).
      embedding_dim: ``p``.

    Returns:
      ``(p_0, …, p_L)`` for :func:`theory.perturbation.lemma2_constant`.

    Example::

      >>> lemma1_widths(50, 10, 3, 30)
      (50, 20, 20, 30)
    """
    for name, value in (("in_features", in_features), ("width", width), ("depth", depth),
                        ("embedding_dim", embedding_dim)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name}={value} must be an integer >= 1")
    return (int(in_features), *([2 * int(width)] * (int(depth) - 1)), int(embedding_dim))


def bracketing_entropy_bound(
    epsilon: float,
    *,
    user: TowerClass,
    item: TowerClass,
    embedding_dim: int,
    sup_bound: float,
    activation: str = "relu",
) -> float:
    """Lemma 3's bound on ``log N_[](ε, R_Φ, ‖·‖_{L2(μ_ui)})`` (natural log).

    Args:
      epsilon: bracket size ``ε > 0`` (units of the rating).
      user: ``(D_u, W, L, B)`` of the user tower class.
      item: ``(D_i, W̃, L̃, B̃)`` of the item tower class.
      embedding_dim: ``p``.
      sup_bound: ``M > 0``, the Hölder-ball radius (towers are bounded by ``2M``).
      activation: σ, for Lemma 2's constant.

    Returns:
      The bound, clipped at 0 (an entropy is never negative; the formula goes
      negative once ``ε`` exceeds the class's diameter).

    Example::

      >>> cls = TowerClass(in_features=50, width=100, depth=5, scale=1.0)
      >>> bound = bracketing_entropy_bound(0.01, user=cls, item=cls, embedding_dim=30,
      ...                                  sup_bound=1.0)
      >>> f"{bound:.3e}"
      '4.878e+06'
    """
    epsilon = float(epsilon)
    if not math.isfinite(epsilon) or epsilon <= 0:
        raise ValueError(f"epsilon={epsilon} must be a finite bracket size > 0")
    sup_bound = float(sup_bound)
    if not math.isfinite(sup_bound) or sup_bound <= 0:
        raise ValueError(f"sup_bound={sup_bound} must be a finite M > 0")
    if int(embedding_dim) != embedding_dim or embedding_dim < 1:
        raise ValueError(f"embedding_dim={embedding_dim} must be an integer p >= 1")
    constants = []
    for name, cls in (("user", user), ("item", item)):
        widths = lemma1_widths(cls.in_features, cls.width, cls.depth, embedding_dim)
        try:
            constants.append(lemma2_constant(widths, cls.scale, activation=activation))
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    c2 = 28.0 * max(user.depth, item.depth)
    c3 = 2.0 * embedding_dim**1.5 * sup_bound * max(user.scale, item.scale)
    size = user.width * math.log(user.width) + item.width * math.log(item.width)
    return max(0.0, c2 * size * math.log(c3 * (constants[0] + constants[1]) / epsilon))
