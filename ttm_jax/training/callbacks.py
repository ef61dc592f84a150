"""Progress reports of the training loop: a bar on a terminal, a line per check in a log.

The loop (:func:`ttm_jax.training.engine.train`) calls each callback with a
:class:`CheckReport` after every validation check, and once more with
``finished=True`` when it ends. :func:`progress_callback` is the one the
library uses: a tqdm bar when stderr is a terminal, and otherwise (output
redirected to a file, a batch job) one concise line per check, at most one
every ``min_interval`` seconds, so that long runs are never silent.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import NamedTuple, TextIO

import numpy as np
from tqdm.auto import tqdm

__all__ = ["Callback", "CheckReport", "progress_callback"]


class CheckReport(NamedTuple):
    """The state of a run after a validation check.

    Attributes:
      epoch: epochs trained.
      max_epochs: the budget.
      train_mse: ``[r]`` mean training MSE since the last check (NaN for stopped members).
      val_rmse: ``[r]`` validation RMSE (NaN without validation or once stopped).
      best_rmse: ``[r]`` best validation RMSE so far.
      active: ``[r]`` members still training.
      seconds: wall-clock time since the run started.
      finished: the run has ended (the last report).
      current_model: ``k -> TwoTower``, member ``k`` with its parameters at this
        check (built only when called, e.g. to score a test set along the way).
      label: the run's name (``"fit"``, ``"refit"``, ``"λ grid ×25"``, …).
    """

    epoch: float
    max_epochs: int
    train_mse: np.ndarray
    val_rmse: np.ndarray
    best_rmse: np.ndarray
    active: np.ndarray
    seconds: float
    finished: bool
    current_model: Callable[[int], object] | None = None
    label: str = ""


#: A callback: called with a :class:`CheckReport` after each check and at the end.
Callback = Callable[[CheckReport], None]


def _summary(report: CheckReport) -> str:
    r = report.active.size
    best = report.best_rmse[np.isfinite(report.best_rmse)]
    if r == 1:
        parts = [f"train MSE {report.train_mse[0]:.4f}"] if math.isfinite(report.train_mse[0]) else []
        if math.isfinite(report.val_rmse[0]):
            parts.append(f"val RMSE {report.val_rmse[0]:.4f}")
        if best.size:
            parts.append(f"best {best.min():.4f}")
    else:
        parts = [f"{int(report.active.sum())}/{r} training"]
        if best.size:
            parts.append(f"best val RMSE {best.min():.4f}")
    return ", ".join(parts)


def progress_callback(desc: str, progress: bool | None, *, stream: TextIO | None = None,
                      min_interval: float = 10.0) -> Callback:
    """The library's progress report for a run labelled ``desc``.

    Args:
      desc: the label, e.g. ``"fit"`` or ``"λ grid ×25"``.
      progress: ``False``: report nothing; ``True`` or ``None``: a tqdm bar when
        ``stream`` is a terminal, else a line per check (at most one every
        ``min_interval`` seconds, and always the last).
      stream: where to report (default ``sys.stderr``).
      min_interval: seconds between log lines.

    Returns:
      A :data:`Callback`.
    """
    if progress is False:
        return lambda report: None
    out = sys.stderr if stream is None else stream
    if out.isatty():
        bar: list[tqdm] = []

        def to_bar(report: CheckReport) -> None:
            if not bar:
                # leave=None: a bar nested under a caller's bar is cleared when done.
                bar.append(tqdm(total=report.max_epochs, unit="epoch", desc=desc, leave=None,
                                file=out))
            bar[0].update(min(report.epoch, report.max_epochs) - bar[0].n)
            bar[0].set_postfix_str(_summary(report), refresh=False)
            if report.finished:
                bar[0].close()

        return to_bar

    last = [-math.inf]

    def to_log(report: CheckReport) -> None:
        now = time.monotonic()
        if report.finished or now - last[0] >= min_interval:
            last[0] = now
            state = "done" if report.finished else "epoch"
            parts = [f"{desc}: {state} {report.epoch:g}/{report.max_epochs}", _summary(report),
                     f"{report.seconds:.0f} s"]
            print(", ".join(p for p in parts if p), file=out, flush=True)

    return to_log
