"""benchmarks/movielens.py end to end on a small MovieLens-format folder the test writes: every
tuned column is tuned inside its split's training set, and its choice is reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

OCCUPATIONS = ("technician", "other", "writer", "student", "engineer")


def write_movielens_folder(folder: Path, n_users=80, n_items=60, per_user=25, seed=0) -> Path:
    """A MovieLens-100K-format folder whose ratings follow a rank-2 model plus noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    users = [f"{u}|{rng.integers(15, 70)}|{'MF'[u % 2]}|{OCCUPATIONS[u % 5]}|{10000 + u}"
             for u in range(1, n_users + 1)]
    items = []
    for i in range(1, n_items + 1):
        genres = "|".join(str(int(rng.random() < 0.2)) for _ in range(19))
        year = 1950 + i % 45
        items.append(f"{i}|Film {i} ({year})|01-Jan-{year}||http://x|{genres}")
    a, b = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    lines = []
    for u in range(n_users):
        for i in rng.choice(n_items, per_user, replace=False):
            r = int(np.clip(np.rint(3.5 + a[u] @ b[i] + 0.5 * rng.normal()), 1, 5))
            lines.append(f"{u + 1}\t{i + 1}\t{r}\t{881250949 + len(lines)}")
    (folder / "u.user").write_text("\n".join(users) + "\n", encoding="latin-1")
    (folder / "u.item").write_text("\n".join(items) + "\n", encoding="latin-1")
    (folder / "u.data").write_text("\n".join(lines) + "\n", encoding="latin-1")
    return folder


def test_the_benchmark_tunes_every_tuned_column_inside_its_split_and_reports_the_choice(
        tmp_path, load_benchmark, monkeypatch, capsys):
    pytest.importorskip("surprise")
    movielens, tune = load_benchmark("movielens"), load_benchmark("tune_movielens")
    # Smaller starting grids than the study's (each TTM point is a whole fit); the search
    # still widens them until the choice is interior.
    monkeypatch.setitem(tune.TTM_GRID, "id_penalty_weight", [3e-4])
    monkeypatch.setitem(tune.BASELINE_GRIDS, "svd", [{"n_factors": [5, 10], "reg_all": [0.1]},
                                                     {"lr_all": [0.01], "n_epochs": [20]}])
    data = write_movielens_folder(tmp_path / "ml")
    out, cache = tmp_path / "table.md", tmp_path / "cache"
    argv = ["--data", str(data), "--seeds", "1", "--folds", "0",
            "--methods", "ttm_tuned,ttm_hybrid,svd,svd_tuned", "--cache", str(cache),
            "--out", str(out), "--json", str(tmp_path / "figures.json")]
    movielens.main(argv)
    table = out.read_text()
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert len(figures["cold"]["ttm_tuned"]["cold_user"]) == 1 and figures["cv"] == {}
    assert "TTM (hybrid, tuned)" in table and "SVD (tuned)" in table
    # The choices, per split: TTM's penalty and SVD's rank, each interior or marked.
    row = next(line for line in table.splitlines() if line.startswith("| cold 0 |"))
    assert "penalty_weight" in row and "n_factors" in row
    # What was tuned never saw the test pairs: the tuning's own split is inside the training set.
    train, test = tune.split_of(movielens.read_movielens(data).data, "cold", 0)
    inner_train, inner_val = tune.inner_split(train, "cold", 0)
    assert inner_train.n_ratings + inner_val.n_ratings == train.n_ratings
    # Tuning entries are cached apart from the results, so a second run trains nothing.
    assert sorted(p.name for p in cache.glob("tune-cold0-*.json")) == [
        "tune-cold0-svd.json", "tune-cold0-ttm.json"]
    capsys.readouterr()
    for name in ("widening_search", "tune_baseline"):
        monkeypatch.setattr(tune, name, lambda *a, **k: pytest.fail("tuned again"))
    movielens.main(argv)
    assert " overall, " not in capsys.readouterr().out  # every result came from the cache


def test_the_top_k_column_is_tuned_for_ndcg_inside_each_fold_and_ranked(
        tmp_path, load_benchmark, monkeypatch):
    # Fixed one-point grids keep this to one fit per tuning: the test is of the wiring
    # (which penalties the top-k model starts from, how it is fitted and ranked), not
    # of the search, which tests/test_search.py covers.
    movielens, tune = load_benchmark("movielens"), load_benchmark("tune_movielens")
    monkeypatch.setattr(tune, "TTM_GRID", {"penalty_weight": [0.01], "id_penalty_weight": [1e-3]})
    monkeypatch.setattr(tune, "MNAR_GRID", [{"missing_weight": [0.2], "missing_rating": [1.0]},
                                            {"max_epochs": [30]}])
    data = write_movielens_folder(tmp_path / "ml")
    out, cache = tmp_path / "table.md", tmp_path / "cache"
    movielens.main(["--data", str(data), "--seeds", "0", "--folds", "5",
                    "--methods", "ttm_mnar", "--cache", str(cache), "--out", str(out),
                    "--json", str(tmp_path / "figures.json")])
    table = out.read_text()
    # The top-k model is a CV-only column: ranked against popularity on every fold.
    ranking = table[table.index("### Top-10 ranking"):].splitlines()
    rank_rows = [line for line in ranking
                 if line.startswith(("| TTM (hybrid, top-k) |", "| Popularity |"))]
    assert len(rank_rows) == 2 and all(line.count(" (0.") == 3 for line in rank_rows)
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert len(figures["ranking"]["ttm_mnar"]["ndcg"]) == 5 and figures["cold"] == {}
    choice = next(line for line in table.splitlines() if line.startswith("| cv 4 |"))
    for name in ("penalty_weight 0.01", "id_penalty_weight 0.001", "missing_weight 0.2",
                 "missing_rating 1", "max_epochs 30"):
        assert name in choice
    # Asked alone, the top-k tuning brings the RMSE tuning whose penalties it starts from
    # (both from the cache by now).
    train, _ = tune.split_of(movielens.read_movielens(data).data, "cv", 4)
    tuned = tune.tune_split(train, "cv", 4, movielens.ResultCache(cache), methods=("ttm_mnar",),
                            log=lambda *_: None)
    assert 0 < tuned["ttm_mnar"]["ndcg"] <= 1 and sorted(tuned) == ["ttm", "ttm_mnar"]
