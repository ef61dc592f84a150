"""The model: the two towers (eq. 1), their configuration, initialisation and objective (eq. 2)."""

from ttm_jax.model.ensemble import mean_model as mean_model
from ttm_jax.model.ensemble import mean_model_config as mean_model_config
from ttm_jax.model.init import build_model as build_model
from ttm_jax.model.init import init_model as init_model
from ttm_jax.model.init import with_seen_ids as with_seen_ids
from ttm_jax.model.objective import penalty as penalty
from ttm_jax.model.objective import split_penalty as split_penalty
from ttm_jax.model.objective import squared_error as squared_error
from ttm_jax.model.towers import ACTIVATIONS as ACTIVATIONS
from ttm_jax.model.towers import ID_TABLE as ID_TABLE
from ttm_jax.model.towers import Tower as Tower
from ttm_jax.model.towers import TwoTower as TwoTower
from ttm_jax.model.towers import is_id_table as is_id_table
from ttm_jax.model.towers import score as score

__all__ = ["ACTIVATIONS", "ID_TABLE", "Tower", "TwoTower", "build_model", "init_model",
           "is_id_table", "mean_model", "mean_model_config", "penalty", "score", "split_penalty",
           "squared_error", "with_seen_ids"]
