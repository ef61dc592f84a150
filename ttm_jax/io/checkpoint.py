"""Training checkpoints: the training loop's state in a folder, and exact resumption.

:func:`ttm_jax.training.engine.train` (and so every fit: ``fit``, replications,
the λ grid) saves its :class:`~ttm_jax.training.engine.LoopState` (the batched
training state, every member's best parameters, the early-stopping vectors,
the history) to ``checkpoint_dir`` every few checks, through the atomic folder
protocol of :mod:`ttm_jax.io.folders` with arrays written by orbax-checkpoint.
An interrupted run (``kill -9`` included) resumes from its last save with the
result an uninterrupted run would give.

The folder also holds the run's *fingerprint*: the library version, the
model's architecture, digests of the initial parameters, covariate tables,
training and validation ratings and keys, and every training setting except
the budget. Resuming with anything else different is refused with a message
that names the difference, rather than silently mixing two runs;
``max_epochs`` (never below the epochs already trained), ``max_seconds`` and
``patience`` may change, so a run can be continued for longer.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ttm_jax import checks
from ttm_jax.io.folders import CheckpointError, check_writable, commit, read
from ttm_jax.io.trees import digest, restore_tree, save_tree

__all__ = ["RESUMABLE_CHANGES", "TRAINING_FORMAT", "TrainingCheckpoint", "digest"]

TRAINING_FORMAT = "ttm_jax.training"

#: Settings that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = ("max_epochs", "max_seconds", "patience")

_HOST_FIELDS = ("rows", "epochs_run", "epochs", "train_mse", "val_rmse", "learning_rate")
_STOPPING_FIELDS = ("best_rmse", "best_epoch", "since_best", "active", "diverged",
                    "diverged_epoch")


def _describe_difference(saved: dict, now: dict) -> str:
    labels = {"model": "model architecture", "initial_state": "initial parameters (model "
              "configuration, initialisation key or standardisation)",
              "covariates": "covariate tables", "train": "training ratings",
              "validation": "validation ratings", "keys": "minibatch keys",
              "library_version": "ttm_jax version", "members": "number of members"}
    # Causes before consequences: other covariates also change the initial
    # parameters (through the standardisation), more members change the keys;
    # the cause is the difference to name.
    first = ("library_version", "model", "train_config", "members", "covariates", "train",
             "validation", "keys")
    for key in (*first, *(k for k in now if k not in first)):
        if key not in now:
            continue
        a, b = saved.get(key), now[key]
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict) and key != "model":
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    return f"it has {key}.{k}={a.get(k)!r}, this call {b.get(k)!r}"
        if key == "model":
            return f"its model architecture is {a}, this call's {b}"
        return f"its {labels.get(key, key)} differ from this call's" if key in (
            "covariates", "train", "validation", "keys") else (
            f"its {labels.get(key, key)} differs from this call's ({a!r} vs {b!r})"
            if key in ("library_version", "members", "tower_mode", "shared_data")
            else f"its {labels.get(key, key)} differ from this call's")
    return "its fingerprint differs"


class TrainingCheckpoint:
    """Periodic checkpoints of one training run in a folder, and its resumption.

    ``train(..., checkpoint_dir=d)`` builds one; you rarely need it directly.

    Args:
      path: the checkpoint folder: new, empty, or holding a checkpoint of this run.
      fingerprint: what identifies the run (JSON-serialisable).
      every: save after every ``every``-th check (and whenever the run stops).

    Raises:
      ttm_jax.io.OutputPathError: ``path`` holds files the library did not write.
    """

    def __init__(self, path: str | os.PathLike, *, fingerprint: dict, every: int):
        self.path = check_writable(path, TRAINING_FORMAT)
        self.every = checks.integer("checkpoint_every", every, low=1)
        self.fingerprint = fingerprint

    def restore(self, template):
        """The saved ``LoopState`` (``None`` when the folder holds no checkpoint yet).

        Args:
          template: the loop's initial state (its ``states`` rows and
            ``best_params`` give the structure, shapes and dtypes).

        Raises:
          ValueError: the folder holds another run (the message names what differs).
          CheckpointError: the checkpoint is damaged.
        """
        if not (self.path / "metadata.json").exists():
            return None
        meta, payload = read(self.path, TRAINING_FORMAT, "ttm_jax training checkpoint")
        saved = meta.get("fingerprint")
        if saved != self.fingerprint:
            diff = _describe_difference(saved if isinstance(saved, dict) else {}, self.fingerprint)
            raise ValueError(f"checkpoint_dir={self.path} holds another run ({diff}); resume "
                             "with the same model, data, settings and keys, or use a new "
                             "checkpoint_dir")
        try:
            a, c, r = (int(meta["shape"][k]) for k in ("active_rows", "checks", "members"))
            leaves = meta["leaves"]
            next_check, out_of_time = int(meta["next_check"]), bool(meta["out_of_time"])
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{self.path}/metadata.json lacks the loop's progress ({err}); "
                                  "the checkpoint is damaged") from None
        import jax

        host = {name: np.asarray(getattr(template, name)) for name in _HOST_FIELDS}
        shapes = {"rows": (a,), "epochs_run": (r,), "epochs": (c,), "train_mse": (c, r),
                  "val_rmse": (c, r), "learning_rate": (c, r)}
        host_template = {n: np.zeros(shapes[n], host[n].dtype) for n in _HOST_FIELDS}
        stop_template = {n: np.zeros((r,), np.asarray(getattr(template.stopping, n)).dtype)
                         for n in _STOPPING_FIELDS}
        rows_template = jax.tree_util.tree_map(lambda x: x[:a], template.states)
        arrays = restore_tree(payload / "arrays",
                              (rows_template, template.best_params, host_template, stop_template),
                              leaves, source=f"{self.path} (training state)")
        states, best, host_arrays, stop = arrays
        return template._replace(
            states=states, best_params=best,
            stopping=template.stopping._replace(**stop),
            next_check=next_check, out_of_time=out_of_time, **host_arrays)

    def save(self, loop, *, force: bool = False) -> None:
        """Save ``loop`` (a ``LoopState``) if its check is due or ``force``."""
        if not force and loop.next_check % self.every:
            return
        host = {name: np.asarray(getattr(loop, name)) for name in _HOST_FIELDS}
        stop = {name: np.asarray(getattr(loop.stopping, name)) for name in _STOPPING_FIELDS}
        meta = {
            "fingerprint": self.fingerprint,
            "next_check": int(loop.next_check),
            "out_of_time": bool(loop.out_of_time),
            "shape": {"active_rows": int(host["rows"].size), "checks": int(host["epochs"].size),
                      "members": int(host["epochs_run"].size)},
        }

        def write_payload(folder: Path) -> None:
            meta["leaves"] = save_tree(folder / "arrays",
                                       (loop.states, loop.best_params, host, stop))

        commit(self.path, TRAINING_FORMAT, meta, write_payload)
