"""The command line: docs/cli.md's walk-through runs as written, and bad files fail
with the file, column and row, before anything is written."""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ttm_jax import load_model
from ttm_jax.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
README = Path(__file__).resolve().parents[1] / "README.md"


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def doc_steps(text: str):
    """The code blocks of ``text`` in order: ("python", source) or ("cli", argv)."""
    for lang, body in re.findall(r"```(python|bash)\n(.*?)```", text, flags=re.S):
        if lang == "python":
            yield "python", body
            continue
        for command in body.replace("\\\n", " ").splitlines():
            words = shlex.split(command)
            assert words[:3] == ["python", "-m", "ttm_jax"], command
            yield "cli", words[3:]


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory):
    return run_walkthrough(DOC.read_text(), tmp_path_factory.mktemp("walkthrough"))


def run_walkthrough(text: str, folder: Path):
    logs = []
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        for kind, step in doc_steps(text):
            if kind == "python":
                exec(compile(step, "docs/cli.md", "exec"), {})
            else:
                code, out, err = run_cli(*step)
                assert code == 0, f"{step}: {err}"
                logs.append((step[0], out, err))
    finally:
        os.chdir(cwd)
    return folder, logs


def test_the_readme_command_line_section_runs(tmp_path):
    section = README.read_text().split("## Command line", 1)[1].split("\n## ", 1)[0]
    _, logs = run_walkthrough(section, tmp_path)
    assert [c for c, _, _ in logs] == ["fit", "evaluate", "recommend"]
    assert "overall" in logs[1][1]
    recs = pd.read_csv(tmp_path / "recs.csv")
    assert list(recs.columns) == ["user", "rank", "item", "score"] and len(recs) == 6


def test_the_documented_walkthrough_runs(walkthrough):
    folder, logs = walkthrough
    commands = [c for c, _, _ in logs]
    assert commands == ["fit", "evaluate", "recommend", "recommend", "embeddings"]
    fit_out, fit_err = logs[0][1], logs[0][2]
    assert "fitted on 5000 ratings (200 users, 150 items)" in fit_out
    # Progress, as lines (stderr is not a terminal here): the early-stopped fit, then the refit.
    assert "fit: done 30/30" in fit_err and "val RMSE" in fit_err and "refit: done" in fit_err
    assert re.search(r"overall\s+1000\s+0\.\d+", logs[1][1])

    saved = load_model(folder / "model")
    assert saved.schema.user_columns == tuple(f"x{j}" for j in range(6))
    assert saved.arrays["user_ids"][0] == "u0"

    recs = pd.read_csv(folder / "recs.csv", dtype={"user": str, "item": str})
    assert list(recs.columns) == ["user", "rank", "item", "score"]
    assert recs.groupby("user")["rank"].apply(list).to_dict() == {"u0": [1, 2, 3],
                                                                  "u1": [1, 2, 3]}
    assert (np.diff(recs.score.to_numpy().reshape(2, 3), axis=1) <= 0).all()
    rated = pd.read_csv(folder / "ratings.csv")
    seen = set(zip(rated.user, rated.item))
    assert not any((u, i) in seen for u, i in zip(recs.user, recs.item))

    new = pd.read_csv(folder / "new.csv")
    assert sorted(set(new.user)) == ["newcomer", "visitor"] and len(new) == 6

    emb = np.load(folder / "embeddings" / "item_embeddings.npy", allow_pickle=False)
    assert emb.shape == (150, 30)


def test_fit_refits_on_all_ratings_unless_told_not_to(walkthrough, tmp_path):
    folder, _ = walkthrough
    saved = load_model(folder / "model")
    fit_summary = saved.metadata["user_metadata"]["fit"]
    # The default warm refit: 5% of the kept epochs on all the ratings.
    assert fit_summary["refit_epochs"] == math.ceil(0.05 * fit_summary["best_epoch"]) == 2
    code, out, err = run_cli("fit", "--ratings", str(folder / "ratings.csv"),
                             "--user-features", str(folder / "users.csv"),
                             "--item-features", str(folder / "items.parquet"),
                             "--model", str(tmp_path / "m"), "--hidden", "32,32",
                             "--epochs", "30", "--refit", "none", "--no-progress")
    assert code == 0, err
    assert "refitted" not in out
    early = load_model(tmp_path / "m")
    assert early.metadata["user_metadata"]["fit"]["refit_epochs"] is None
    x_u, x_i = np.zeros((1, 6), np.float32), np.zeros((1, 6), np.float32)
    assert not np.array_equal(np.asarray(early.model(x_u, x_i)),
                              np.asarray(saved.model(x_u, x_i)))


def test_the_hybrid_model_from_the_command_line(walkthrough, tmp_path):
    folder, _ = walkthrough
    files = ["--ratings", str(folder / "ratings.csv"), "--user-features",
             str(folder / "users.csv"), "--item-features", str(folder / "items.parquet")]
    code, out, err = run_cli("fit", *files, "--model", str(tmp_path / "m"), "--hidden", "16",
                             "--epochs", "10", "--user-ids", "--item-ids",
                             "--user-id-dropout", "0.2", "--id-penalty-weight", "1e-4",
                             "--id-updates", "rows", "--id-optimizer", "rowwise_adagrad",
                             "--missing-weight", "0.01", "--missing-rating", "1",
                             "--no-progress")
    assert code == 0, err
    assert "id tables: user ids and item ids" in out
    saved = load_model(tmp_path / "m")
    assert saved.model.user_tower.n_ids == 200 and saved.model.item_tower.n_ids == 150
    # Dropout trained the unknown row, which new users read.
    assert np.abs(np.asarray(saved.model.user_tower.id_table[...][-1])).max() > 0
    code, out, err = run_cli("evaluate", "--model", str(tmp_path / "m"), "--ratings",
                             str(folder / "test.csv"))
    assert code == 0 and "overall" in out, err
    for who in (["--users", "u0", "u1"], ["--user-features", str(folder / "new_users.csv")]):
        out_file = tmp_path / f"recs{len(who)}.csv"
        code, _, err = run_cli("recommend", "--model", str(tmp_path / "m"), *who, "-k", "3",
                               "--out", str(out_file))
        assert code == 0, err
        assert len(pd.read_csv(out_file)) == 6
    code, _, err = run_cli("embeddings", "--model", str(tmp_path / "m"), "--out",
                           str(tmp_path / "emb"))
    assert code == 0, err
    # A bad id option is named before anything is read or written.
    code, _, err = run_cli("fit", *files, "--model", str(tmp_path / "bad"), "--user-ids",
                           "--user-id-dropout", "1.5")
    assert code != 0 and "--user-id-dropout" in err and not (tmp_path / "bad").exists()
    code, _, err = run_cli("fit", *files, "--model", str(tmp_path / "bad"),
                           "--missing-weight", "-1")
    assert code != 0 and "--missing-weight" in err and not (tmp_path / "bad").exists()


def test_fit_ensemble_saves_the_mean_of_its_seeds_fits(walkthrough, tmp_path):
    folder, _ = walkthrough
    files = ["--ratings", str(folder / "ratings.csv"), "--user-features",
             str(folder / "users.csv"), "--item-features", str(folder / "items.parquet"),
             "--hidden", "8", "--embedding-dim", "4", "--epochs", "6", "--no-progress"]
    code, out, err = run_cli("fit", *files, "--model", str(tmp_path / "mean"), "--seed", "4",
                             "--ensemble", "3", "--checkpoint-dir", str(tmp_path / "ckpt"))
    assert code == 0, err
    assert "saved the mean of 3 fits (seeds 4 .. 6" in out
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "member-0", "member-1", "member-2"]
    alone = []
    for seed in (4, 5, 6):
        code, _, err = run_cli("fit", *files, "--model", str(tmp_path / f"m{seed}"),
                               "--seed", str(seed))
        assert code == 0, err
        alone.append(load_model(tmp_path / f"m{seed}").model)
    mean = load_model(tmp_path / "mean")
    assert mean.config.hidden == (24,) and mean.config.embedding_dim == 12
    assert mean.metadata["user_metadata"]["fit"]["ensemble"] == 3
    rng = np.random.default_rng(0)
    x_u, x_i = rng.normal(size=(5, 6)).astype(np.float32), rng.normal(size=(5, 6)).astype(
        np.float32)
    expected = np.mean([np.asarray(m(x_u, x_i)) for m in alone], axis=0)
    np.testing.assert_allclose(np.asarray(mean.model(x_u, x_i)), expected, rtol=1e-5, atol=1e-5)
    # A checkpoint folder holding anything else, or a bad K, is refused before any work.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, _, err = run_cli("fit", *files, "--model", str(tmp_path / "bad"), "--ensemble", "2",
                           "--checkpoint-dir", str(tmp_path / "other"))
    assert code != 0 and "notes.txt" in err and not (tmp_path / "bad").exists()
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    for bad in ("0", "2000"):
        code, _, err = run_cli("fit", *files, "--model", str(tmp_path / "bad"), "--ensemble", bad)
        assert code != 0 and "--ensemble" in err and not (tmp_path / "bad").exists()


def test_every_command_has_help():
    for command in ("fit", "evaluate", "recommend", "embeddings"):
        with pytest.raises(SystemExit) as info:
            run_cli(command, "--help")
        assert info.value.code == 0
    proc = subprocess.run([sys.executable, "-m", "ttm_jax", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0
    assert all(c in proc.stdout for c in ("fit", "evaluate", "recommend"))


def _bad_copy(walkthrough, tmp_path, name, edit):
    folder, _ = walkthrough
    for f in ("ratings.csv", "users.csv", "items.parquet"):
        shutil.copy(folder / f, tmp_path / f)
    path = tmp_path / name
    frame = pd.read_csv(path, dtype=str) if name.endswith(".csv") else pd.read_parquet(path)
    edit(frame).to_csv(path, index=False) if name.endswith(".csv") else edit(frame).to_parquet(
        path, index=False)


def _append_copy(frame, col, new_id):
    extra = frame.iloc[[0]].copy()
    extra[col] = new_id
    return pd.concat([frame, extra], ignore_index=True)


def _set(frame, row, col, value):
    frame.loc[row, col] = value
    return frame


@pytest.mark.parametrize(
    "name, edit, message",
    [
        ("ratings.csv", lambda f: f.rename(columns={"rating": "stars"}),
         r"ratings.csv: missing column 'rating' .* the file has columns \['user', 'item', "
         r"'stars'\]"),
        ("ratings.csv", lambda f: _set(f, 3, "rating", "five"),
         r"ratings.csv: column 'rating', row 3 \(line 5\): value 'five' is not a number"),
        ("ratings.csv", lambda f: _set(f, 4, "rating", None),
         r"ratings.csv: column 'rating', row 4 \(line 6\): the value is empty"),
        ("ratings.csv", lambda f: pd.concat([f.iloc[:8], f.iloc[[2]], f.iloc[8:]]),
         r"ratings.csv: columns 'user', 'item', row 8 \(line 10\): the pair \(u\d+, i\d+\) "
         r"already occurs at row 2 \(line 4\)"),
        ("ratings.csv", lambda f: _set(f, 6, "user", "u999"),
         r"ratings.csv: column 'user', row 6 \(line 8\): id 'u999' is unknown: it has no row "
         r"in .*users.csv"),
        ("users.csv", lambda f: _append_copy(f, "user", "u-ghost"),
         r"users.csv: column 'user', row 200 \(line 202\): id 'u-ghost' is unknown: no rating "
         r"in .*ratings.csv refers to it"),
        ("items.parquet", lambda f: _append_copy(f, "item", "i-ghost"),
         r"items.parquet: column 'item', row 150: id 'i-ghost' is unknown"),
        ("users.csv", lambda f: _set(f, 9, "user", "u3"),
         r"users.csv: column 'user', row 9 \(line 11\): id 'u3' already occurs at row 3"),
        ("users.csv", lambda f: _set(f, 2, "x4", "tall"),
         r"users.csv: column 'x4', row 2 \(line 4\): value 'tall' is not a number"),
    ],
    ids=["missing-column", "non-numeric-rating", "empty-rating", "duplicate-pair",
         "id-without-covariates", "unknown-user-in-covariates", "unknown-item-in-parquet",
         "duplicate-covariate-id", "non-numeric-covariate"],
)
def test_bad_files_are_named_and_nothing_is_written(walkthrough, tmp_path, name, edit, message):
    _bad_copy(walkthrough, tmp_path, name, edit)
    code, out, err = run_cli(
        "fit", "--ratings", str(tmp_path / "ratings.csv"),
        "--user-features", str(tmp_path / "users.csv"),
        "--item-features", str(tmp_path / "items.parquet"),
        "--model", str(tmp_path / "out" / "model"), "--no-progress")
    assert code == 2
    assert err.startswith("ttm_jax: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_recommend_for_an_unknown_user_fails_without_writing(walkthrough, tmp_path):
    folder, _ = walkthrough
    code, _, err = run_cli("recommend", "--model", str(folder / "model"), "--users", "u0",
                           "nobody", "--out", str(tmp_path / "r.csv"))
    assert code == 2 and "user 'nobody' (position 1) is unknown" in err
    assert not (tmp_path / "r.csv").exists()


def test_a_model_from_other_covariates_is_refused(walkthrough, tmp_path):
    folder, _ = walkthrough
    users = pd.read_csv(folder / "users.csv").drop(columns=["x5"])
    users.to_csv(tmp_path / "narrow.csv", index=False)
    code, _, err = run_cli("evaluate", "--model", str(folder / "model"), "--ratings",
                           str(folder / "test.csv"), "--user-features", str(tmp_path / "narrow.csv"))
    assert code == 2
    assert "narrow.csv: missing column 'x5' (a covariate column the model was trained with)" in err


def test_fit_defaults_are_the_librarys_and_help_shows_them(capsys):
    from ttm_jax.cli import build_parser
    from ttm_jax.config import ACTIVATION_NAMES, ModelConfig, TrainConfig

    args = build_parser().parse_args(["fit", "--ratings", "r.csv", "--user-features", "u.csv",
                                      "--item-features", "i.csv", "--model", "m"])
    tc, mc = TrainConfig(), ModelConfig()
    assert (args.epochs, args.eval_every, args.patience) == (
        tc.max_epochs, tc.eval_every_epochs, tc.patience)
    assert (args.batch_size, args.learning_rate, args.penalty_weight) == (
        tc.batch_size, tc.learning_rate, tc.penalty_weight)
    assert (args.hidden, args.embedding_dim, args.activation) == (
        mc.hidden, mc.embedding_dim, mc.activation)
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = capsys.readouterr().out
    options = text[text.index("options:"):]
    for flag in ("--epochs", "--eval-every", "--patience", "--max-seconds", "--batch-size"):
        line = options[options.index(flag):].split("\n  -")[0]
        assert "default:" in line, flag
    assert "{" + ",".join(ACTIVATION_NAMES) + "}" in text


def test_version_is_the_installed_ones(capsys):
    import importlib.metadata

    import ttm_jax

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"ttm_jax {importlib.metadata.version('ttm_jax')}"
    assert ttm_jax.__version__ == importlib.metadata.version("ttm_jax")


def shown_outputs(text: str):
    """``(commands run so far, shown output)`` for each plain block after a bash block."""
    seen, previous = 0, None
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S):
        if lang == "bash":
            seen += len([c for c in body.replace("\\\n", " ").splitlines() if c.strip()])
        elif lang == "" and previous == "bash":
            yield seen, body
        previous = lang


def printed_output(block: str, n_commands: int, folder: Path, logs) -> list[str]:
    """The lines that the walkthrough printed where docs/cli.md shows ``block``: the
    recommendations file for a CSV block, else the last command's output, its
    temporary folder written ``/…``."""
    if block.split("\n", 1)[0] == "user,rank,item,score":
        return (folder / "recs.csv").read_text().rstrip("\n").split("\n")
    return logs[n_commands - 1][1].replace(str(folder.resolve()), "/…").rstrip("\n").split("\n")


def test_the_documented_outputs_are_what_the_commands_print(walkthrough):
    # Every example output in docs/cli.md is produced by running it: a changed default or
    # message that is not carried into the docs fails here (paste the "printed" text).
    folder, logs = walkthrough
    shown = list(shown_outputs(DOC.read_text()))
    assert len(shown) >= 3
    for n_commands, block in shown:
        lines = block.rstrip("\n").split("\n")
        printed = printed_output(block, n_commands, folder, logs)
        if "…" in lines:  # the rest is elided in the docs
            cut = lines.index("…")
            lines, printed = lines[:cut], printed[:cut]
        assert lines == printed, (
            "docs/cli.md shows:\n" + block + "\nbut it printed:\n" + "\n".join(printed)
            + "\n(after a deliberate change: python tests/regenerate_cli_doc.py)")
