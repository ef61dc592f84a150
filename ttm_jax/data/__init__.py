"""Data: rating sets and their splits, synthetic truths (SPEC §6, and Hölder-smooth maps of
chosen β and d), readers for CSV/Parquet tables, MovieLens-100K and Yelp. (The one-hot id
blocks of the hybrid model are gone: ids are embedding tables in the model, see
:mod:`ttm_jax.data.ids`.)"""

from ttm_jax.data.holder import HolderMap as HolderMap
from ttm_jax.data.holder import default_levels as default_levels
from ttm_jax.data.holder import holder_map as holder_map
from ttm_jax.data.holder import make_holder_synthetic as make_holder_synthetic
from ttm_jax.data.ids import REMOVED, removed_name_error
from ttm_jax.data.movielens import MovieLens as MovieLens
from ttm_jax.data.movielens import load_movielens as load_movielens
from ttm_jax.data.movielens import read_movielens as read_movielens
from ttm_jax.data.ratings import RatingData as RatingData
from ttm_jax.data.ratings import Split as Split
from ttm_jax.data.ratings import cold_start_split as cold_start_split
from ttm_jax.data.ratings import outlying_rating as outlying_rating
from ttm_jax.data.ratings import random_split as random_split
from ttm_jax.data.synthetic import GroundTruth as GroundTruth
from ttm_jax.data.synthetic import SyntheticData as SyntheticData
from ttm_jax.data.synthetic import TrigMap as TrigMap
from ttm_jax.data.synthetic import make_synthetic as make_synthetic
from ttm_jax.data.synthetic import sample_intrinsic_covariates as sample_intrinsic_covariates
from ttm_jax.data.tabular import TabularError as TabularError
from ttm_jax.data.yelp import AspectResourcesMissing as AspectResourcesMissing
from ttm_jax.data.yelp import Yelp as Yelp
from ttm_jax.data.yelp import load_yelp as load_yelp
from ttm_jax.data.yelp import read_yelp as read_yelp

__all__ = [
    "AspectResourcesMissing", "GroundTruth", "HolderMap", "MovieLens", "RatingData",
    "Split", "SyntheticData", "TabularError", "TrigMap", "Yelp",
    "cold_start_split", "default_levels", "holder_map", "load_movielens", "load_yelp",
    "make_holder_synthetic", "make_synthetic", "outlying_rating", "random_split",
    "read_movielens", "read_yelp", "sample_intrinsic_covariates",
]


def __getattr__(name: str):
    # The one-hot id helpers were removed; importing one says what replaced it.
    if name in REMOVED:
        raise removed_name_error(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
