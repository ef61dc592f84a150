"""The library's fitting protocol: hold out, early-stop (choosing λ if asked), refit on everything.

:func:`holdout_then_refit` is the one implementation of the protocol that
``TwoTowerRegressor()``, the command line's ``fit``, Table 1 and the tuning
scripts all use:

1. hold out ``validation_fraction`` of the training ratings (the paper: 20%);
2. train on the rest with early stopping on the hold-out, which chooses the
   number of epochs, and, given a grid of λ, every λ at once under ``vmap``
   (:func:`~ttm_jax.training.fit_lambda_grid`), which chooses λ;
3. refit on *all* the training ratings, hold-out included, and return that
   model: the hold-out chose how long to train (and λ), the refit learns from
   every rating. Two ways (``refit=``):

   * ``"warm"`` (the default, :func:`continue_training`): the early-stopped
     model trains on, on all the ratings, for a short :data:`WARM_FRACTION` of
     the epochs it kept, at the step size its schedule had reached there;
   * ``"scratch"`` (:func:`refit_from_scratch`): a fresh model from the same keys trains on
     all the ratings for the epochs the hold-out chose, which costs a whole
     second fit.

   ``"none"`` returns the early-stopped model trained on the other
   ``1 − validation_fraction``. benchmarks/RESULTS.md §7 and
   ``benchmarks/time_to_accuracy.py`` measure what each gains and costs.
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
from ttm_jax.io.folders import check_holds_only, check_writable
from ttm_jax.model.init import init_model, with_seen_ids
from ttm_jax.model.towers import TwoTower
from ttm_jax.training.callbacks import Callback
from ttm_jax.training.fit import LambdaGridResult, check_lambdas, fit, fit_lambda_grid
from ttm_jax.training.results import FitResult, TrainingDivergedError

__all__ = ["REFIT_MODES", "WARM_FRACTION", "ProtocolResult", "check_checkpoint_dir",
           "continue_training", "holdout_then_refit", "refit_from_scratch"]

_STAGES = ("holdout", "refit")
#: How :func:`holdout_then_refit` refits on all the ratings.
REFIT_MODES = ("warm", "scratch", "none")
#: The share of the kept epochs that a warm refit trains on all the ratings.
WARM_FRACTION = 0.05


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
      epochs: the epochs the refit trained (0 without one).
    """

    model: TwoTower
    selection: FitResult
    grid: LambdaGridResult | None
    refit: FitResult | None
    penalty_weight: float
    epochs: int


def refit_from_scratch(
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
    # Labelled "refit", so that a log of the protocol tells its two fits apart.
    return fit(model, data, None, config.replace(max_epochs=epochs), key=key, progress=progress,
               callbacks=callbacks, checkpoint_dir=checkpoint_dir,
               checkpoint_every=checkpoint_every, label="refit")


def continue_training(
    selection: FitResult,
    data: RatingData,
    config: TrainConfig,
    *,
    key: jax.Array,
    fraction: float = WARM_FRACTION,
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint_dir=None,
    checkpoint_every: int = 1,
) -> FitResult:
    """The warm refit: an early-stopped model trained on, on all of ``data``.

    ``selection``'s model (its best parameters) trains on every rating, hold-out
    included, for ``max(1, ⌈fraction · best_epoch⌉)`` epochs, with fresh
    optimiser moments and a constant step size: the one its schedule had
    reached at the kept epoch (``selection.history.learning_rate`` there). The
    standardisation keeps the statistics of the data it was fitted on; id
    tables count every user and item of ``data`` as seen from now on.

    Args:
      selection: the early-stopped one-model :class:`FitResult`.
      data: all the training ratings Ω (sharing the selection's covariate columns).
      config: the selection's :class:`TrainConfig` (its λ included).
      key: ``jax.random`` key; the continuation draws from ``fold_in(key, 1)``.
      fraction: the share of the kept epochs to train, in ``(0, 1]``.
      progress, callbacks, checkpoint_dir, checkpoint_every: as :func:`~ttm_jax.fit`.

    Returns:
      The continuation's one-model :class:`FitResult` (no validation curve).
    """
    fraction = checks.real("fraction", fraction, low=0.0, high=1.0, low_open=True)
    hist = selection.history
    at = int(np.argmin(np.abs(hist.epoch - selection.best_epoch)))
    # The row at epoch 0 has no step taken yet; its "step size in force" is the first one.
    step_size = float(hist.learning_rate[max(at, 1) if hist.epoch.size > 1 else 0])
    epochs = max(1, int(np.ceil(fraction * selection.best_epoch)))
    warm = config.replace(learning_rate=step_size, decay_rate=1.0, warmup_epochs=0.0,
                          max_epochs=epochs)
    # Users and items met only in the hold-out read the unknown row until now;
    # from here on they train their own rows.
    model = with_seen_ids(selection.model, data)
    return fit(model, data, None, warm, key=jax.random.fold_in(key, 1),
               progress=progress, callbacks=callbacks, checkpoint_dir=checkpoint_dir,
               checkpoint_every=checkpoint_every, label="refit")


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
    check_holds_only(root, _STAGES, where=f"checkpoint_dir={root}", writer="the protocol",
                     kept=f"only {' and '.join(_STAGES)}/")
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
    refit: str = "warm",
    split_seed: int,
    init_key: jax.Array,
    key: jax.Array,
    progress: bool | None = None,
    callbacks: Sequence[Callback] = (),
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
      refit: how to refit on all of ``train`` (:data:`REFIT_MODES`):
        ``"warm"`` (continue the early-stopped model, :func:`continue_training`),
        ``"scratch"`` (a fresh model for the kept epochs, :func:`refit_from_scratch`) or
        ``"none"`` (return the early-stopped model).
      split_seed: seeds the hold-out.
      init_key, key: ``jax.random`` keys of the initial weights and of the
        minibatch draws, shared by the two fits.
      progress: progress reports (see :func:`~ttm_jax.fit`).
      callbacks: called after every check of both fits (``CheckReport.label`` tells
        them apart: the hold-out fit's or the grid's label, then ``"refit"``).
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
    checks.choice("refit", refit, REFIT_MODES)
    split_seed = checks.integer("split_seed", split_seed, low=0)
    dirs = check_checkpoint_dir(checkpoint_dir)
    split = random_split(train, validation_fraction, seed=split_seed)
    part, holdout = split.train, split.test
    model = init_model(model_config, part, key=init_key)
    grid = None
    if lambdas is None:
        selection = fit(model, part, holdout, config, key=key, progress=progress,
                        callbacks=callbacks, checkpoint_dir=dirs["holdout"],
                        checkpoint_every=checkpoint_every)
        lam = config.penalty_weight
    else:
        grid = fit_lambda_grid(model, part, holdout, config, lambdas=check_lambdas(lambdas),
                               key=key, progress=progress, callbacks=callbacks,
                               checkpoint_dir=dirs["holdout"], checkpoint_every=checkpoint_every)
        selection, lam = grid.fits.member(grid.best_index), grid.best_lambda
    if refit == "none":
        return ProtocolResult(selection.model, selection, grid, None, lam, 0)
    chosen = config.replace(penalty_weight=lam)
    try:
        if refit == "warm":
            again = continue_training(selection, train, chosen, key=key, progress=progress,
                                      callbacks=callbacks, checkpoint_dir=dirs["refit"],
                                      checkpoint_every=checkpoint_every)
        else:
            again = refit_from_scratch(model_config, train, chosen, selection.best_epoch,
                                       init_key=init_key, key=key, progress=progress,
                                       callbacks=callbacks, checkpoint_dir=dirs["refit"],
                                       checkpoint_every=checkpoint_every)
    except TrainingDivergedError as err:
        raise TrainingDivergedError(f"the refit on all {train.n_ratings} ratings: {err}",
                                    err.result, selection=selection) from None
    return ProtocolResult(again.model, selection, grid, again, lam, int(again.epochs_run))

