"""benchmarks/tune_default.py: every candidate it offers is a valid configuration."""
import dataclasses

import pytest

from ttm_jax import ModelConfig, TrainConfig


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
