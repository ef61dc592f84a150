"""Early stopping for ``r`` members at once, and why a member stopped.

One rule for every fit (:func:`ttm_jax.training.engine.train`): after each
validation check a member improves when its RMSE falls below its best by more
than ``min_delta``; it stops after ``patience`` checks without improvement, or
when its loss or RMSE becomes non-finite (it diverged). A member that stopped
keeps the parameters of its best check. The bookkeeping is a few ``[r]``
vectors on the host.
"""

from __future__ import annotations

import enum
import math
from typing import NamedTuple

import numpy as np

__all__ = ["EarlyStopping", "StopReason"]


class StopReason(enum.StrEnum):
    """Why a member (or a run) stopped training.

    A ``str`` enum: ``StopReason.EARLY_STOPPING == "early_stopping"``, so it
    reads and serialises as the plain names earlier versions used.
    """

    MAX_EPOCHS = "max_epochs"
    EARLY_STOPPING = "early_stopping"
    TIME_LIMIT = "time_limit"
    DIVERGED = "diverged"


class EarlyStopping(NamedTuple):
    """Per-member early-stopping state, each field ``[r]``.

    Attributes:
      best_rmse: lowest validation RMSE so far (``inf`` before the first check).
      best_epoch: epoch of the kept parameters.
      since_best: checks since the last improvement.
      active: still training.
      diverged: stopped because its loss or RMSE became non-finite.
      diverged_epoch: epoch of the check that found it (NaN when it did not diverge).
    """

    best_rmse: np.ndarray
    best_epoch: np.ndarray
    since_best: np.ndarray
    active: np.ndarray
    diverged: np.ndarray
    diverged_epoch: np.ndarray

    @classmethod
    def start(cls, r: int) -> EarlyStopping:
        """The state of ``r`` members before any check."""
        return cls(np.full(r, math.inf), np.zeros(r), np.zeros(r, np.int64), np.ones(r, bool),
                   np.zeros(r, bool), np.full(r, math.nan))

    def update(self, mses: np.ndarray | None, rmse: np.ndarray | None, epoch: float, *,
               patience: int, min_delta: float) -> tuple[EarlyStopping, np.ndarray]:
        """One check.

        Args:
          mses: ``[r, steps]`` training losses since the last check (``None`` at
            the check before training).
          rmse: ``[r]`` validation RMSE (``None``: no validation, so every
            healthy member keeps its latest parameters).
          epoch: epochs trained so far.
          patience, min_delta: the stopping rule (``TrainConfig``).

        Returns:
          The new state, and the ``[r]`` mask of members whose current
          parameters become their kept ones.
        """
        bad = np.zeros_like(self.active)
        if mses is not None:
            bad |= self.active & ~np.isfinite(mses).all(axis=1)
        if rmse is not None:
            bad |= self.active & ~np.isfinite(rmse)
        diverged, active = self.diverged | bad, self.active & ~bad
        diverged_epoch = np.where(bad, epoch, self.diverged_epoch)
        if rmse is None:
            return self._replace(best_epoch=np.where(active, epoch, self.best_epoch),
                                 active=active, diverged=diverged,
                                 diverged_epoch=diverged_epoch), active
        improved = active & (rmse < self.best_rmse - min_delta)
        since_best = np.where(improved, 0, self.since_best + active)
        return EarlyStopping(
            best_rmse=np.where(improved, rmse, self.best_rmse),
            best_epoch=np.where(improved, epoch, self.best_epoch),
            since_best=since_best,
            active=active & (since_best < patience),
            diverged=diverged,
            diverged_epoch=diverged_epoch,
        ), improved

    def reasons(self, validated: bool, out_of_time: bool) -> tuple[StopReason, ...]:
        """Each member's :class:`StopReason` once the loop has ended."""
        out = []
        for k in range(self.active.size):
            if self.diverged[k]:
                out.append(StopReason.DIVERGED)
            elif validated and not self.active[k]:
                out.append(StopReason.EARLY_STOPPING)
            elif out_of_time:
                out.append(StopReason.TIME_LIMIT)
            else:
                out.append(StopReason.MAX_EPOCHS)
        return tuple(out)
