"""Test-wide settings: strict JAX promotion rules and a hypothesis profile.

Strict dtype promotion and ``jax_numpy_rank_promotion="raise"`` turn a rating
vector ``(B,)`` meeting a ``(B, 1)`` prediction into an error instead of a silent
``(B, B)`` broadcast. ``deadline=None`` because a first example pays for jit
compilation.

Compilations are shared through JAX's persistent compilation cache in a
temporary folder made for the run and removed after it: many tests compile the
same small programs, in several xdist workers and in the subprocesses some
tests start (which inherit the folder through the environment). A folder set
in ``JAX_COMPILATION_CACHE_DIR`` beforehand is used as it is and left alone.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

#: Compilations quicker than this are not worth a file in the cache.
_CACHE_MIN_COMPILE_SECONDS = "0.05"
#: The cache folder this run made (and so removes).
_OWN_CACHE = pytest.StashKey[str]()


def pytest_configure(config):
    # The controller (or a run without xdist) makes the folder before any worker
    # starts, so that workers and subprocesses inherit it through the environment.
    if hasattr(config, "workerinput"):
        return
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        folder = tempfile.mkdtemp(prefix="ttm-jax-test-compilations-")
        config.stash[_OWN_CACHE] = folder
        os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
    min_seconds = os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                                        _CACHE_MIN_COMPILE_SECONDS)
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_seconds))


def pytest_unconfigure(config):
    folder = config.stash.get(_OWN_CACHE, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)

settings.register_profile(
    "ttm",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.register_profile("ttm-thorough", parent=settings.get_profile("ttm"), max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ttm"))


def _movielens_dir() -> Path:
    env = os.environ.get("TTM_DATA_DIR")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "datasets"
    return base / "ml-100k"


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    """Folder with MovieLens-100K (``$TTM_DATA_DIR/ml-100k`` or ``../shared/datasets``)."""
    path = _movielens_dir()
    if not (path / "u.data").is_file():
        pytest.skip(
            f"MovieLens-100K not found at {path}; set TTM_DATA_DIR to the folder that holds ml-100k/"
        )
    return path


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark("table1")``: the module of ``benchmarks/table1.py``.

    The scripts import their neighbours as top-level modules (``tune_default``
    imports ``table1``), as they do when run from that folder."""
    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")

    def load(name: str):
        sys.path.insert(0, folder)
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(folder)

    return load
