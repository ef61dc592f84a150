"""What the benchmark scripts share: one result cache (and the search scores kept in it),
one statistics helper, the machine.

Each script imports this module as ``common`` (the scripts run from this folder,
which Python puts on ``sys.path``).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from pathlib import Path

import numpy as np

__all__ = ["ResultCache", "StoredScores", "machine", "mean_se", "provenance"]


class ResultCache:
    """One JSON file per result in ``folder``, so an interrupted benchmark resumes.

    An entry stored with a ``key`` (everything that determines the result:
    configuration, code path, data, seeds) is reused only while the key is the
    same, so a changed default can never reuse an old figure; the entry is
    recomputed and replaced otherwise. Writes are atomic (a temporary file
    renamed into place).
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def load(self, name: str, key: dict | None = None):
        """The cached result of ``name`` (``None`` if absent, or stored under another key)."""
        path = self.path(name)
        try:
            blob = json.loads(path.read_text())
        except (OSError, ValueError):  # absent, or cut short by a crash
            return None
        if key is None:
            return blob
        if not isinstance(blob, dict) or blob.get("key") != json.loads(json.dumps(key)):
            return None
        return blob["result"]

    def store(self, name: str, value, key: dict | None = None) -> None:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value if key is None else {"key": key, "result": value},
                                  indent=None if key is None else 1, default=str))
        tmp.replace(path)  # atomic: an interrupted run never leaves half a file

    def remove(self, name: str) -> None:
        """Delete the entry ``name`` (this cache's own file; nothing if absent)."""
        self.path(name).unlink(missing_ok=True)

    def get(self, name: str, compute: Callable[[], object], key: dict | None = None):
        """The cached result of ``name``, or ``compute()``'s, stored for next time."""
        value = self.load(name, key)
        if value is None:
            value = compute()
            self.store(name, value, key)
        return value


class StoredScores(MutableMapping):
    """A search's scores as they come, ``{point_key: score}``, kept in one entry of a
    :class:`ResultCache`: the ``memo`` that makes :func:`ttm_jax.search.widening_search`
    (and so :func:`ttm_jax.baselines.tune_baseline`) resume after an interruption.

    Every new score rewrites the entry at once (atomically, as the cache writes),
    so a search killed after an hour loses only the fit it was in. The entry is
    read under ``key``, the same key as the search's result, so scores stored under
    another (another protocol, grid, data or library version) are ignored and replaced.
    """

    def __init__(self, cache: ResultCache, name: str, key: dict):
        self._cache, self._name, self._key = cache, name, key
        stored = cache.load(name, key)
        self._scores = ({str(k): float(v) for k, v in stored.items()}
                        if isinstance(stored, dict) else {})

    def __getitem__(self, point: str) -> float:
        return self._scores[point]

    def __setitem__(self, point: str, score: float) -> None:
        self._scores[point] = float(score)
        self._cache.store(self._name, self._scores, self._key)

    def __delitem__(self, point: str) -> None:
        del self._scores[point]
        self._cache.store(self._name, self._scores, self._key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._scores)

    def __len__(self) -> int:
        return len(self._scores)


def mean_se(values: Iterable[float | None]) -> tuple[float, float]:
    """Mean and standard error (``sd / √n``, ``ddof=1``) of the values that are not ``None``;
    NaN for what cannot be computed (no value; one value has no standard error)."""
    xs = np.asarray([v for v in values if v is not None], np.float64)
    if xs.size == 0:
        return math.nan, math.nan
    se = float(xs.std(ddof=1) / math.sqrt(xs.size)) if xs.size > 1 else math.nan
    return float(xs.mean()), se


def machine() -> dict:
    """The machine a figure was measured on: CPU (and its model and vector extensions,
    where Linux says), cores, platform, JAX's first device."""
    import jax

    dev = jax.devices()[0]
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "platform": platform.platform(), "device": f"{dev.device_kind} ({dev.platform})"}
    # XLA compiles for the host's vector width, so two hosts of the same name can
    # round differently: record what tells them apart.
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text(errors="replace").splitlines()
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu_model"] = fields.get("model name", "")
        flags = set(fields.get("flags", "").split())
        info["vector_extensions"] = sorted(f for f in flags if f.startswith(("avx", "fma")))
    return info


def provenance(script: str, argv: list[str] | None) -> dict:
    """What a published report opens with: the command that made it, as a user types
    it (``python benchmarks/<script> <args>``; ``argv`` as ``main`` received it, or
    ``None`` for the process's own), today's date and :func:`machine`."""
    args = sys.argv[1:] if argv is None else argv
    return {"command": " ".join(["python", f"benchmarks/{Path(script).name}", *args]),
            "date": datetime.date.today().isoformat(), "machine": machine()}


def time_train_chunk(model, data, config, mode: str, steps: int, repeats: int) -> dict:
    """Time the library's jitted training chunk (``steps`` steps of one model per dispatch).

    Returns the first call's seconds (compilation included), every later call's
    seconds, the best of them (the least-disturbed repeat on a shared machine),
    and the last minibatch MSE (a check that the chunk trained).
    """
    import math
    import time

    import jax

    from ttm_jax.training import device_arrays, init_train_states, make_train_chunk

    spe = max(1, math.ceil(data.n_ratings / config.batch_size))
    graphdef, states = init_train_states([model], config, spe)
    chunk = make_train_chunk(graphdef, config, mode, spe, steps)
    tables, train = device_arrays(data)

    def run(seed):
        nonlocal states
        t0 = time.perf_counter()
        states, mse = chunk(states, tables, train, jax.random.key_data(jax.random.key(seed))[None])
        mse.block_until_ready()
        return time.perf_counter() - t0, mse

    first, _ = run(0)
    times = []
    for r in range(repeats):
        seconds, mse = run(r + 1)
        times.append(seconds)
    return {"first_s": first, "seconds_all": times, "seconds_best": min(times),
            "final_mse": float(mse[0, -1])}
