"""Optimisers the optax way: injected hyperparameters, the schedule, proximal L1, and
row-wise Adagrad for id tables."""

from ttm_jax.optim.optimizer import Hyperparams as Hyperparams
from ttm_jax.optim.optimizer import hyperparams_of as hyperparams_of
from ttm_jax.optim.optimizer import make_optimizer as make_optimizer
from ttm_jax.optim.optimizer import with_hyperparams as with_hyperparams
from ttm_jax.optim.proximal import ProximalL1State as ProximalL1State
from ttm_jax.optim.proximal import proximal_l1 as proximal_l1
from ttm_jax.optim.proximal import soft_threshold as soft_threshold
from ttm_jax.optim.rowwise import RowwiseAdagradState as RowwiseAdagradState
from ttm_jax.optim.rowwise import scale_by_rowwise_adagrad as scale_by_rowwise_adagrad
from ttm_jax.optim.schedule import make_schedule as make_schedule

__all__ = ["Hyperparams", "ProximalL1State", "RowwiseAdagradState", "hyperparams_of",
           "make_optimizer", "make_schedule", "proximal_l1", "scale_by_rowwise_adagrad",
           "soft_threshold", "with_hyperparams"]
