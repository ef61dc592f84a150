"""The progress bar over training epochs, shared by ``fit``, ``fit_lambda_grid``
and ``fit_ensemble``."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def epoch_bar(total: int, desc: str, progress: bool | None) -> tqdm:
    """A tqdm bar counting ``total`` epochs.

    Args:
      total: the epoch budget (``TrainConfig.max_epochs``).
      desc: the bar's label, e.g. ``"fit"`` or ``"λ grid ×25"``.
      progress: show the bar; ``None``: when stderr is a terminal.

    Returns:
      The bar (disabled when not shown). A bar on its own stays on screen when
      closed; one nested under a caller's bar (table1's run bar) is cleared, so
      that finished inner bars do not pile up (tqdm's ``leave=None``).
    """
    show = sys.stderr.isatty() if progress is None else progress
    return tqdm(total=total, unit="epoch", disable=not show, desc=desc, leave=None)
