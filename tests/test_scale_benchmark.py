"""benchmarks/scale.py runs end to end at a tiny size: both models train (the hybrid one
with row-wise id updates), top-k runs, and the figures land in the folder it is given."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCALE = Path(__file__).resolve().parents[1] / "benchmarks" / "scale.py"


def test_the_scale_benchmark_runs_at_a_tiny_size(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCALE), "--sizes", "2000", "--catalogues", "500", "--steps", "2",
         "--repeats", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((tmp_path / "scale.json").read_text())
    covariates, hybrid = out["train"]
    assert (covariates["model"], hybrid["model"]) == ("covariates", "hybrid")
    # Row-wise id updates read only the minibatch's rows, so the towers run per rating.
    assert hybrid["tower_mode"] == "rating"
    assert all(r["ns_per_rating"] > 0 and r["final_mse"] > 0 for r in out["train"])
    (topk,) = out["topk"]
    assert topk["n_items"] == 500 and topk["batch_ms_per_user"] > 0
    table = (tmp_path / "scale.md").read_text()
    assert "hybrid ÷ covariates" in table and "| 2,000 |" in table
