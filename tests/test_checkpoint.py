"""Saving and loading models (bit-identical, atomic, with clear errors, never touching a
user's files), and resuming training from periodic checkpoints."""

from __future__ import annotations

import json
import os
import stat

import jax
import numpy as np
import pytest

import ttm_jax.io.folders as folders
from ttm_jax import (
    CheckpointError,
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
from ttm_jax.io import FeatureSchema, OutputPathError

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
    assert saved.metadata["format_version"] == folders.FORMAT_VERSION
    # The standardisation and the offset travel with the parameters.
    assert float(saved.model.offset[...]) == float(model.offset[...]) != 0.0
    assert np.array_equal(saved.model.user_tower.mean[...], model.user_tower.mean[...])


@pytest.fixture
def saved_dir(trained, tmp_path):
    return save_model(tmp_path / "m", trained[0], CONFIG)


def _payload_file(folder, part="state"):
    """The largest file orbax wrote for ``part`` of the saved model in ``folder``."""
    meta = json.loads((folder / "metadata.json").read_text())
    files = [folder / meta["payload"] / name for name in meta["files"]
             if name.startswith(part + "/")]
    return max(files, key=lambda f: f.stat().st_size)


def test_a_truncated_file_is_reported(saved_dir):
    state = _payload_file(saved_dir)
    state.write_bytes(state.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match=r"is truncated or altered: \d+ bytes"):
        load_model(saved_dir)


def test_an_altered_file_fails_its_checksum(saved_dir):
    state = _payload_file(saved_dir)
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


def _edit_metadata(folder, edit, *, reseal=False):
    """Edit metadata.json by hand; ``reseal`` also recomputes its checksum, as a
    deliberate forger would, to reach the checks behind it."""
    path = folder / "metadata.json"
    meta = json.loads(path.read_text())
    edit(meta)
    if reseal:
        import hashlib

        body = {k: v for k, v in meta.items() if k != "checksum"}
        meta["checksum"] = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    path.write_text(json.dumps(meta))


def test_an_edited_metadata_file_is_reported_not_obeyed(saved_dir, trained):
    _edit_metadata(saved_dir, lambda m: m["model_config"].update(activation="relu"))
    with pytest.raises(CheckpointError, match="was edited after it was written"):
        load_model(saved_dir)


def test_another_format_version_is_refused_with_both_versions(saved_dir):
    _edit_metadata(saved_dir, lambda m: m.update(format_version=99), reseal=True)
    with pytest.raises(CheckpointError,
                       match=f"format version 99 .* reads format version {folders.FORMAT_VERSION}"):
        load_model(saved_dir)


def _remove(meta, *keys):
    for key in keys[:-1]:
        meta = meta[key]
    del meta[keys[-1]]


@pytest.mark.parametrize("keys", [("model_config",), ("schema",), ("leaves",),
                                  ("leaves", "state"), ("text_arrays",), ("user_metadata",)])
def test_a_resealed_metadata_file_without_a_key_is_reported_not_a_key_error(saved_dir, keys):
    _edit_metadata(saved_dir, lambda m: _remove(m, *keys), reseal=True)
    with pytest.raises(CheckpointError, match="metadata.json is not a valid saved model's "
                                              "metadata .*Save the model again"):
        load_model(saved_dir)


@pytest.mark.parametrize("edit", [
    lambda m: m["leaves"].update(state="x"),
    lambda m: m["leaves"]["state"][0].update(shape=[10**12, 10**12]),
    lambda m: m["leaves"]["state"][0].update(dtype="object"),
    lambda m: m.update(numeric_arrays=["a", "b"]),
    lambda m: m.update(files=[]),
    lambda m: next(iter(m["files"].values())).pop("bytes"),
    lambda m: m.update(files={"../../etc/passwd": {"bytes": 1, "sha256": "0"}}),
    lambda m: m["model_config"].pop("hidden"),  # the default's widths: not the arrays'
], ids=["state-records", "huge-shape", "object-dtype", "array-names", "files-list",
        "file-size", "file-outside", "default-hidden"])
def test_a_resealed_metadata_file_with_wrong_types_is_reported(saved_dir, edit):
    _edit_metadata(saved_dir, edit, reseal=True)
    with pytest.raises(CheckpointError):
        load_model(saved_dir)


def test_other_feature_widths_are_refused(saved_dir):
    with pytest.raises(CheckpointError, match="7 user covariate columns but the saved model "
                                              "expects D_u=5"):
        load_model(saved_dir, user_features=7)
    saved = load_model(saved_dir)
    with pytest.raises(CheckpointError, match="expects D_i=5"):
        saved.schema.check(item_features=4)


def test_an_architecture_that_contradicts_the_arrays_is_refused(saved_dir):
    _edit_metadata(saved_dir, lambda m: m["model_config"].update(hidden=[16, 9]), reseal=True)
    with pytest.raises(CheckpointError, match=r"has shape \(8,\) .*needs \(9,\)"):
        load_model(saved_dir)


def test_a_config_that_does_not_describe_the_model_is_refused_before_writing(trained, tmp_path):
    with pytest.raises(ValueError, match="does not describe the model"):
        save_model(tmp_path / "m", trained[0], ModelConfig(hidden=(16,), embedding_dim=4))
    with pytest.raises(ValueError, match="does not describe the model"):
        save_model(tmp_path / "m", trained[0], CONFIG.replace(activation="relu"))
    assert not (tmp_path / "m").exists()


def test_non_finite_weights_are_refused_at_save(trained, tmp_path):
    model = init_model(CONFIG, trained[1].train, key=jax.random.key(3))
    kernel = model.user_tower.layers[0].kernel
    kernel[...] = kernel[...].at[0, 0].set(np.nan)
    with pytest.raises(ValueError, match="NaN or infinite"):
        save_model(tmp_path / "m", model, CONFIG)
    assert not (tmp_path / "m").exists()


def test_a_crash_mid_save_leaves_the_previous_model_intact(trained, tmp_path, monkeypatch):
    model, split = trained
    path = save_model(tmp_path / "m", model, CONFIG)
    before = _predict(load_model(path).model, split.test)
    other = init_model(CONFIG, split.train, key=jax.random.key(7))

    # A crash while the new payload is written ...
    def power_cut(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(folders, "_manifest", power_cut)
    with pytest.raises(KeyboardInterrupt):
        save_model(path, other, CONFIG)
    monkeypatch.undo()
    assert np.array_equal(_predict(load_model(path).model, split.test), before)

    # ... and at the commit itself, the rename of metadata.json.
    real_replace = os.replace

    def crash_on_metadata(src, dst):
        if str(dst).endswith("metadata.json"):
            raise KeyboardInterrupt("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(folders.os, "replace", crash_on_metadata)
    with pytest.raises(KeyboardInterrupt):
        save_model(path, other, CONFIG)
    monkeypatch.undo()
    assert np.array_equal(_predict(load_model(path).model, split.test), before)

    # The next save completes and removes what the interrupted ones left.
    save_model(path, other, CONFIG)
    assert np.array_equal(_predict(load_model(path).model, split.test), _predict(other, split.test))
    meta = json.loads((path / "metadata.json").read_text())
    assert sorted(os.listdir(path)) == ["metadata.json", meta["payload"]]


def test_an_unrelated_folder_is_never_written(trained, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(OutputPathError, match="not a ttm_jax save; refusing to write there"):
        save_model(tmp_path / "photos", trained[0], CONFIG)
    assert sorted(os.listdir(tmp_path / "photos")) == ["cat.jpg"]


@pytest.mark.parametrize("content", ['{"format": "other.tool"}', "not json", '{"name": "x"}'])
def test_another_tools_metadata_is_never_replaced(trained, tmp_path, content):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "metadata.json").write_text(content)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputPathError, match="refusing to write there"):
        save_model(folder, trained[0], CONFIG)
    assert (folder / "metadata.json").read_text() == content
    assert (folder / "notes.txt").read_text() == "mine"


def test_re_saving_keeps_the_files_a_user_put_beside_the_model(trained, tmp_path):
    path = save_model(tmp_path / "m", trained[0], CONFIG)
    (path / "recs.csv").write_text("user,rank,item\n")
    save_model(path, trained[0], CONFIG)
    assert (path / "recs.csv").read_text() == "user,rank,item\n"
    assert load_model(path).config == CONFIG


def test_saved_files_follow_the_umask(trained, tmp_path):
    old = os.umask(0o022)
    try:
        path = save_model(tmp_path / "m", trained[0], CONFIG)
    finally:
        os.umask(old)
    assert stat.S_IMODE((path / "metadata.json").stat().st_mode) == 0o644


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


_KILLED_RUN = """
import os, signal, sys
import jax
import ttm_jax.io.checkpoint as checkpoint
from ttm_jax import ModelConfig, TrainConfig, fit, init_model, make_synthetic, random_split

real_save, saves = checkpoint.save_tree, []

def save_then_die(folder, tree):
    records = real_save(folder, tree)
    saves.append(folder)
    if len(saves) == 2:  # the second save's payload is written, not yet committed
        os.kill(os.getpid(), signal.SIGKILL)
    return records

checkpoint.save_tree = save_then_die
data, _ = make_synthetic(80, 60, 2000, intrinsic_dim=3, ambient_dim=5, seed=0)
split = random_split(data, 0.2, 0.2, seed=0)
model = init_model(ModelConfig(hidden=(16, 8), embedding_dim=4), split.train,
                   key=jax.random.key(0))
fit(model, split.train, split.validation,
    TrainConfig(max_epochs=6, eval_every_epochs=1, batch_size=256), key=jax.random.key(1),
    progress=False, checkpoint_dir=sys.argv[1])
"""


def test_a_run_killed_mid_save_resumes_and_its_leftovers_are_removed(trained, tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import ttm_jax

    folder = tmp_path / "ckpt"
    env = dict(os.environ, PYTHONPATH=str(Path(ttm_jax.__file__).resolve().parents[1]))
    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(folder)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = [p for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers and any(p.is_dir() and any(p.rglob("*")) for p in leftovers)

    _, split = trained
    model = init_model(CONFIG, split.train, key=jax.random.key(0))
    config = TrainConfig(max_epochs=6, eval_every_epochs=1, batch_size=256)
    epochs_seen = []
    resumed = fit(model, split.train, split.validation, config, key=jax.random.key(1),
                  progress=False, checkpoint_dir=folder,
                  callbacks=[lambda report: epochs_seen.append(report.epoch)])
    assert epochs_seen[0] == 1  # from the first save, the last one committed
    whole = fit(model, split.train, split.validation, config, key=jax.random.key(1),
                progress=False)
    np.testing.assert_array_equal(resumed.history.epoch, whole.history.epoch)
    if jax.default_backend() == "cpu":
        np.testing.assert_array_equal(resumed.history.val_rmse, whole.history.val_rmse)
    meta = json.loads((folder / "metadata.json").read_text())
    assert sorted(os.listdir(folder)) == ["metadata.json", meta["payload"]]


def test_a_resume_that_would_change_the_result_is_refused(trained, tmp_path):
    _, split = trained
    model = init_model(CONFIG, split.train, key=jax.random.key(0))
    config = TrainConfig(max_epochs=4, eval_every_epochs=2, batch_size=256)
    folder = tmp_path / "ckpt"
    fit(model, split.train, split.validation, config, key=jax.random.key(1), progress=False,
        checkpoint_dir=folder)

    def again(model=model, train=split.train, config=config, key=None):
        return fit(model, train, split.validation, config,
                   key=jax.random.key(1) if key is None else key, progress=False,
                   checkpoint_dir=folder)

    with pytest.raises(ValueError, match="holds another run .*batch_size=256, this call 128"):
        again(config=config.replace(batch_size=128))
    with pytest.raises(ValueError, match="its minibatch keys differ"):
        again(key=jax.random.key(2))
    relu = init_model(CONFIG.replace(activation="relu"), split.train, key=jax.random.key(0))
    with pytest.raises(ValueError, match="its model architecture is .*silu.*relu"):
        again(model=relu)
    moved = split.train.user_features.copy()
    moved[0, 0] += 1.0
    from ttm_jax.data import RatingData

    other_tables = RatingData(moved, split.train.item_features, split.train.user_ids,
                              split.train.item_ids, split.train.ratings)
    with pytest.raises(ValueError, match="initial parameters|covariate tables"):
        again(train=other_tables)
    with pytest.raises(ValueError, match="already trained 4 epochs, more than max_epochs=2"):
        again(config=config.replace(max_epochs=2))
    # More epochs and more patience are a continuation, not another run.
    longer = again(config=config.replace(max_epochs=6, patience=100))
    assert longer.epochs_run == 6


def test_a_damaged_training_checkpoint_is_reported(trained, tmp_path):
    _, split = trained
    model = init_model(CONFIG, split.train, key=jax.random.key(0))
    config = TrainConfig(max_epochs=1, batch_size=256)
    fit(model, split.train, None, config, key=jax.random.key(1), progress=False,
        checkpoint_dir=tmp_path / "c")
    state = _payload_file(tmp_path / "c", "arrays")
    state.write_bytes(state.read_bytes()[:10])
    with pytest.raises(CheckpointError, match="truncated"):
        fit(model, split.train, None, config, key=jax.random.key(1), progress=False,
            checkpoint_dir=tmp_path / "c")


def test_a_checkpoint_folder_with_other_files_is_refused_before_training(trained, tmp_path):
    _, split = trained
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "data.csv").write_text("1,2\n")
    model = init_model(CONFIG, split.train, key=jax.random.key(0))
    with pytest.raises(OutputPathError, match="not a ttm_jax save"):
        fit(model, split.train, None, TrainConfig(max_epochs=1, batch_size=256),
            key=jax.random.key(1), progress=False, checkpoint_dir=tmp_path / "c")
    assert os.listdir(tmp_path / "c") == ["data.csv"]
