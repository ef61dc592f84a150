"""The command line never loses a user's file and never answers with a traceback: output
locations are checked before any work, resumes that would change the result are refused,
and every failure is one ``ttm_jax: error:`` line with exit status 2."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ttm_jax.cli import main

TINY = ("--hidden", "8", "--embedding-dim", "2", "--batch-size", "64", "--no-progress")


def run_cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def fit_args(folder: Path, model, *extra, users="users.csv", ratings="ratings.csv"):
    return ("fit", "--ratings", folder / ratings, "--user-features", folder / users,
            "--item-features", folder / "items.csv", "--model", model, *TINY, *extra)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small ratings and covariate files, a model fitted on them and its checkpoints."""
    folder = tmp_path_factory.mktemp("cli_safety")
    rng = np.random.default_rng(0)
    users = pd.DataFrame(rng.normal(size=(30, 3)), columns=["a", "b", "c"])
    users.insert(0, "user", [f"u{k}" for k in range(30)])
    items = pd.DataFrame(rng.normal(size=(20, 2)), columns=["d", "e"])
    items.insert(0, "item", [f"i{k}" for k in range(20)])
    pairs = rng.choice(600, 300, replace=False)
    ratings = pd.DataFrame({"user": [f"u{p // 20}" for p in pairs],
                            "item": [f"i{p % 20}" for p in pairs],
                            "rating": rng.integers(1, 6, 300)})
    users.to_csv(folder / "users.csv", index=False)
    items.to_csv(folder / "items.csv", index=False)
    ratings.to_csv(folder / "ratings.csv", index=False)
    code, _, err = run_cli(*fit_args(folder, folder / "model", "--epochs", "2",
                                     "--checkpoint-dir", folder / "ckpt"))
    assert code == 0, err
    return folder


def fails_cleanly(code: int, err: str, *named: str) -> None:
    assert code == 2, err
    assert err.startswith("ttm_jax: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for text in named:
        assert text in err, err


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("content", ['{"format": "other.tool"}', "not json", '{"name": "x"}'])
def test_fit_never_replaces_a_folder_holding_another_tools_metadata(files, tmp_path, content):
    results = tmp_path / "results"
    results.mkdir()
    (results / "metadata.json").write_text(content)
    (results / "notes.txt").write_text("mine")
    before = snapshot(results)
    # A ratings file that does not exist: the output folder is refused first.
    code, _, err = run_cli(*fit_args(files, results, ratings="missing.csv"))
    fails_cleanly(code, err, str(results), "refusing to write there")
    assert snapshot(results) == before


def test_refitting_into_a_model_folder_keeps_the_files_put_beside_it(files, tmp_path):
    model = tmp_path / "results"
    assert run_cli(*fit_args(files, model, "--epochs", "1"))[0] == 0
    code, _, err = run_cli("recommend", "--model", model, "--users", "u1", "--out",
                           model / "recs.csv")
    assert code == 0, err
    (model / "notes.txt").write_text("mine")
    user_files = {k: v for k, v in snapshot(model).items() if k in ("recs.csv", "notes.txt")}
    assert run_cli(*fit_args(files, model, "--epochs", "2"))[0] == 0
    assert {k: v for k, v in snapshot(model).items() if k in user_files} == user_files


def _in_the_way(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a_file").write_text("keep")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "data.csv").write_text("1,2\n")
    return {"file": tmp_path / "a_file", "under_file": tmp_path / "a_file" / "sub",
            "full": tmp_path / "full"}


@pytest.mark.parametrize("where, option, message", [
    ("file", "--model", "is a file, not a folder"),
    ("under_file", "--model", "is a file, so"),
    ("full", "--model", "is a non-empty folder"),
    ("file", "--checkpoint-dir", "is a file"),
    ("full", "--checkpoint-dir", "which the protocol did not write"),
])
def test_fit_checks_its_output_locations_before_reading_any_data(files, tmp_path, where, option,
                                                                   message):
    path = _in_the_way(tmp_path)[where]
    before = snapshot(tmp_path)
    model = path if option == "--model" else tmp_path / "new_model"
    extra = ("--checkpoint-dir", path) if option == "--checkpoint-dir" else ()
    code, _, err = run_cli(*fit_args(files, model, *extra, ratings="missing.csv"))
    fails_cleanly(code, err, message)
    assert snapshot(tmp_path) == before and not (tmp_path / "new_model").exists()


def test_fit_refuses_a_checkpoint_folder_inside_its_model_folder(files, tmp_path):
    code, _, err = run_cli(*fit_args(files, tmp_path / "m", "--checkpoint-dir",
                                     tmp_path / "m" / "ckpt"))
    fails_cleanly(code, err, "overlap")


@pytest.mark.parametrize("command, where, message", [
    ("recommend", "full", "is a folder; give a file path for the CSV"),
    ("recommend", "under_file", "is a file, so the path cannot be created"),
    ("embeddings", "file", "is a file; give a new folder"),
    ("embeddings", "full", "is not empty; choose a new folder"),
])
def test_serving_commands_check_their_output_before_loading_the_model(tmp_path, command, where,
                                                                      message):
    path = _in_the_way(tmp_path)[where]
    before = snapshot(tmp_path)
    extra = ("--users", "u1") if command == "recommend" else ()
    code, _, err = run_cli(command, "--model", tmp_path / "no_model", "--out", path, *extra)
    fails_cleanly(code, err, message)
    assert snapshot(tmp_path) == before


def test_recommend_never_writes_over_a_file_of_a_save(files):
    before = snapshot(files / "model")
    code, _, err = run_cli("recommend", "--model", files / "model", "--users", "u1", "--out",
                           files / "model" / "metadata.json")
    fails_cleanly(code, err, "belongs to a saved model or checkpoint")
    assert snapshot(files / "model") == before


def test_an_unwritable_location_is_a_message(files, tmp_path, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: (mode & os.W_OK == 0) and
                        real_access(p, mode))  # as a user without write permission
    for argv in [fit_args(files, tmp_path / "m", ratings="missing.csv"),
                 ("recommend", "--model", files / "model", "--users", "u1", "--out",
                  tmp_path / "recs.csv"),
                 ("embeddings", "--model", files / "model", "--out", tmp_path / "emb")]:
        fails_cleanly(*run_cli(*argv)[::2], "is not writable; choose a folder you can write to")
    assert os.listdir(tmp_path) == []


def test_a_permission_error_while_writing_is_a_message(files, tmp_path, monkeypatch):
    def denied(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))

    monkeypatch.setattr(os, "replace", denied)
    code, _, err = run_cli("recommend", "--model", files / "model", "--users", "u1", "--out",
                           tmp_path / "recs.csv")
    fails_cleanly(code, err, "recs.csv: Permission denied; check the path and its permissions")
    assert os.listdir(tmp_path) == []  # no temporary file left


def test_written_files_follow_the_umask_and_a_replaced_file_keeps_its_mode(files, tmp_path):
    old = os.umask(0o027)
    try:
        recs = tmp_path / "recs.csv"
        assert run_cli("recommend", "--model", files / "model", "--users", "u1", "--out",
                       recs)[0] == 0
        assert stat.S_IMODE(recs.stat().st_mode) == 0o640
        os.chmod(recs, 0o604)
        assert run_cli("recommend", "--model", files / "model", "--users", "u2", "--out",
                       recs)[0] == 0
        assert stat.S_IMODE(recs.stat().st_mode) == 0o604 and "u2," in recs.read_text()
        assert run_cli("embeddings", "--model", files / "model", "--out", tmp_path / "emb")[0] == 0
        assert stat.S_IMODE((tmp_path / "emb").stat().st_mode) == 0o750
        assert stat.S_IMODE((tmp_path / "emb" / "user_ids.npy").stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_a_failed_embeddings_export_leaves_nothing_behind(files, tmp_path, monkeypatch):
    real_save, calls = np.save, []

    def disk_full(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_save(path, *args, **kwargs)

    monkeypatch.setattr(np, "save", disk_full)
    code, _, err = run_cli("embeddings", "--model", files / "model", "--out",
                           tmp_path / "new" / "emb")
    fails_cleanly(code, err, "No space left on device")
    assert len(calls) == 3 and os.listdir(tmp_path) == []


@pytest.mark.parametrize("option, value, message", [
    ("--validation-fraction", "-0.5", "--validation-fraction=-0.5 must be in [0, 1)"),
    ("--validation-fraction", "nan", "--validation-fraction=nan must be a finite number"),
    ("--validation-fraction", "1", "--validation-fraction=1.0 must be in [0, 1)"),
    ("--epochs", "0", "--epochs: max_epochs=0 must be an integer >= 1"),
    ("--hidden", "8,0", "--hidden: hidden[1]=0 must be an integer >= 1"),
    ("--learning-rate", "-1", "--learning-rate: learning_rate=-1.0 must be > 0"),
    ("--seed", "-3", "--seed=-3 must be an integer >= 0"),
    ("--seed", "4294967296", "--seed=4294967296 must be an integer <= 4294967295"),
])
def test_a_bad_option_is_named_not_ignored(files, tmp_path, option, value, message):
    code, _, err = run_cli(*fit_args(files, tmp_path / "m", option, value))
    fails_cleanly(code, err, message)
    assert not (tmp_path / "m").exists()


def test_a_learning_rate_below_the_decay_floor_is_used_as_given(files, tmp_path):
    code, _, err = run_cli(*fit_args(files, tmp_path / "m", "--epochs", "1",
                                     "--learning-rate", "1e-5"))
    assert code == 0, err
    meta = json.loads((tmp_path / "m" / "metadata.json").read_text())
    saved = meta["user_metadata"]["train_config"]
    assert saved["learning_rate"] == saved["min_learning_rate"] == 1e-5


def _changed_users(files: Path) -> str:
    users = pd.read_csv(files / "users.csv")
    users.loc[3, "b"] += 0.5
    users.to_csv(files / "users_changed.csv", index=False)
    return "users_changed.csv"


@pytest.mark.parametrize("change, message", [
    (("--activation", "relu"), "its model architecture is"),
    (("--hidden", "8,8"), "its model architecture is"),
    (("--epochs", "1"), "already trained 2 epochs, more than max_epochs=1"),
    ((), "its covariate tables differ"),
    (("--batch-size", "32"), "train_config.batch_size=64, this call 32"),
], ids=["activation", "hidden", "fewer-epochs", "covariates", "batch-size"])
def test_a_resume_that_would_change_the_result_is_refused_by_the_command_line(
        files, tmp_path, change, message):
    users = "users.csv" if change else _changed_users(files)
    argv = list(fit_args(files, tmp_path / "m", "--epochs", "2", "--checkpoint-dir",
                         files / "ckpt", users=users))
    for k in range(0, len(change), 2):  # the later option wins in argparse
        argv += [change[k], change[k + 1]]
    before = snapshot(files / "ckpt")
    code, _, err = run_cli(*argv)
    fails_cleanly(code, err, "holds", message)
    assert snapshot(files / "ckpt") == before and not (tmp_path / "m").exists()


def test_the_same_command_resumes(files, tmp_path):
    code, _, err = run_cli(*fit_args(files, tmp_path / "m", "--epochs", "2", "--checkpoint-dir",
                                     files / "ckpt"))
    assert code == 0, err


def _reseal(folder: Path, edit) -> None:
    path = folder / "metadata.json"
    meta = json.loads(path.read_text())
    edit(meta)
    body = {k: v for k, v in meta.items() if k != "checksum"}
    meta["checksum"] = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["user_metadata"].pop("columns"), "not written by `ttm_jax fit`"),
    (lambda m: m["user_metadata"]["columns"].pop("item"), "not written by `ttm_jax fit`"),
    (lambda m: m.pop("user_metadata"), "is not a valid saved model's metadata"),
    (lambda m: m["text_arrays"].pop("user_ids"), "not written by `ttm_jax fit`"),
    (lambda m: m["model_config"].update(activation="relu"), None),  # obeyed only if resealed
])
def test_a_resealed_model_folder_is_refused_by_every_command(files, tmp_path, edit, message):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(files / "model", model)
    _reseal(model, edit)
    for argv in [("recommend", "--model", model, "--users", "u1"),
                 ("evaluate", "--model", model, "--ratings", files / "ratings.csv"),
                 ("embeddings", "--model", model, "--out", tmp_path / "emb")]:
        code, _, err = run_cli(*argv)
        if message is None:  # a consistent forgery is a valid model: no traceback either
            assert code == 0, err
        else:
            fails_cleanly(code, err, str(model), message)


@pytest.mark.parametrize("cell, message", [
    ("nan", "value 'nan' is not a number"),
    ("", "the value is empty"),
    ("inf", "value 'inf' is not finite"),
])
def test_covariates_of_new_users_that_are_not_numbers_are_refused(files, tmp_path, cell, message):
    (tmp_path / "new.csv").write_text(f"user,a,b,c\nnewcomer,0.1,0.2,0.3\nvisitor,0.4,{cell},0\n")
    code, out, err = run_cli("recommend", "--model", files / "model", "--user-features",
                             tmp_path / "new.csv")
    fails_cleanly(code, err, "new.csv: column 'b', row 1 (line 3)", message)
    assert out == ""


def test_one_absurd_rating_is_named_by_its_line_not_answered_with_a_step_size(files, tmp_path):
    path = _with_rating(files, tmp_path, 17, 1e30)
    code, _, err = run_cli("fit", "--ratings", path, "--user-features",
                           files / "users.csv", "--item-features", files / "items.csv",
                           "--model", tmp_path / "m", *TINY)
    fails_cleanly(code, err, "ratings.csv: column 'rating', row 17 (line 19): value 1e+30 is "
                             "larger than 1e+18", "data error")
    assert "learning_rate" not in err


def _with_rating(files: Path, tmp_path: Path, row: int, value: float) -> Path:
    ratings = pd.read_csv(files / "ratings.csv", dtype={"rating": float})
    ratings.loc[row, "rating"] = value
    ratings.to_csv(tmp_path / "ratings.csv", index=False)
    return tmp_path / "ratings.csv"


def test_an_outlying_rating_is_pointed_at_before_training(files, tmp_path):
    path = _with_rating(files, tmp_path, 17, 1e15)
    code, _, err = run_cli("fit", "--ratings", path, "--user-features", files / "users.csv",
                           "--item-features", files / "items.csv", "--model", tmp_path / "m",
                           "--epochs", "1", *TINY)
    assert code == 0, err
    assert err.startswith("ttm_jax: warning: the rating 1e+15 at ")
    assert "ratings.csv, row 17 (line 19) is far outside the others" in err


def test_a_divergence_points_at_the_outlying_rating_s_line(files, tmp_path, monkeypatch):
    import ttm_jax.protocols
    from ttm_jax import TrainingDivergedError

    def diverges(*args, **kwargs):
        raise TrainingDivergedError("training loss became non-finite by epoch 1", None)

    monkeypatch.setattr(ttm_jax.protocols, "holdout_then_refit", diverges)
    path = _with_rating(files, tmp_path, 5, 1e12)
    code, _, err = run_cli("fit", "--ratings", path, "--user-features", files / "users.csv",
                           "--item-features", files / "items.csv", "--model", tmp_path / "m",
                           *TINY)
    assert code == 1
    assert ("ttm_jax: error: training diverged, and the rating 1e+12 at " in err
            and "row 5 (line 7) is far outside the others" in err and "nothing was saved" in err)
    assert not (tmp_path / "m").exists()


def test_ids_spelled_na_and_none_are_ids(files, tmp_path):
    for name in ("users.csv", "items.csv"):
        text = (files / name).read_text()
        (tmp_path / name).write_text(text.replace("u0,", "NA,").replace("i0,", "None,"))
    text = (files / "ratings.csv").read_text()
    (tmp_path / "ratings.csv").write_text(text.replace("u0,", "NA,").replace(",i0,", ",None,"))
    code, _, err = run_cli(*fit_args(tmp_path, tmp_path / "m", "--epochs", "1"))
    assert code == 0, err
    code, out, err = run_cli("recommend", "--model", tmp_path / "m", "--users", "NA", "-k", "20",
                             "--include-seen")
    assert code == 0, err
    assert "NA,1," in out and ",None," in out
