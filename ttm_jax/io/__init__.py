"""Files: saved models and training checkpoints (orbax-checkpoint under an atomic,
checksummed folder protocol that never touches files it did not write)."""

from ttm_jax.io.checkpoint import TrainingCheckpoint as TrainingCheckpoint
from ttm_jax.io.folders import CheckpointError as CheckpointError
from ttm_jax.io.folders import OutputPathError as OutputPathError
from ttm_jax.io.folders import check_writable as check_writable
from ttm_jax.io.folders import owned_by_save as owned_by_save
from ttm_jax.io.saved_model import FeatureSchema as FeatureSchema
from ttm_jax.io.saved_model import SavedModel as SavedModel
from ttm_jax.io.saved_model import load_model as load_model
from ttm_jax.io.saved_model import save_model as save_model

__all__ = ["CheckpointError", "FeatureSchema", "OutputPathError", "SavedModel",
           "TrainingCheckpoint", "check_writable", "load_model", "owned_by_save", "save_model"]
