"""Network size measures of SPEC §3 (the paper's Section 1.1): U(f), D(f), Z(f).

For a tower ``f(x) = h_U ∘ … ∘ h_1(x)`` with layers ``(A_l, b_l)``:

* ``U(f)`` (:func:`depth`): the number of layers;
* ``D(f)`` (:func:`param_scale`): ``max_l max{‖b_l‖_∞, ‖vec(A_l)‖_∞}``, the scale
  of the parameters;
* ``Z(f)`` (:func:`effective_params`): ``Σ_l (‖b_l‖_0 + ‖vec(A_l)‖_0)``, the
  number of effective (non-zero) parameters.

They define the class ``F_D(W, L, B, M) = {f : Z(f) ≤ W, U(f) ≤ L, D(f) ≤ B, …}``
that Theorems 1 and 2 and Lemmas 1 to 3 are stated over.

Every function accepts a tower in any of these forms:

* a :class:`ttm_jax.model.towers.Tower` (an ``nnx.Module`` with ``layers``);
* its ``nnx.State`` (``nnx.state(tower)`` or the ``nnx.Param`` part of
  ``nnx.split``), or the pure dict of that state (``nnx.to_pure_dict(state)``);
* a sequence of ``(A_l, b_l)`` pairs in the paper's orientation,
  ``A_l`` of shape ``[p_l, p_{l-1}]`` and ``b_l`` of shape ``[p_l]`` (``None`` for
  a layer without bias).

and a two-tower model (a :class:`ttm_jax.model.towers.TwoTower`, its state, or a
mapping with ``user_tower`` and ``item_tower``), for which the result is a
:class:`PerTower` holding the user tower's value, the item tower's value and
the model's total. Only the trainable weights and biases count: the input
standardiser (``mean``, ``scale``) and the score ``offset`` are not parameters
of f or g in the paper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np
from flax import nnx

__all__ = [
    "Layer",
    "NetworkSize",
    "PerTower",
    "depth",
    "effective_params",
    "is_two_tower",
    "network_size",
    "param_scale",
    "tower_layers",
]

T = TypeVar("T")


class Layer(NamedTuple):
    """One layer ``h_l(x) = σ(A_l x + b_l)`` in the paper's orientation.

    Attributes:
      weight: ``A_l``, float64 ``[p_l, p_{l-1}]`` (an ``nnx.Linear`` kernel transposed).
      bias: ``b_l``, float64 ``[p_l]``, or ``[0]`` for a layer without bias.
    """

    weight: np.ndarray
    bias: np.ndarray


class NetworkSize(NamedTuple):
    """The three size measures of one tower (SPEC §3).

    Attributes:
      depth: ``U(f)``, the number of layers.
      scale: ``D(f)``, the largest absolute weight or bias.
      effective_params: ``Z(f)``, the number of non-zero weights and biases.
      widths: ``(p_0, p_1, …, p_U)``, input width first, embedding width ``p`` last.
    """

    depth: int
    scale: float
    effective_params: int
    widths: tuple[int, ...]


class PerTower(NamedTuple, Generic[T]):
    """A measure of a two-tower model: each tower and the model as a whole.

    ``total`` combines the towers the way the paper does: ``Z`` adds up (Lemma 3
    counts ``W log W + W̃ log W̃``), ``U`` and ``D`` take the maximum (Theorem 2's
    ``L_ui = max{L, L̃}``, Lemma 3's ``max{L, L̃}`` and ``max{B, B̃}``).
    """

    user: T
    item: T
    total: T


def is_two_tower(model: Any) -> bool:
    """Whether ``model`` is a two-tower model or its state (has both towers).

    Example::

      >>> is_two_tower({"user_tower": {}, "item_tower": {}}), is_two_tower([])
      (True, False)
    """
    if isinstance(model, Mapping):
        return "user_tower" in model and "item_tower" in model
    return hasattr(model, "user_tower") and hasattr(model, "item_tower")


def tower_layers(tower: Any) -> tuple[Layer, ...]:
    """The layers ``(A_1, b_1), …, (A_U, b_U)`` of one tower as float64 arrays.

    Args:
      tower: a ``Tower`` module, its ``nnx.State`` or pure dict, or a sequence
        of ``(A_l, b_l)`` pairs with ``A_l`` ``[p_l, p_{l-1}]``.

    Returns:
      A tuple of :class:`Layer`, first layer first, weights in the paper's
      orientation ``[p_l, p_{l-1}]``.

    Raises:
      ValueError: for a two-tower model (pass ``model.user_tower``), an object
        that holds no layers, mismatched shapes or non-finite parameters.

    Example::

      >>> layers = tower_layers([(np.eye(2), np.zeros(2)), (np.ones((1, 2)), None)])
      >>> [layer.weight.shape for layer in layers]
      [(2, 2), (1, 2)]
    """
    if is_two_tower(tower):
        raise ValueError(
            "tower is a two-tower model; pass one tower (model.user_tower or "
            "model.item_tower), or call the measure on the whole model for a PerTower result"
        )
    if isinstance(tower, Mapping):
        if "layers" not in tower:
            raise ValueError(
                f"tower is a mapping with keys {sorted(map(str, tower))} but no 'layers'; "
                "pass nnx.state(tower) or nnx.split(tower, nnx.Param, ...)[1]"
            )
        raw = _pairs_from_state(tower["layers"])
    elif isinstance(tower, nnx.Module):
        if not hasattr(tower, "layers"):
            raise ValueError(
                f"tower is a {type(tower).__name__} without a 'layers' attribute; "
                "pass a ttm_jax.model.towers.Tower, its state, or a list of (A, b) pairs"
            )
        raw = [
            (_to_array(layer.kernel).T, None if layer.bias is None else _to_array(layer.bias))
            for layer in tower.layers
        ]
    elif isinstance(tower, Sequence) and not isinstance(tower, (str, bytes)):
        raw = []
        for index, pair in enumerate(tower):
            if not isinstance(pair, Sequence) or len(pair) != 2:
                raise ValueError(
                    f"tower[{index}] is not an (A, b) pair; pass a sequence of "
                    "(weight [p_l, p_{l-1}], bias [p_l] or None) pairs"
                )
            weight, bias = pair
            raw.append((_to_array(weight), None if bias is None else _to_array(bias)))
    else:
        # The package reports every bad input as a ValueError naming the argument.
        raise ValueError(
            f"tower of type {type(tower).__name__} is not understood; pass a "
            "ttm_jax.model.towers.Tower, its nnx.State, or a list of (A, b) pairs"
        )
    if not raw:
        raise ValueError("tower has no layers; a tower needs at least one (A, b) layer")
    return _checked_layers(raw)


def depth(model: Any) -> int | PerTower[int]:
    """``U(f)``: the number of layers of a tower (SPEC §3).

    Args:
      model: a tower (see :func:`tower_layers`) or a two-tower model.

    Returns:
      ``U(f)`` as an int; for a two-tower model a :class:`PerTower` with
      ``total = max(U(f), U(g))``.

    Example::

      >>> depth([(np.ones((3, 2)), np.zeros(3)), (np.ones((1, 3)), np.zeros(1))])
      2
    """
    return _measure(model, lambda layers: len(layers), max)


def param_scale(model: Any) -> float | PerTower[float]:
    """``D(f) = max_l max{‖b_l‖_∞, ‖vec(A_l)‖_∞}``: the parameter scale (SPEC §3).

    Args:
      model: a tower (see :func:`tower_layers`) or a two-tower model.

    Returns:
      ``D(f)`` as a float (same units as the weights); for a two-tower model a
      :class:`PerTower` with ``total = max(D(f), D(g))``.

    Example::

      >>> param_scale([(np.array([[0.5, -2.0]]), np.array([1.0]))])
      2.0
    """
    return _measure(model, _scale_of, max)


def effective_params(model: Any, *, atol: float = 0.0) -> int | PerTower[int]:
    """``Z(f) = Σ_l (‖b_l‖_0 + ‖vec(A_l)‖_0)``: the non-zero parameters (SPEC §3).

    Args:
      model: a tower (see :func:`tower_layers`) or a two-tower model.
      atol: a weight or bias counts as zero when ``|w| ≤ atol``; the default 0
        counts exact zeros only, which is what an L1 proximal (soft-threshold)
        step produces. A positive ``atol`` treats "numerically zero" weights of
        plain (sub)gradient training as zero.

    Returns:
      ``Z(f)`` as an int; for a two-tower model a :class:`PerTower` with
      ``total = Z(f) + Z(g)``.

    Raises:
      ValueError: if ``atol`` is negative or not finite.

    Example::

      >>> effective_params([(np.array([[0.0, 1e-9, 3.0]]), np.array([0.0]))])
      2
      >>> effective_params([(np.array([[0.0, 1e-9, 3.0]]), np.array([0.0]))], atol=1e-6)
      1
    """
    atol = float(atol)
    if not np.isfinite(atol) or atol < 0:
        raise ValueError(f"atol={atol} must be a finite number >= 0 (0 counts exact zeros only)")
    return _measure(model, lambda layers: _nonzeros_of(layers, atol), _sum)


def network_size(model: Any, *, atol: float = 0.0) -> NetworkSize | PerTower[NetworkSize]:
    """All three measures ``U(f)``, ``D(f)``, ``Z(f)`` and the widths at once.

    Args:
      model: a tower (see :func:`tower_layers`) or a two-tower model.
      atol: zero tolerance for ``Z(f)``, as in :func:`effective_params`.

    Returns:
      A :class:`NetworkSize`; for a two-tower model a :class:`PerTower` of them,
      whose ``total`` has ``depth`` and ``scale`` maxima, ``effective_params`` the
      sum, and ``widths`` empty (the towers' widths differ).

    Example::

      >>> size = network_size([(np.ones((3, 2)), np.zeros(3)), (np.ones((1, 3)), None)])
      >>> size.depth, size.scale, size.effective_params, size.widths
      (2, 1.0, 9, (2, 3, 1))
    """
    atol = float(atol)
    if not np.isfinite(atol) or atol < 0:
        raise ValueError(f"atol={atol} must be a finite number >= 0 (0 counts exact zeros only)")

    def size_of(layers: tuple[Layer, ...]) -> NetworkSize:
        return NetworkSize(
            depth=len(layers),
            scale=_scale_of(layers),
            effective_params=_nonzeros_of(layers, atol),
            widths=_widths_of(layers),
        )

    def combine(user: NetworkSize, item: NetworkSize) -> NetworkSize:
        return NetworkSize(
            depth=max(user.depth, item.depth),
            scale=max(user.scale, item.scale),
            effective_params=user.effective_params + item.effective_params,
            widths=(),
        )

    return _measure(model, size_of, combine)


def _measure(model: Any, of_tower, combine):
    if is_two_tower(model):
        user = of_tower(tower_layers(model["user_tower"] if isinstance(model, Mapping)
                                     else model.user_tower))
        item = of_tower(tower_layers(model["item_tower"] if isinstance(model, Mapping)
                                     else model.item_tower))
        return PerTower(user=user, item=item, total=combine(user, item))
    return of_tower(tower_layers(model))


def _sum(a, b):
    return a + b


def _scale_of(layers: tuple[Layer, ...]) -> float:
    return float(
        max(max(np.max(np.abs(layer.weight), initial=0.0), np.max(np.abs(layer.bias), initial=0.0))
            for layer in layers)
    )


def _nonzeros_of(layers: tuple[Layer, ...], atol: float) -> int:
    return int(
        sum(np.count_nonzero(np.abs(layer.weight) > atol)
            + np.count_nonzero(np.abs(layer.bias) > atol) for layer in layers)
    )


def _widths_of(layers: tuple[Layer, ...]) -> tuple[int, ...]:
    return (int(layers[0].weight.shape[1]), *(int(layer.weight.shape[0]) for layer in layers))


def _to_array(value: Any) -> np.ndarray:
    if isinstance(value, nnx.Variable):
        value = value[...]
    # float64 holds every float32/bfloat16 weight exactly, so Z and D are unchanged.
    return np.asarray(value, dtype=np.float64)


def _pairs_from_state(layers: Any) -> list[tuple[np.ndarray, np.ndarray | None]]:
    if isinstance(layers, Mapping):
        try:
            items = [layers[key] for key in sorted(layers, key=int)]
        except (TypeError, ValueError):
            raise ValueError(
                f"tower state 'layers' has keys {list(layers)}; expected layer indices 0, 1, …"
            ) from None
    elif isinstance(layers, Sequence):
        items = list(layers)
    else:
        raise ValueError(
            "tower state 'layers' must map layer indices to {'kernel', 'bias'}"
        )
    pairs = []
    for index, layer in enumerate(items):
        if not isinstance(layer, Mapping) or "kernel" not in layer:
            raise ValueError(
                f"tower state layer {index} has no 'kernel'; pass the state of a "
                "ttm_jax.model.towers.Tower (nnx.state(tower))"
            )
        bias = layer.get("bias")
        # An nnx.Linear kernel is [in, out]: transpose to the paper's A_l [p_l, p_{l-1}].
        pairs.append((_to_array(layer["kernel"]).T, None if bias is None else _to_array(bias)))
    return pairs


def _checked_layers(raw: list[tuple[np.ndarray, np.ndarray | None]]) -> tuple[Layer, ...]:
    layers = []
    for index, (weight, bias) in enumerate(raw):
        if weight.ndim != 2 or min(weight.shape) < 1:
            raise ValueError(
                f"layer {index} weight has shape {weight.shape}; it must be a non-empty "
                "matrix A_l of shape [p_l, p_{l-1}]"
            )
        if bias is None:
            bias = np.zeros((0,), np.float64)
        elif bias.shape != (weight.shape[0],):
            raise ValueError(
                f"layer {index} bias has shape {bias.shape} but its weight has shape "
                f"{weight.shape}; b_l must have shape [p_l] = [{weight.shape[0]}]"
            )
        if index > 0 and weight.shape[1] != layers[-1].weight.shape[0]:
            raise ValueError(
                f"layer {index} weight has shape {weight.shape} but layer {index - 1} "
                f"outputs {layers[-1].weight.shape[0]} units; A_l must be [p_l, p_{{l-1}}]"
            )
        if not (np.all(np.isfinite(weight)) and np.all(np.isfinite(bias))):
            raise ValueError(
                f"layer {index} holds NaN or infinite parameters; the size measures are "
                "undefined for a diverged network"
            )
        layers.append(Layer(weight=weight, bias=bias))
    return tuple(layers)
