"""The README as a new user meets it: its library example runs as written and prints what it says.

The example trains the default model on the paper's synthetic study (minutes on
two cores), so it is marked slow: ``python -m pytest -m slow`` runs it; CI does not.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import jax
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _library_example() -> str:
    section = README.read_text().split("## Using the library", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_the_library_example_prints_what_a_comment_promises():
    # Cheap, in CI: the promise is there to be checked by the slow test below.
    assert re.search(r"rmse≈(\d\.\d+)", _library_example())


@pytest.mark.slow
def test_the_readme_library_example_runs_as_written_and_prints_its_rmse():
    code = _library_example()
    promised = float(re.search(r"rmse≈(\d\.\d+)", code).group(1))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), jax.numpy_dtype_promotion("standard"):
        exec(compile(code, "README.md", "exec"), {})
    printed = float(re.search(r"rmse=(\d\.\d+)", out.getvalue()).group(1))
    digits = len(str(promised).split(".")[1])
    assert round(printed, digits) == promised, out.getvalue()
    assert "(5, 30)" in out.getvalue()  # the embeddings of five new users
