"""Training: the pure step and scan chunk, the one loop over ``r ≥ 1`` members, early
stopping, results, progress callbacks, and data parallelism by placing arrays."""

from ttm_jax.training.callbacks import CheckReport as CheckReport
from ttm_jax.training.callbacks import progress_callback as progress_callback
from ttm_jax.training.distributed import data_parallel_mesh as data_parallel_mesh
from ttm_jax.training.distributed import initialize_distributed as initialize_distributed
from ttm_jax.training.engine import Members as Members
from ttm_jax.training.engine import stack_members as stack_members
from ttm_jax.training.engine import train as train
from ttm_jax.training.fit import PAPER_LAMBDAS as PAPER_LAMBDAS
from ttm_jax.training.fit import LambdaGridResult as LambdaGridResult
from ttm_jax.training.fit import check_lambdas as check_lambdas
from ttm_jax.training.fit import fit as fit
from ttm_jax.training.fit import fit_lambda_grid as fit_lambda_grid
from ttm_jax.training.fit import fit_members as fit_members
from ttm_jax.training.results import FitResult as FitResult
from ttm_jax.training.results import History as History
from ttm_jax.training.results import TrainingDivergedError as TrainingDivergedError
from ttm_jax.training.step import Batch as Batch
from ttm_jax.training.step import Tables as Tables
from ttm_jax.training.step import TrainState as TrainState
from ttm_jax.training.step import device_arrays as device_arrays
from ttm_jax.training.step import init_train_state as init_train_state
from ttm_jax.training.step import init_train_states as init_train_states
from ttm_jax.training.step import make_train_chunk as make_train_chunk
from ttm_jax.training.step import make_train_step as make_train_step
from ttm_jax.training.step import resolve_tower_mode as resolve_tower_mode
from ttm_jax.training.stopping import StopReason as StopReason

__all__ = [
    "PAPER_LAMBDAS", "Batch", "CheckReport", "FitResult", "History", "LambdaGridResult",
    "Members", "StopReason", "Tables", "TrainState", "TrainingDivergedError", "check_lambdas",
    "data_parallel_mesh", "device_arrays", "fit", "fit_lambda_grid", "fit_members",
    "init_train_state", "init_train_states", "initialize_distributed", "make_train_chunk",
    "make_train_step", "progress_callback", "resolve_tower_mode", "stack_members", "train",
]
