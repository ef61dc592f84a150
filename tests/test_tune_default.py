"""benchmarks/tune_default.py: every candidate it offers is a valid configuration, and its
refit-average probe measures the library's own warm refit."""
import dataclasses

import jax
import numpy as np
import pytest

from ttm_jax import (
    ModelConfig,
    TrainConfig,
    evaluate,
    holdout_then_refit,
    make_synthetic,
    random_split,
)
from ttm_jax.protocols import WARM_FRACTION


@pytest.fixture(scope="module")
def tune_default(load_benchmark):
    return load_benchmark("tune_default")


def _changed(config, reference):
    return {f.name for f in dataclasses.fields(config)
            if getattr(config, f.name) != getattr(reference, f.name)}


def test_every_candidate_builds_a_valid_configuration(tune_default):
    for name in ["library-default", *tune_default.DEFAULT_VARIANTS, *tune_default.CANDIDATES]:
        model_cfg, train_cfg = tune_default.configs(name, max_seconds=30.0)
        assert isinstance(model_cfg, ModelConfig) and isinstance(train_cfg, TrainConfig)
        assert train_cfg.max_seconds == 30.0


def test_a_default_variant_changes_only_what_it_names(tune_default):
    # The d = 20 probes in RESULTS.md §7 read as "the library default, plus one change".
    for name, (model_over, train_over) in tune_default.DEFAULT_VARIANTS.items():
        model_cfg, train_cfg = tune_default.configs(name, max_seconds=None)
        assert _changed(model_cfg, ModelConfig()) == set(model_over), name
        assert _changed(train_cfg, TrainConfig()) == set(train_over), name


def test_the_refit_average_probe_measures_the_librarys_own_warm_refit(tune_default, load_benchmark):
    # RESULTS.md §7 quotes this probe as "the warm refit, and its parameters averaged":
    # at WARM_FRACTION its refit must be the protocol's own, and the average a different model.
    table1 = load_benchmark("table1")
    data, _ = make_synthetic(60, 50, 1500, intrinsic_dim=3, seed=4)
    split = random_split(data, 0.3, seed=4)
    model_cfg = ModelConfig(hidden=(16,), embedding_dim=4)
    train_cfg = TrainConfig(max_epochs=60, eval_every_epochs=2, patience=100, batch_size=256,
                            learning_rate=1e-2, decay_epochs=20.0)
    row = tune_default.refit_average(model_cfg, train_cfg, split.train, split.test, seed=11,
                                     lam=1e-3, fractions=[WARM_FRACTION, 0.5])
    seed = 11
    library = holdout_then_refit(model_cfg, split.train, train_cfg.replace(penalty_weight=1e-3),
                                 validation_fraction=table1.HOLDOUT_FRACTION, split_seed=seed + 1,
                                 init_key=jax.random.key(seed), key=jax.random.key(seed + 1),
                                 progress=False)
    at_warm, half = row["refits"]
    assert at_warm["epochs"] == library.epochs
    np.testing.assert_allclose(at_warm["final_test_rmse"],
                               evaluate(library.model, split.test).overall.rmse, rtol=1e-6)
    assert half["epochs"] == int(np.ceil(0.5 * row["best_epoch"])) > at_warm["epochs"]
    # Checks come every 2 epochs and at the end; the average takes those in the second half.
    epochs = half["epochs"]
    checks = set(range(2, epochs + 1, 2)) | {epochs}
    assert half["checks_averaged"] == sum(e >= epochs / 2 for e in checks) > 1
    assert half["averaged_test_rmse"] != half["final_test_rmse"]
    assert np.isfinite([half["averaged_test_rmse"], row["early_stopped_test_rmse"]]).all()


def test_the_refit_average_probe_refuses_what_it_cannot_run(tune_default, tmp_path):
    out = ["--out", str(tmp_path), "--candidates", "library-default"]
    with pytest.raises(ValueError, match="--refit-average needs --setting"):
        tune_default.main(["--refit-average", "0.05", *out])
    with pytest.raises(ValueError, match=r"each fraction must be in \(0, 1\]"):
        tune_default.main(["--setting", "7", "--lambdas", "1e-3", "--refit-average", "0,1.5", *out])
