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


def test_the_readme_hybrid_example_fits_the_movielens_preset(movielens_dir, monkeypatch):
    section = README.read_text().split("**The hybrid model**", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    assert "../shared/datasets/ml-100k" in code
    # The README reads the data where the repository's checkout finds it.
    code = code.replace("../shared/datasets/ml-100k", str(movielens_dir))
    namespace = {}
    with jax.numpy_dtype_promotion("standard"):
        exec(compile(code, "README.md", "exec"), namespace)
    reg = namespace["reg"]
    assert reg.model_.user_tower.n_ids == 943 and reg.model_.item_tower.n_ids == 1682
    assert reg.refit_result_ is not None  # held out, early-stopped, then refitted on all
