"""The proximal step of an L1 penalty as an optax transformation, preconditioned like Adam.

After the inner optimiser proposes ``z = w + u``, the proximal map of
``τ ‖·‖₁`` sets ``w ← sign(z) max(|z| − τ, 0)`` coordinatewise. With SGD
(``τ = η_t λ``) this is the exact proximal gradient step of eq. 2 with
``J = ‖·‖₁``. Adam rescales every coordinate's step by ``1 / (√v̂ + ε)``; a
threshold of ``η_t λ`` would be negligible next to those normalised steps, so
few weights would ever settle at zero. Here the threshold is preconditioned the
same way, ``τ_i = η_t λ / (√v̂_i + ε)`` (the proximal step in Adam's diagonal
metric): a coordinate stays at zero exactly when its averaged gradient is
below λ in magnitude, which is the L1 optimality condition, so ``Z(f)`` (the
count of non-zero weights, :func:`theory.effective_params`) falls as λ grows.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

__all__ = ["ProximalL1State", "proximal_l1", "soft_threshold"]


def soft_threshold(params, threshold):
    """Proximal map of ``threshold · ‖·‖₁``: ``sign(w) max(|w| − t, 0)`` leafwise.

    ``threshold``: a scalar, or a pytree of ``params``' structure (one threshold per coordinate).
    """
    tree = jax.tree_util.tree_structure
    if tree(threshold) != tree(params):
        threshold = jax.tree_util.tree_map(lambda _: threshold, params)
    return jax.tree_util.tree_map(
        lambda w, t: jnp.sign(w) * jnp.maximum(jnp.abs(w) - jnp.asarray(t, w.dtype), 0),
        params, threshold)


class ProximalL1State(NamedTuple):
    """State of :func:`proximal_l1`: its step ``count``, the second-moment estimate
    ``nu`` of the gradients (``None`` without preconditioning) and the inner state."""

    count: jax.Array
    nu: optax.Updates | None
    inner: optax.OptState


def proximal_l1(
    inner: optax.GradientTransformation,
    strength: float | jax.Array,
    schedule: optax.Schedule,
    *,
    precondition: bool,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformation:
    """Follow ``inner``'s update by the proximal step of ``λ ‖·‖₁``.

    Args:
      inner: the optimiser whose update ``u`` proposes ``z = w + u`` (it must
        include the step size, e.g. ``chain(scale_by_adam(), scale_by_learning_rate(η))``).
      strength: ``λ``.
      schedule: ``t -> η_t``, the inner optimiser's step size.
      precondition: scale the threshold by ``1 / (√v̂ + ε)`` with ``v̂`` the
        bias-corrected moving average of squared gradients (Adam's ``b2``,
        ``eps``); ``False`` for SGD, whose threshold is ``η_t λ``.
      b2, eps: as Adam's.

    Returns:
      An ``optax.GradientTransformation`` whose update moves ``w`` to
      ``sign(z) max(|z| − τ, 0)``; weights at exactly zero stay there while
      their (averaged) gradient is below ``λ``.

    Example:
      >>> lr = optax.constant_schedule(1e-2)
      >>> tx = proximal_l1(optax.chain(optax.scale_by_adam(), optax.scale_by_learning_rate(lr)),
      ...                  1e-3, lr, precondition=True)
    """

    def init(params):
        nu = jax.tree_util.tree_map(jnp.zeros_like, params) if precondition else None
        return ProximalL1State(jnp.zeros((), jnp.int32), nu, inner.init(params))

    def update(grads, state, params=None):
        if params is None:
            raise ValueError("proximal_l1 needs params: call update(grads, state, params)")
        updates, inner_state = inner.update(grads, state.inner, params)
        step_size = schedule(state.count)
        count = state.count + 1
        nu = state.nu
        if precondition:
            nu = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g), nu, grads)
            correction = 1 - b2 ** count.astype(jnp.float32)
            threshold = jax.tree_util.tree_map(
                lambda v: step_size * strength / (jnp.sqrt(v / correction) + eps), nu)
        else:
            threshold = step_size * strength
        proposed = optax.apply_updates(params, updates)
        kept = soft_threshold(proposed, threshold)
        return (jax.tree_util.tree_map(lambda k, w: k - w, kept, params),
                ProximalL1State(count, nu, inner_state))

    return optax.GradientTransformation(init, update)
