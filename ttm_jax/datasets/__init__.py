"""Real-data loaders: MovieLens-100K and the Yelp Open Dataset, plus the id
blocks of the hybrid model (covariates plus one-hot ids, SPEC §1)."""

from ttm_jax.datasets.ids import (
    IdDropout,
    append_one_hot_ids,
    with_id_dropout,
    zero_id_block,
    zero_unseen_ids,
)
from ttm_jax.datasets.movielens import MovieLens, load_movielens, read_movielens
from ttm_jax.datasets.yelp import AspectResourcesMissing, Yelp, load_yelp, read_yelp

__all__ = [
    "AspectResourcesMissing",
    "IdDropout",
    "MovieLens",
    "Yelp",
    "append_one_hot_ids",
    "load_movielens",
    "load_yelp",
    "read_movielens",
    "read_yelp",
    "with_id_dropout",
    "zero_id_block",
    "zero_unseen_ids",
]
