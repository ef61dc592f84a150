"""Command line: ``python -m ttm_jax`` (or ``ttm-jax``) ``fit``, ``evaluate``, ``recommend``,
``embeddings``.

Ratings come from CSV or Parquet files with user, item and rating columns;
covariates from CSV or Parquet tables keyed by the same id columns. ``fit``
saves a model folder (see :mod:`ttm_jax.io`) that also holds the id
maps, the covariates of the training users and items, and the training
ratings, so ``recommend`` and ``evaluate`` take external ids and need new
covariate files only for users or items the model has not met.

Every input is read and validated before anything is written; errors name the
file, column and first offending row, and exit with status 2.

The package by role: :mod:`~ttm_jax.cli.parser` (the options and ``main``),
:mod:`~ttm_jax.cli.fitting` (``fit``), :mod:`~ttm_jax.cli.scoring` (``evaluate``,
``recommend``, ``embeddings``) over :mod:`~ttm_jax.cli.stored` (a saved model
folder read back), and :mod:`~ttm_jax.cli.outputs` (output paths, checked first
and written atomically).
"""

from ttm_jax.cli.parser import build_parser as build_parser
from ttm_jax.cli.parser import main as main

__all__ = ["build_parser", "main"]
