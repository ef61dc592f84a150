"""ttm_jax.progress: the epoch bar that fit, fit_lambda_grid and fit_ensemble share."""
import sys

import pytest

from ttm_jax.progress import epoch_bar


@pytest.mark.parametrize("progress, tty, shown", [(True, False, True), (False, True, False),
                                                  (None, True, True), (None, False, False)])
def test_progress_none_follows_whether_stderr_is_a_terminal(monkeypatch, progress, tty, shown):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    bar = epoch_bar(100, "fit", progress)
    try:
        assert bar.disable is (not shown)
        assert bar.total == 100
    finally:
        bar.close()
