"""The library's fitting protocol: hold out, early-stop (choosing λ if asked), refit on everything.

:func:`holdout_then_refit` is the one implementation of the protocol that
``TwoTowerRegressor()``, the command line's ``fit``, Table 1 and the tuning
scripts all use:

1. hold out ``validation_fraction`` of the training ratings (the paper: 20%);
2. train on the rest with early stopping on the hold-out, which chooses the
   number of epochs, and, given a grid of λ, every λ at once under ``vmap``
   (:func:`~ttm_jax.training.fit_lambda_grid`), which chooses λ;
3. unless ``refit=False``, train a fresh model from the same keys on *all*
   the training ratings, hold-out included, for the chosen epochs at the
   chosen λ (:func:`refit`), and return that model: the hold-out chose how
   long to train, the refit learns from every rating (benchmarks/RESULTS.md §7
   measures the gain).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from ttm_jax import checks
from ttm_jax.config import ModelConfig, TrainConfig
from ttm_jax.data.ratings import RatingData, random_split
from ttm_jax.io.checkpoint import TRAINING_FORMAT
from ttm_jax.io.folders import OutputPathError, check_writable
from ttm_jax.model.init import init_model
from ttm_jax.model.towers import TwoTower
from ttm_jax.training.callbacks import Callback, progress_callback
from ttm_jax.training.fit import LambdaGridResult, check_lambdas, fit, fit_lambda_grid
from ttm_jax.training.results import FitResult, TrainingDivergedError

__all__ = ["ProtocolResult", "check_checkpoint_dir", "holdout_then_refit", "refit"]

_STAGES = ("holdout", "refit")


class ProtocolResult(NamedTuple):
    """What :func:`holdout_then_refit` returns.

    Attributes:
      model: the model to use: the refitted one, or the early-stopped one
        without a refit.
      selection: the early-stopped fit on the training part (a one-model
        :class:`FitResult`; the chosen λ's member when a grid was trained).
      grid: the :class:`~ttm_jax.training.LambdaGridResult` when λ was chosen
        from a grid, else ``None``.
      refit: the refit's :class:`FitResult`, or ``None`` without one.
      penalty_weight: the λ used (chosen, or the configuration's).
      epochs: the epochs the refit trains (``round(selection.best_epoch)``, at least 1).
    """

    model: TwoTower
    selection: FitResult
    grid: LambdaGridResult | None
    refit: FitResult | None
    penalty_weight: float
    epochs: int


def refit(
    model_config: ModelConfig,
    data: RatingData,
    config: TrainConfig,
    best_epoch: float,
    *,
    init_key: jax.Array,
    key: jax.Array,
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir=None,
    checkpoint_every: int = 1,
) -> FitResult:
    """Retrain on all of ``data`` for the epochs an early-stopped fit kept.

    Trains a fresh model (``init_model(model_config, data, key=init_key)``: the
    standardisation statistics now come from all of ``data``) on every rating
    for ``max(1, round(best_epoch))`` epochs, with no early stopping. Pass the
    first fit's keys so that the two differ only in the data they see.

    Args:
      model_config: the architecture of the first fit.
      data: all the training ratings Ω.
      config: the first fit's :class:`TrainConfig` (its λ included); its
        ``max_epochs`` is replaced.
      best_epoch: the first fit's ``best_epoch``.
      init_key, key: ``jax.random`` keys for :func:`~ttm_jax.init_model` and
        the minibatch draws.
      progress, callbacks, checkpoint_dir, checkpoint_every: as :func:`~ttm_jax.fit`.

    Returns:
      The refit's one-model :class:`FitResult` (no validation curve).

    Raises:
      TrainingDivergedError: as :func:`~ttm_jax.fit`.
    """
    epochs = max(1, round(checks.real("best_epoch", best_epoch, low=0.0)))
    model = init_model(model_config, data, key=init_key)
    # Reported as "refit", so that a log of the protocol tells its two fits apart.
    report = progress_callback("refit", False if jax.process_index() else progress)
    return fit(model, data, None, config.replace(max_epochs=epochs), key=key, progress=False,
               callbacks=(report, *callbacks), checkpoint_dir=checkpoint_dir,
               checkpoint_every=checkpoint_every)


def check_checkpoint_dir(checkpoint_dir) -> dict[str, Path | None]:
    """The checkpoint folders of the protocol's two stages under ``checkpoint_dir``
    (``holdout/`` and ``refit/``), checked before any training.

    Raises:
      ttm_jax.io.OutputPathError: ``checkpoint_dir`` is a file, holds files the
        protocol did not write, or a stage folder cannot hold a checkpoint.
    """
    if checkpoint_dir is None:
        return dict.fromkeys(_STAGES)
    root = Path(checkpoint_dir)
    if root.exists():
        if not root.is_dir():
            raise OutputPathError(f"checkpoint_dir={root} is a file; choose a folder")
        foreign = sorted(p.name for p in root.iterdir() if p.name not in _STAGES)
        if foreign:
            raise OutputPathError(
                f"checkpoint_dir={root} holds {', '.join(foreign[:3])}, which the protocol did "
                f"not write (it keeps only {' and '.join(_STAGES)}/ there); choose a new or "
                "empty folder")
    dirs = {stage: root / stage for stage in _STAGES}
    for folder in dirs.values():
        check_writable(folder, TRAINING_FORMAT)
    return dirs


def holdout_then_refit(
    model_config: ModelConfig,
    train: RatingData,
    config: TrainConfig,
    *,
    validation_fraction: float = 0.2,
    lambdas: Sequence[float] | np.ndarray | None = None,
    refit_all: bool = True,
    split_seed: int,
    init_key: jax.Array,
    key: jax.Array,
    progress: bool | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 1,
) -> ProtocolResult:
    """Hold out part of ``train``, early-stop on it (choosing λ from ``lambdas`` if given),
    then refit on all of ``train``.

    Args:
      model_config: the architecture.
      train: all the training ratings Ω.
      config: optimiser, schedule, penalty (its λ, unless ``lambdas``), budget,
        stopping rule.
      validation_fraction: the share of ``train`` held out, in ``(0, 1)``.
      lambdas: ``None``: train at ``config.penalty_weight``; else a grid of λ,
        trained together, λ chosen by hold-out RMSE.
      refit_all: refit on all of ``train`` (the default); ``False`` returns the
        early-stopped model trained on the other ``1 − validation_fraction``.
      split_seed: seeds the hold-out.
      init_key, key: ``jax.random`` keys of the initial weights and of the
        minibatch draws, shared by the two fits.
      progress: progress reports (see :func:`~ttm_jax.fit`).
      checkpoint_dir: a folder for the checkpoints of both stages (its
        subfolders ``holdout/`` and ``refit/``); an interrupted protocol resumes.
      checkpoint_every: validation checks between checkpoints.

    Returns:
      A :class:`ProtocolResult`.

    Raises:
      TrainingDivergedError: the early-stopped fit or the refit diverged (the
        error's ``result`` holds the best parameters found; when the refit
        diverged, its ``selection`` is the early-stopped fit).

    Example:
      >>> out = holdout_then_refit(ModelConfig(), split.train, TrainConfig(), split_seed=0,
      ...                          init_key=jax.random.key(0), key=jax.random.key(1))
      >>> evaluate(out.model, split.test).overall.rmse
    """
    if not isinstance(train, RatingData):
        raise TypeError(f"train must be a RatingData, got {type(train).__name__}")
    checks.fraction("validation_fraction", validation_fraction, allow_zero=False)
    split_seed = checks.integer("split_seed", split_seed, low=0)
    dirs = check_checkpoint_dir(checkpoint_dir)
    split = random_split(train, validation_fraction, seed=split_seed)
    part, holdout = split.train, split.test
    model = init_model(model_config, part, key=init_key)
    grid = None
    if lambdas is None:
        selection = fit(model, part, holdout, config, key=key, progress=progress,
                        checkpoint_dir=dirs["holdout"], checkpoint_every=checkpoint_every)
        lam = config.penalty_weight
    else:
        grid = fit_lambda_grid(model, part, holdout, config, lambdas=check_lambdas(lambdas),
                               key=key, progress=progress, checkpoint_dir=dirs["holdout"],
                               checkpoint_every=checkpoint_every)
        selection, lam = grid.fits.member(grid.best_index), grid.best_lambda
    epochs = max(1, round(selection.best_epoch))
    if not refit_all:
        return ProtocolResult(selection.model, selection, grid, None, lam, epochs)
    try:
        again = refit(model_config, train, config.replace(penalty_weight=lam),
                      selection.best_epoch, init_key=init_key, key=key, progress=progress,
                      checkpoint_dir=dirs["refit"], checkpoint_every=checkpoint_every)
    except TrainingDivergedError as err:
        raise TrainingDivergedError(f"the refit on all {train.n_ratings} ratings: {err}",
                                    err.result, selection=selection) from None
    return ProtocolResult(again.model, selection, grid, again, lam, epochs)
