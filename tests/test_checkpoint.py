"""Saving and loading models (bit-identical, atomic, with clear errors), and resuming
training from periodic checkpoints."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

import ttm_jax.checkpoint as ckpt
from ttm_jax import (
    CheckpointError,
    FeatureSchema,
    ModelConfig,
    TrainConfig,
    fit,
    init_model,
    load_model,
    make_synthetic,
    predict_pairs,
    random_split,
    save_model,
)

CONFIG = ModelConfig(hidden=(16, 8), embedding_dim=4)


@pytest.fixture(scope="module")
def trained():
    data, _ = make_synthetic(80, 60, 2000, intrinsic_dim=3, ambient_dim=5, seed=0)
    split = random_split(data, 0.2, 0.2, seed=0)
    model = init_model(CONFIG, split.train, key=jax.random.key(0))
    result = fit(model, split.train, split.validation, TrainConfig(max_epochs=4, batch_size=256),
                 key=jax.random.key(1), progress=False)
    return result.model, split


def _predict(model, data):
    return predict_pairs(model, data.user_features, data.item_features, data.user_ids,
                         data.item_ids)


def test_save_then_load_predicts_bit_identically(trained, tmp_path):
    model, split = trained
    schema = FeatureSchema(5, 5, tuple("abcde"), tuple("vwxyz"))
    ids = np.array(["u-1", "ü2", "3"])
    save_model(tmp_path / "m", model, CONFIG, schema=schema, arrays={"ids": ids},
               metadata={"note": "first"})

    saved = load_model(tmp_path / "m", user_features=5, item_features=5)
    assert np.array_equal(_predict(saved.model, split.test), _predict(model, split.test))
    assert saved.config == CONFIG and saved.schema == schema
    assert np.array_equal(saved.arrays["ids"], ids)
    assert saved.metadata["user_metadata"] == {"note": "first"}
    assert saved.metadata["format_version"] == ckpt.FORMAT_VERSION
    # The standardisation and the offset travel with the parameters.
    assert float(saved.model.offset[...]) == float(model.offset[...]) != 0.0
    assert np.array_equal(saved.model.user_tower.mean[...], model.user_tower.mean[...])


@pytest.fixture
def saved_dir(trained, tmp_path):
    return save_model(tmp_path / "m", trained[0], CONFIG)


def test_a_truncated_file_is_reported(saved_dir):
    state = saved_dir / "state.msgpack"
    state.write_bytes(state.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"state.msgpack is truncated or altered: \d+ bytes"):
        load_model(saved_dir)


def test_an_altered_file_fails_its_checksum(saved_dir):
    state = saved_dir / "state.msgpack"
    data = bytearray(state.read_bytes())
    data[-5] ^= 0xFF
    state.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted: its SHA-256 checksum does not match"):
        load_model(saved_dir)


def test_a_truncated_metadata_file_is_reported(saved_dir):
    meta = saved_dir / "metadata.json"
    meta.write_text(meta.read_text()[:50])
    with pytest.raises(CheckpointError, match="metadata.json is truncated or not JSON"):
        load_model(saved_dir)


def test_another_format_version_is_refused_with_both_versions(saved_dir):
    meta = json.loads((saved_dir / "metadata.json").read_text())
    meta["format_version"] = 99
    (saved_dir / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format version 99 .* reads format version 1"):
        load_model(saved_dir)


def test_other_feature_widths_are_refused(saved_dir):
    with pytest.raises(CheckpointError, match="7 user covariate columns but the saved model "
                                              "expects D_u=5"):
        load_model(saved_dir, user_features=7)
    saved = load_model(saved_dir)
    with pytest.raises(CheckpointError, match="expects D_i=5"):
        saved.schema.check(item_features=4)


def test_an_architecture_that_contradicts_the_arrays_is_refused(saved_dir):
    meta = json.loads((saved_dir / "metadata.json").read_text())
    meta["model_config"]["hidden"] = [16, 9]
    (saved_dir / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"has shape \(8,\) .*needs \(9,\)"):
        load_model(saved_dir)


def test_a_config_that_does_not_describe_the_model_is_refused_before_writing(trained, tmp_path):
    with pytest.raises(CheckpointError, match="does not match|needs"):
        save_model(tmp_path / "m", trained[0], ModelConfig(hidden=(16,), embedding_dim=4))
    assert not (tmp_path / "m").exists()


def test_a_crash_mid_save_leaves_the_previous_model_intact(trained, tmp_path, monkeypatch):
    model, split = trained
    path = save_model(tmp_path / "m", model, CONFIG)
    before = _predict(load_model(path).model, split.test)
    other = init_model(CONFIG, split.train, key=jax.random.key(7))

    real_write = ckpt._write_file
    calls = []

    def crash_on_second_file(p, data):
        calls.append(p)
        if len(calls) == 2:
            real_write(p, data[: len(data) // 2])
            raise KeyboardInterrupt("power cut")
        real_write(p, data)

    monkeypatch.setattr(ckpt, "_write_file", crash_on_second_file)
    with pytest.raises(KeyboardInterrupt):
        save_model(path, other, CONFIG)
    monkeypatch.undo()
    assert np.array_equal(_predict(load_model(path).model, split.test), before)
    assert sorted(os.listdir(tmp_path)) == ["m"]  # the half-written temporary folder is gone

    # A crash between moving the old folder aside and moving the new one in.
    real_replace = os.replace
    replaced = []

    def crash_on_second_rename(src, dst):
        replaced.append(dst)
        if len(replaced) == 2:
            raise KeyboardInterrupt("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        save_model(path, other, CONFIG)
    monkeypatch.undo()
    assert not path.exists()
    with pytest.warns(RuntimeWarning, match="interrupted save left the previous"):
        assert np.array_equal(_predict(load_model(path).model, split.test), before)
    # The next save puts the old folder back first, then replaces it.
    save_model(path, other, CONFIG)
    assert np.array_equal(_predict(load_model(path).model, split.test), _predict(other, split.test))
    assert sorted(os.listdir(tmp_path)) == ["m"]


def test_an_unrelated_folder_is_never_replaced(trained, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(ValueError, match="not a saved ttm_jax.model; refusing to replace it"):
        save_model(tmp_path / "photos", trained[0], CONFIG)
    assert (tmp_path / "photos" / "cat.jpg").read_bytes() == b"meow"


def test_object_arrays_are_refused_rather_than_pickled(trained, tmp_path):
    with pytest.raises(ValueError, match="cannot be saved without pickle"):
        save_model(tmp_path / "m", trained[0], CONFIG, arrays={"x": np.array([{}], dtype=object)})


def test_training_resumes_from_its_checkpoint_as_if_never_interrupted(trained, tmp_path):
    _, split = trained
    model = init_model(CONFIG, split.train, key=jax.random.key(0))
    config = TrainConfig(max_epochs=6, eval_every_epochs=1, batch_size=256)
    whole = fit(model, split.train, split.validation, config, key=jax.random.key(1),
                progress=False)

    folder = tmp_path / "ckpt"
    first = fit(model, split.train, split.validation, config.replace(max_epochs=3),
                key=jax.random.key(1), progress=False, checkpoint_dir=folder, checkpoint_every=2)
    assert first.epochs_run == 3 and (folder / "metadata.json").is_file()
    resumed = fit(model, split.train, split.validation, config, key=jax.random.key(1),
                  progress=False, checkpoint_dir=folder)

    if jax.default_backend() == "cpu":
        assert np.array_equal(_predict(resumed.model, split.test),
                              _predict(whole.model, split.test))
        np.testing.assert_array_equal(resumed.history.val_rmse, whole.history.val_rmse)
    else:  # GPU scatter-adds are not deterministic unless XLA is told so (docs/index.md §5)
        np.testing.assert_allclose(_predict(resumed.model, split.test),
                                   _predict(whole.model, split.test), rtol=1e-4, atol=1e-5)
    assert resumed.best_epoch == whole.best_epoch

    with pytest.raises(ValueError, match="holds another run .*batch_size=256, this call 128"):
        fit(model, split.train, split.validation, config.replace(batch_size=128),
            key=jax.random.key(1), progress=False, checkpoint_dir=folder)
    with pytest.raises(ValueError, match="its key differs"):
        fit(model, split.train, split.validation, config, key=jax.random.key(2),
            progress=False, checkpoint_dir=folder)


def test_a_damaged_training_checkpoint_is_reported(trained, tmp_path):
    _, split = trained
    model = init_model(CONFIG, split.train, key=jax.random.key(0))
    config = TrainConfig(max_epochs=1, batch_size=256)
    fit(model, split.train, None, config, key=jax.random.key(1), progress=False,
        checkpoint_dir=tmp_path / "c")
    state = tmp_path / "c" / "state.msgpack"
    state.write_bytes(state.read_bytes()[:10])
    with pytest.raises(CheckpointError, match="truncated"):
        fit(model, split.train, None, config, key=jax.random.key(1), progress=False,
            checkpoint_dir=tmp_path / "c")
