"""The model: the two towers (eq. 1), their configuration, initialisation and objective (eq. 2)."""

from ttm_jax.model.init import build_model as build_model
from ttm_jax.model.init import init_model as init_model
from ttm_jax.model.objective import penalty as penalty
from ttm_jax.model.objective import squared_error as squared_error
from ttm_jax.model.towers import ACTIVATIONS as ACTIVATIONS
from ttm_jax.model.towers import Tower as Tower
from ttm_jax.model.towers import TwoTower as TwoTower
from ttm_jax.model.towers import score as score

__all__ = ["ACTIVATIONS", "Tower", "TwoTower", "build_model", "init_model",
           "penalty", "score", "squared_error"]
