"""Progress reports: a bar on a terminal, a concise line per check in a log, nothing when off."""

from __future__ import annotations

import io

import jax
import numpy as np
import pytest

from ttm_jax import ModelConfig, TrainConfig, fit, init_model, make_synthetic, random_split
from ttm_jax.training import CheckReport, progress_callback


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _report(epoch, finished=False, val=0.5):
    return CheckReport(epoch=epoch, max_epochs=100, train_mse=np.array([0.25]),
                       val_rmse=np.array([val]), best_rmse=np.array([val]),
                       active=np.array([True]), seconds=1.0, finished=finished)


def test_a_log_gets_lines_at_most_every_interval_and_always_the_last():
    log = io.StringIO()
    report = progress_callback("fit", None, stream=log, min_interval=3600)
    for epoch in (0, 10, 20):
        report(_report(epoch))
    report(_report(30, finished=True))
    lines = log.getvalue().splitlines()
    assert lines == ["fit: epoch 0/100, train MSE 0.2500, val RMSE 0.5000, best 0.5000, 1 s",
                     "fit: done 30/100, train MSE 0.2500, val RMSE 0.5000, best 0.5000, 1 s"]


def test_a_terminal_gets_a_bar():
    term = _Terminal()
    report = progress_callback("fit", True, stream=term)
    report(_report(10))
    report(_report(20, finished=True))
    assert "20/100" in term.getvalue() and "epoch" in term.getvalue()


def test_progress_false_is_silent():
    log = io.StringIO()
    progress_callback("fit", False, stream=log)(_report(1, finished=True))
    assert log.getvalue() == ""


@pytest.mark.parametrize("with_validation", [True, False])
def test_a_fit_reports_validation_rmse_only_when_there_is_a_validation_set(
        capsys, with_validation):
    data, _ = make_synthetic(60, 50, 1500, intrinsic_dim=2, ambient_dim=4, seed=0)
    split = random_split(data, 0.2, seed=0)
    model = init_model(ModelConfig(hidden=(8,), embedding_dim=3), split.train,
                       key=jax.random.key(0))
    fit(model, split.train, split.test if with_validation else None,
        TrainConfig(max_epochs=4, eval_every_epochs=2, batch_size=256),
        key=jax.random.key(1), progress=True)
    err = capsys.readouterr().err  # not a terminal under pytest: log lines
    assert "fit: done 4/4, train MSE" in err
    # A refit has no validation set: no "val RMSE nan" that reads like a failure.
    assert ("val RMSE" in err) is with_validation
    assert "nan" not in err
