"""ttm_jax: the two-tower recommender model on JAX and Flax NNX.

``R(x_u, x_i) = <f(x_u), g(x_i)>`` with neural towers ``f``, ``g`` trained by
minibatch stochastic gradients on the penalised squared error (eq. 2 of the
paper). This namespace holds the names a user needs; the rest lives in the
subpackages by role: :mod:`ttm_jax.data`, :mod:`ttm_jax.model`,
:mod:`ttm_jax.optim`, :mod:`ttm_jax.training`, :mod:`ttm_jax.io`,
:mod:`ttm_jax.serving`. See ``docs/index.md`` for a tour and
``docs/architecture.md`` for the layout.
"""

from ttm_jax import presets as presets
from ttm_jax.config import ModelConfig as ModelConfig
from ttm_jax.config import TrainConfig as TrainConfig
from ttm_jax.data import RatingData as RatingData
from ttm_jax.data import cold_start_split as cold_start_split
from ttm_jax.data import load_movielens as load_movielens
from ttm_jax.data import load_yelp as load_yelp
from ttm_jax.data import make_holder_synthetic as make_holder_synthetic
from ttm_jax.data import make_synthetic as make_synthetic
from ttm_jax.data import random_split as random_split
from ttm_jax.data import read_movielens as read_movielens
from ttm_jax.data import read_yelp as read_yelp
from ttm_jax.evaluate import evaluate as evaluate
from ttm_jax.evaluate import excess_risk as excess_risk
from ttm_jax.io import CheckpointError as CheckpointError
from ttm_jax.io import load_model as load_model
from ttm_jax.io import save_model as save_model
from ttm_jax.io.folders import library_version
from ttm_jax.model import TwoTower as TwoTower
from ttm_jax.model import init_model as init_model
from ttm_jax.protocols import holdout_then_refit as holdout_then_refit
from ttm_jax.regressor import TwoTowerRegressor as TwoTowerRegressor
from ttm_jax.serving import embed_items as embed_items
from ttm_jax.serving import embed_users as embed_users
from ttm_jax.serving import export_embeddings as export_embeddings
from ttm_jax.serving import predict_pairs as predict_pairs
from ttm_jax.serving import recommend as recommend
from ttm_jax.serving import top_k as top_k
from ttm_jax.training import FitResult as FitResult
from ttm_jax.training import StopReason as StopReason
from ttm_jax.training import TrainingDivergedError as TrainingDivergedError
from ttm_jax.training import fit as fit
from ttm_jax.training import fit_lambda_grid as fit_lambda_grid
from ttm_jax.training import fit_members as fit_members

#: The installed version of ttm_jax.
__version__ = library_version()

__all__ = [
    # data
    "RatingData", "cold_start_split", "load_movielens", "load_yelp", "make_holder_synthetic",
    "make_synthetic", "random_split", "read_movielens", "read_yelp",
    # model and its training
    "ModelConfig", "TrainConfig", "TwoTower", "init_model",
    "FitResult", "StopReason", "TrainingDivergedError", "fit", "fit_lambda_grid", "fit_members",
    "holdout_then_refit", "TwoTowerRegressor", "presets",
    # evaluation, serving, files
    "evaluate", "excess_risk", "embed_items", "embed_users", "export_embeddings", "predict_pairs",
    "recommend", "top_k", "CheckpointError", "load_model", "save_model",
]
