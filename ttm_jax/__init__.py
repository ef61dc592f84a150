"""ttm_jax: the two-tower recommender model on JAX and Flax NNX.

``R(x_u, x_i) = <f(x_u), g(x_i)>`` with neural towers ``f``, ``g`` trained by
minibatch stochastic gradients on the penalised squared error (eq. 2 of the
paper). See ``docs/index.md`` for a tour.
"""

from ttm_jax.checkpoint import CheckpointError, FeatureSchema, SavedModel, load_model, save_model
from ttm_jax.config import ModelConfig, TrainConfig
from ttm_jax.data import RatingData, Split, cold_start_split, random_split
from ttm_jax.datasets import load_movielens, load_yelp, read_movielens, read_yelp
from ttm_jax.ensemble import EnsembleHistory, EnsembleResult, fit_ensemble
from ttm_jax.evaluate import Evaluation, ExcessRisk, Metrics, evaluate, excess_risk, metrics
from ttm_jax.holder import (
    HolderMap,
    TrigMap,
    default_levels,
    holder_map,
    make_holder_synthetic,
)
from ttm_jax.inference import embed_items, embed_users, predict_pairs
from ttm_jax.lambda_grid import PAPER_LAMBDAS, LambdaGridResult, fit_lambda_grid
from ttm_jax.objective import penalty, soft_threshold
from ttm_jax.parallel import data_parallel_mesh, fit_data_parallel, initialize_distributed
from ttm_jax.recommend import (
    EmbeddingTables,
    ItemIndex,
    Recommendations,
    export_embeddings,
    index_items,
    recommend,
    top_k,
)
from ttm_jax.regressor import TwoTowerRegressor
from ttm_jax.synthetic import GroundTruth, SyntheticData, make_synthetic
from ttm_jax.towers import ACTIVATIONS, Tower, TwoTower
from ttm_jax.train import (
    Batch,
    FitResult,
    History,
    Tables,
    TrainingDivergedError,
    TrainState,
    device_arrays,
    fit,
    init_model,
    init_train_state,
    make_optimizer,
    make_schedule,
    make_train_chunk,
    make_train_step,
    refit,
    resolve_tower_mode,
)

__all__ = [
    "EnsembleHistory",
    "LambdaGridResult",
    "PAPER_LAMBDAS",
    "fit_lambda_grid",
    "EnsembleResult",
    "HolderMap",
    "TrigMap",
    "default_levels",
    "fit_ensemble",
    "holder_map",
    "make_holder_synthetic",
    "CheckpointError",
    "EmbeddingTables",
    "ItemIndex",
    "FeatureSchema",
    "Recommendations",
    "SavedModel",
    "data_parallel_mesh",
    "export_embeddings",
    "index_items",
    "fit_data_parallel",
    "initialize_distributed",
    "load_model",
    "recommend",
    "save_model",
    "top_k",
    "ACTIVATIONS",
    "Batch",
    "Evaluation",
    "ExcessRisk",
    "FitResult",
    "GroundTruth",
    "History",
    "Metrics",
    "ModelConfig",
    "RatingData",
    "Split",
    "SyntheticData",
    "Tables",
    "Tower",
    "TrainConfig",
    "TrainState",
    "TrainingDivergedError",
    "TwoTower",
    "TwoTowerRegressor",
    "cold_start_split",
    "embed_items",
    "embed_users",
    "evaluate",
    "excess_risk",
    "fit",
    "refit",
    "init_model",
    "init_train_state",
    "device_arrays",
    "load_movielens",
    "load_yelp",
    "make_optimizer",
    "make_schedule",
    "make_synthetic",
    "make_train_chunk",
    "make_train_step",
    "metrics",
    "penalty",
    "predict_pairs",
    "random_split",
    "read_movielens",
    "read_yelp",
    "resolve_tower_mode",
    "soft_threshold",
]
