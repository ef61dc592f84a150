"""The step-size schedule ``η_t``: warm-up, a hold, then exponential decay to a floor."""

from __future__ import annotations

import jax.numpy as jnp
import optax

from ttm_jax.config import TrainConfig

__all__ = ["make_schedule"]


def make_schedule(config: TrainConfig, steps_per_epoch: int, *,
                  peak: float | None = None) -> optax.Schedule:
    """Step size per step ``t``: a linear warm-up over ``warmup_epochs``, ``decay_begin_epochs``
    at the peak, then ``peak · decay_rate^((epoch − begin)/decay_epochs)`` floored at
    ``min(min_learning_rate, peak)`` (the paper: 0.01, ×0.9 per epoch, floor 0.005).

    Args:
      config: the schedule's settings.
      steps_per_epoch: ``⌈|Ω| / batch_size⌉``, the schedule's time unit.
      peak: the initial step size ``η_0`` (default ``config.learning_rate``); may
        be a traced array, so that one compiled step serves members of a batch
        trained with different step sizes (:func:`ttm_jax.optim.make_optimizer`).

    Returns:
      An optax schedule ``t -> η_t``.
    """
    peak = config.learning_rate if peak is None else peak
    floor = None
    if config.decay_rate < 1:
        # Never above the peak: a floor above it would raise the step size.
        floor = (min(config.min_learning_rate, peak) if isinstance(peak, float)
                 else jnp.minimum(config.min_learning_rate, peak))
    decay = optax.exponential_decay(
        init_value=peak,
        transition_steps=max(1, int(round(config.decay_epochs * steps_per_epoch))),
        transition_begin=int(round(config.decay_begin_epochs * steps_per_epoch)),
        decay_rate=config.decay_rate,
        end_value=floor,
    )
    warmup_steps = int(round(config.warmup_epochs * steps_per_epoch))
    if warmup_steps == 0:
        return decay
    warm = optax.linear_schedule(0.0, peak, warmup_steps)
    return optax.join_schedules([warm, decay], [warmup_steps])
