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
    out = capsys.readouterr().out
    assert "RatingData(n_users=4" in out and "out of range" in out
    assert "excess risk" in out
