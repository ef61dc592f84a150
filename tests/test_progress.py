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


@pytest.mark.parametrize("with_validation", [True, False])
def test_fits_bar_shows_validation_rmse_only_when_there_is_a_validation_set(
        capsys, with_validation):
    import jax

    from ttm_jax import ModelConfig, TrainConfig, fit, init_model, make_synthetic, random_split

    data, _ = make_synthetic(60, 50, 1500, intrinsic_dim=2, ambient_dim=4, seed=0)
    split = random_split(data, 0.2, seed=0)
    model = init_model(ModelConfig(hidden=(8,), embedding_dim=3), split.train,
                       key=jax.random.key(0))
    fit(model, split.train, split.test if with_validation else None,
        TrainConfig(max_epochs=4, eval_every_epochs=2, batch_size=256),
        key=jax.random.key(1), progress=True)
    bar = capsys.readouterr().err
    assert "train_mse=" in bar
    # A refit has no validation set: no "val_rmse=nan" that reads like a failure.
    assert ("val_rmse=" in bar) is with_validation
