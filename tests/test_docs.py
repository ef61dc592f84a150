"""The code blocks of docs/index.md run as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import jax
import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "index.md"


def test_docs_index_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    # The docs show user code, which runs under JAX's default (standard) promotion.
    with jax.numpy_dtype_promotion("standard"):
        for k, block in enumerate(blocks):
            try:
                exec(compile(block, f"{DOC.name}[block {k}]", "exec"), namespace)
            except Exception as err:  # pragma: no cover - the message is the point
                pytest.fail(f"docs/index.md block {k} failed: {err!r}\n{block}")
    out = capsys.readouterr().out.splitlines()
    # The outputs the page quotes in its comments, as printed.
    assert "RatingData(n_users=4, D_u=3, n_items=5, D_i=5, |Ω|=4)" in out
    assert any(line.startswith("user_ids: id 9 at position 1 is out of range; user_features "
                               "has 4 rows") for line in out)
    assert "11200 2800 6000" in out
    assert any(re.fullmatch(r"Metrics\(rmse=[\d.]+, mae=[\d.]+, n=6000\)", line) for line in out)
    assert any(line.startswith("excess risk ") for line in out)
