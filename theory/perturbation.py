"""Lemma 2: how far a tower moves when its parameters move by δ.

The paper's Lemma 2 states that two networks of the same architecture whose
parameters differ by at most δ in sup-norm satisfy
``sup_{‖x‖_∞ ≤ 1} ‖f(x; Θ) − f(x; Θ')‖_2 ≤ √p · C(W, L, B) · δ``; the closed form of
``C`` in the source is illegible (SPEC §5). This module derives a valid bound
by telescoping over the layers (the derivation is written out in
``docs/theory.md``) for the library's own towers: hidden layers
``h_l = σ(A_l h_{l-1} + b_l)``, a linear output layer, and an input standardiser
``h_0 = (x − mean) / scale``.

Two forms:

* :func:`perturbation_bound` bounds the change of one given network (its own
  weights enter the bound), for every ``Θ'`` with ``‖Θ − Θ'‖_∞ ≤ δ``;
* :func:`lemma2_constant` is the class constant ``C`` for all networks with given
  widths and ``D(f) ≤ B`` (the paper's ``C(W, L, B)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from flax import nnx
from scipy.special import expit

from theory.measures import is_two_tower, tower_layers

__all__ = [
    "PerturbationBound",
    "activation_lipschitz",
    "activation_sup",
    "lemma2_constant",
    "perturbation_bound",
]

# sup_x |σ'(x)|, rounded up, since a bound must not use a value below it: SiLU's
# slope peaks at 1.09984 (x ≈ 2.3994).
# GELU is jax.nn.gelu's default tanh approximation, whose slope peaks at 1.12899.
_LIPSCHITZ = {
    "relu": 1.0,
    "sigmoid": 0.25,
    "silu": 1.0999,
    "tanh": 1.0,
    "gelu": 1.1290,
    "softplus": 1.0,
    "identity": 1.0,
}

_SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))

_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": expit,
    "silu": lambda z: z * expit(z),
    "tanh": np.tanh,
    "gelu": lambda z: 0.5 * z * (1.0 + np.tanh(_SQRT_2_OVER_PI * (z + 0.044715 * z**3))),
    "softplus": lambda z: np.logaddexp(0.0, z),
    "identity": lambda z: z,
}


class PerturbationBound(NamedTuple):
    """Lemma 2 for one network: how far any δ-perturbation of it can move.

    Attributes:
      l2: bound on ``sup_{‖x‖_∞ ≤ r} ‖f(x; Θ) − f(x; Θ')‖_2`` (the paper's norm).
      sup: bound on the same with ``‖·‖_∞`` on the output ``[p]``.
      coordinate: per-output bound ``[p]`` on ``|f_j(x; Θ) − f_j(x; Θ')|``.
      delta: the perturbation size ``δ = ‖Θ − Θ'‖_∞`` the bound is for.
      input_sup: ``(H_0, …, H_{U-1})``, bounds on ``‖h_{l-1}‖_∞``, the input
        to each layer (after the standardiser for ``H_0``).
    """

    l2: float
    sup: float
    coordinate: np.ndarray
    delta: float
    input_sup: tuple[float, ...]


def activation_lipschitz(name: str) -> float:
    """Global Lipschitz constant ``sup_x |σ'(x)|`` of a tower activation.

    Args:
      name: a key of ``ttm_jax.model.towers.ACTIVATIONS``.

    Returns:
      The constant, rounded up (safe for a bound).

    Example::

      >>> activation_lipschitz("sigmoid")
      0.25
    """
    try:
        return _LIPSCHITZ[name]
    except KeyError:
        raise ValueError(
            f"activation={name!r} is not known; choose one of {sorted(_LIPSCHITZ)}"
        ) from None


def activation_sup(name: str, bound: np.ndarray | float) -> np.ndarray:
    """``sup_{|z| ≤ Z} |σ(z)|``: the largest activation output for inputs in ``[−Z, Z]``.

    Every tower activation is either monotone or, for SiLU and GELU
    (``σ(z) = z·s(z)`` with ``s`` increasing to 1), satisfies ``|σ(−t)| ≤ σ(t)``
    with ``σ(t)`` increasing for ``t ≥ 0``; in both cases the supremum is
    ``max(|σ(Z)|, |σ(−Z)|)``.

    Args:
      name: activation name.
      bound: ``Z ≥ 0``, scalar or array.

    Returns:
      Array of the same shape as ``bound``.

    Example::

      >>> float(activation_sup("relu", 2.0))
      2.0
    """
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation={name!r} is not known; choose one of {sorted(_ACTIVATIONS)}")
    z = np.asarray(bound, dtype=np.float64)
    sigma = _ACTIVATIONS[name]
    return np.maximum(np.abs(sigma(z)), np.abs(sigma(-z)))


def perturbation_bound(
    tower: Any,
    delta: float,
    *,
    activation: str | None = None,
    input_bound: float = 1.0,
    mean: np.ndarray | None = None,
    scale: np.ndarray | None = None,
) -> PerturbationBound:
    """Lemma 2 for one tower: bound on its output change under a δ-perturbation.

    For every ``Θ'`` of the same architecture with ``‖Θ − Θ'‖_∞ ≤ δ`` (each weight
    and bias moved by at most δ; the standardiser is not a parameter and stays
    fixed), and every input with ``‖x‖_∞ ≤ r``, the bound holds for
    ``‖f(x; Θ) − f(x; Θ')‖``. It is the telescoping bound of ``docs/theory.md``
    carried out coordinate-wise: with ``u_{l-1}`` a bound on ``|h_{l-1}|`` and
    ``e_{l-1}`` a bound on ``|h_{l-1} − h'_{l-1}|``,

        e_l = Lip(σ) · [(|A_l| + δ) e_{l-1} + δ (‖u_{l-1}‖_1 + 1)]

    (no ``Lip(σ)`` on the linear output layer, no ``+1`` for a layer without bias).

    Args:
      tower: a ``ttm_jax.model.towers.Tower``, its ``nnx.State``, or a list of
        ``(A_l [p_l, p_{l-1}], b_l [p_l])`` pairs.
      delta: ``δ ≥ 0``, the sup-norm size of the parameter perturbation.
      activation: σ's name; read from a ``Tower`` module, required otherwise.
      input_bound: ``r > 0``, the domain ``‖x‖_∞ ≤ r`` (Lemma 2 uses 1), in
        the units of the raw covariates.
      mean, scale: the standardiser ``[D]``; read from a ``Tower`` module or its
        state, identity otherwise.

    Returns:
      A :class:`PerturbationBound`; ``l2`` is the paper's quantity.

    Raises:
      ValueError: for a negative or non-finite ``delta``, a non-positive
        ``input_bound``, a zero standardiser scale, or a missing activation.

    Example::

      >>> layers = [(np.array([[1.0, -1.0]]), np.array([0.0]))]   # f(x) = x_1 − x_2
      >>> perturbation_bound(layers, 0.1, activation="relu").l2    # δ (|x_1| + |x_2| + 1)
      0.30000000000000004
    """
    delta = _checked_delta(delta)
    input_bound = _checked_input_bound(input_bound)
    if is_two_tower(tower):
        raise ValueError(
            "tower is a two-tower model; bound each tower (model.user_tower, model.item_tower)"
        )
    layers = tower_layers(tower)
    activation = _activation_of(tower, activation)
    lip = activation_lipschitz(activation)
    mean, scale = _standardiser_of(tower, mean, scale, layers[0].weight.shape[1])

    # |(x − m) / s| ≤ (r + |m|) / |s| coordinate-wise for ‖x‖_∞ ≤ r.
    u = (input_bound + np.abs(mean)) / np.abs(scale)
    e = np.zeros_like(u)
    input_sup = []
    for index, layer in enumerate(layers):
        input_sup.append(float(np.max(u)))
        abs_weight = np.abs(layer.weight)
        has_bias = layer.bias.size > 0
        # A'h' − Ah = A'(h' − h) + (A' − A)h, with |A'| ≤ |A| + δ entry-wise and
        # |(A' − A)h|_i ≤ δ ‖h‖_1; plus |b' − b| ≤ δ.
        pre = (abs_weight + delta) @ e + delta * (np.sum(u) + (1.0 if has_bias else 0.0))
        if index < len(layers) - 1:
            pre_activation = abs_weight @ u
            if has_bias:
                pre_activation = pre_activation + np.abs(layer.bias)
            u = activation_sup(activation, pre_activation)
            e = lip * pre
        else:
            e = pre
    return PerturbationBound(
        l2=float(np.sqrt(np.sum(e**2))),
        sup=float(np.max(e)),
        coordinate=e,
        delta=delta,
        input_sup=tuple(input_sup),
    )


def lemma2_constant(
    widths: Sequence[int],
    scale: float,
    *,
    activation: str = "relu",
    input_bound: float = 1.0,
) -> float:
    """The class constant ``C`` of Lemma 2 for towers of given widths and ``D(f) ≤ B``.

    For any two towers ``f(·; Θ)``, ``f(·; Θ')`` with widths ``(p_0, …, p_L)``,
    hidden activation σ, linear output, all parameters in ``[−B, B]`` and
    ``‖Θ − Θ'‖_∞ ≤ δ``:

        sup_{‖x‖_∞ ≤ r} ‖f(x; Θ) − f(x; Θ')‖_2 ≤ √p · C · δ,    p = p_L,

    with (``docs/theory.md``) ``H_0 = r``, ``H_l = S_σ(p_{l-1} B H_{l-1} + B)``,
    ``S_σ(Z) = sup_{|z|≤Z} |σ(z)|``, ``Lip_l = Lip(σ)`` for ``l < L`` and 1 for
    the output layer, and

        C = Σ_{l=1}^{L} [Π_{k=l+1}^{L} Lip_k p_{k-1} B] · Lip_l (p_{l-1} H_{l-1} + 1).

    For ReLU and equal widths W this grows like ``L (WB)^L``, the order SPEC §5
    quotes for the paper's illegible ``C(W, L, B)``.

    Args:
      widths: ``(p_0, …, p_L)``: input width, hidden widths, output width ``p``.
      scale: ``B > 0``, the bound on every weight and bias (``D(f) ≤ B``).
      activation: σ's name.
      input_bound: ``r > 0`` (the input to the first layer satisfies ``‖h_0‖_∞ ≤ r``).

    Returns:
      ``C`` (dimensionless; the bound is ``√p · C · δ``).

    Example::

      >>> lemma2_constant((2, 1), 1.0)          # f(x) = a·x + b: |Δf| ≤ δ (2 + 1)
      3.0
    """
    widths = tuple(int(w) for w in widths)
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(
            f"widths={widths} must list at least the input and output widths (p_0, …, p_L), all >= 1"
        )
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale={scale} must be a finite B > 0 (the bound D(f) ≤ B)")
    input_bound = _checked_input_bound(input_bound)
    lip = activation_lipschitz(activation)
    n_layers = len(widths) - 1
    sup = [input_bound]
    for layer in range(1, n_layers):
        sup.append(float(activation_sup(activation, widths[layer - 1] * scale * sup[-1] + scale)))
    total = 0.0
    for layer in range(1, n_layers + 1):
        lip_l = lip if layer < n_layers else 1.0
        after = 1.0
        for k in range(layer + 1, n_layers + 1):
            after *= (lip if k < n_layers else 1.0) * widths[k - 1] * scale
        total += after * lip_l * (widths[layer - 1] * sup[layer - 1] + 1.0)
    return float(total)


def _checked_delta(delta: float) -> float:
    delta = float(delta)
    if not np.isfinite(delta) or delta < 0:
        raise ValueError(f"delta={delta} must be a finite δ >= 0 (the sup-norm parameter change)")
    return delta


def _checked_input_bound(input_bound: float) -> float:
    input_bound = float(input_bound)
    if not np.isfinite(input_bound) or input_bound <= 0:
        raise ValueError(
            f"input_bound={input_bound} must be a finite r > 0 (inputs satisfy ‖x‖_∞ ≤ r)"
        )
    return input_bound


def _activation_of(tower: Any, activation: str | None) -> str:
    if activation is None:
        activation = getattr(tower, "activation", None) if isinstance(tower, nnx.Module) else None
        if activation is None:
            raise ValueError(
                "activation=None and the tower does not carry one; pass activation='relu', "
                f"or one of {sorted(_LIPSCHITZ)}"
            )
    activation_lipschitz(activation)
    return activation


def _standardiser_of(tower: Any, mean: Any, scale: Any, width: int) -> tuple[np.ndarray, np.ndarray]:
    def read(name: str, given: Any, default: float) -> np.ndarray:
        if given is None:
            source = tower.get(name) if isinstance(tower, Mapping) else getattr(tower, name, None)
            given = default if source is None else source
        if isinstance(given, nnx.Variable):
            given = given[...]
        value = np.broadcast_to(np.asarray(given, dtype=np.float64), (width,))
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} holds NaN or infinite values; the standardiser must be finite")
        return value

    mean_v = read("mean", mean, 0.0)
    scale_v = read("scale", scale, 1.0)
    if np.any(scale_v == 0):
        raise ValueError("scale has a zero entry; a standardiser divides by it, use a non-zero scale")
    return mean_v, scale_v

