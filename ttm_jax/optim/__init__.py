"""Optimisers the optax way: injected hyperparameters, the schedule, and proximal L1."""

from ttm_jax.optim.optimizer import Hyperparams as Hyperparams
from ttm_jax.optim.optimizer import hyperparams_of as hyperparams_of
from ttm_jax.optim.optimizer import make_optimizer as make_optimizer
from ttm_jax.optim.optimizer import with_hyperparams as with_hyperparams
from ttm_jax.optim.proximal import ProximalL1State as ProximalL1State
from ttm_jax.optim.proximal import proximal_l1 as proximal_l1
from ttm_jax.optim.proximal import soft_threshold as soft_threshold
from ttm_jax.optim.schedule import make_schedule as make_schedule

__all__ = ["Hyperparams", "ProximalL1State", "hyperparams_of", "make_optimizer",
           "make_schedule", "proximal_l1", "soft_threshold", "with_hyperparams"]
