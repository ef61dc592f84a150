"""What training returns: per-check :class:`History`, the :class:`FitResult` of one
model or of ``r`` members, and the error raised when a single fit diverges."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ttm_jax.model.towers import TwoTower
from ttm_jax.training.stopping import StopReason

__all__ = ["FitResult", "History", "TrainingDivergedError"]


class History(NamedTuple):
    """One row per validation check, the first at epoch 0 (the initial model).

    Attributes:
      epoch: ``[c]`` epochs trained at each check.
      train_mse: mean training MSE since the previous check (eq. 2's data term,
        without the penalty; NaN at epoch 0).
      val_rmse: validation RMSE (NaN without validation, and once a member has stopped).
      learning_rate: the step size in force during the epochs before the check.

    The last three are ``[c]`` for one model and ``[c, r]`` for ``r`` members;
    :meth:`member` takes one member's columns.
    """

    epoch: np.ndarray
    train_mse: np.ndarray
    val_rmse: np.ndarray
    learning_rate: np.ndarray

    def member(self, k: int) -> History:
        """Member ``k``'s history (``[c]`` columns)."""
        if self.train_mse.ndim == 1:
            if k != 0:
                raise IndexError(f"member {k}: this history is one model's")
            return self
        return History(self.epoch, self.train_mse[:, k], self.val_rmse[:, k],
                       self.learning_rate[:, k])


class FitResult(NamedTuple):
    """What training returns, for one model or for ``r`` members trained together.

    For one model (:func:`ttm_jax.fit`) the per-member fields are scalars; for
    ``r`` members (:func:`ttm_jax.training.fit_members`, the λ grid) they are
    ``[r]`` arrays and :meth:`member` gives member ``k`` as a one-model result.

    Attributes:
      models: the trained models, each holding its kept parameters (lowest
        validation RMSE; the last ones without validation).
      history: per-check curves (:class:`History`).
      best_epoch: epoch of the kept parameters.
      best_val_rmse: their validation RMSE (NaN without validation).
      epochs_run: epochs trained (up to the member's stop).
      stop_reason: why it stopped (:class:`~ttm_jax.training.StopReason`).
      seconds: wall-clock time of the whole run, compilation included.
      tower_mode: ``"entity"`` or ``"rating"``, as resolved.
      learning_rate: ``η_0`` of each member.
      penalty_weight: ``λ`` of each member.
    """

    models: tuple[TwoTower, ...]
    history: History
    best_epoch: float | np.ndarray
    best_val_rmse: float | np.ndarray
    epochs_run: float | np.ndarray
    stop_reason: StopReason | tuple[StopReason, ...]
    seconds: float
    tower_mode: str
    learning_rate: float | np.ndarray
    penalty_weight: float | np.ndarray

    @property
    def n_members(self) -> int:
        """``r``: 1 for one model."""
        return len(self.models)

    @property
    def model(self) -> TwoTower:
        """The trained model of a one-model result."""
        if len(self.models) != 1 or isinstance(self.stop_reason, tuple):
            raise AttributeError(f"this result holds {len(self.models)} members; take one with "
                                 ".member(k) or use .models")
        return self.models[0]

    @property
    def diverged(self) -> bool | np.ndarray:
        """Whether the loss (or validation RMSE) became non-finite: ``bool`` or ``[r]``."""
        if isinstance(self.stop_reason, tuple):
            return np.array([s is StopReason.DIVERGED for s in self.stop_reason])
        return self.stop_reason is StopReason.DIVERGED

    def member(self, k: int) -> FitResult:
        """Member ``k`` as a one-model result (scalar fields, ``[c]`` history)."""
        if not isinstance(self.stop_reason, tuple):
            if k != 0:
                raise IndexError(f"member {k}: this result holds one model")
            return self
        if not -len(self.models) <= k < len(self.models):
            raise IndexError(f"member {k}: this result holds {len(self.models)} members")
        return FitResult(
            models=(self.models[k],),
            history=self.history.member(k),
            best_epoch=float(self.best_epoch[k]),
            best_val_rmse=float(self.best_val_rmse[k]),
            epochs_run=float(self.epochs_run[k]),
            stop_reason=self.stop_reason[k],
            seconds=self.seconds,
            tower_mode=self.tower_mode,
            learning_rate=float(self.learning_rate[k]),
            penalty_weight=float(self.penalty_weight[k]),
        )


class TrainingDivergedError(RuntimeError):
    """The training loss (or validation RMSE) of a single fit became NaN or infinite.

    Attributes:
      result: a one-model :class:`FitResult` whose model holds the best
        parameters found before the divergence (the initial ones if it
        diverged at once).
      selection: when it was the refit of :func:`ttm_jax.protocols.holdout_then_refit`
        that diverged, the early-stopped fit that chose its epochs (a usable
        model); otherwise ``None``.
    """

    def __init__(self, message: str, result: FitResult, *, selection: FitResult | None = None):
        super().__init__(message)
        self.result = result
        self.selection = selection
