"""Pytrees of arrays on disk through orbax-checkpoint, and content digests of pytrees.

A pytree is written as a flat list of its leaves (``a00000``, ``a00001``, …)
with orbax's ``StandardCheckpointer``, which does the file I/O (atomic
directory writes, multi-host arrays); its structure is never stored, only the
leaves' paths, shapes and dtypes (for messages). It is restored into the
structure of a template, so a file can only ever fill the tree the caller
expects, and any mismatch of count, shape or dtype is a
:class:`~ttm_jax.io.folders.CheckpointError` naming the leaf.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import jax
import numpy as np

from ttm_jax.io.folders import CheckpointError

__all__ = ["abstract_leaves", "digest", "leaf_names", "restore_tree", "save_tree"]


def _host_leaves(tree) -> list[np.ndarray]:
    leaves = []
    for leaf in jax.tree_util.tree_leaves(tree):
        dtype = getattr(leaf, "dtype", None)
        if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        leaves.append(np.asarray(jax.device_get(leaf)))
    return leaves


def leaf_names(tree) -> list[str]:
    """The readable path of every leaf of ``tree``, in order (``.params['user_tower']…``)."""
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def digest(tree) -> str:
    """SHA-256 of ``tree``'s leaves (their dtypes, shapes and bytes, in order), as hex.

    Two trees with the same leaves have the same digest; it identifies the
    inputs of a training run in its checkpoint's fingerprint.
    """
    h = hashlib.sha256()
    for leaf in _host_leaves(tree):
        h.update(f"{leaf.dtype.str}{leaf.shape}".encode())
        h.update(np.ascontiguousarray(leaf).tobytes())
    return h.hexdigest()


def _checkpointer():
    import orbax.checkpoint as ocp

    # orbax logs every save at INFO level; a library should not.
    logging.getLogger("absl").setLevel(logging.WARNING)
    return ocp.StandardCheckpointer()


def save_tree(folder: Path, tree) -> list[dict]:
    """Write ``tree``'s leaves to the new folder ``folder`` (orbax).

    Returns:
      One ``{"path", "shape", "dtype"}`` record per leaf, to keep in the metadata.

    Raises:
      ValueError: a leaf that is not a numeric array (text, objects).
    """
    leaves = _host_leaves(tree)
    names = leaf_names(tree)
    for name, leaf in zip(names, leaves):
        if leaf.dtype.kind not in "biuf":
            raise ValueError(f"array {name or '(root)'} has dtype {leaf.dtype}, which cannot be "
                             "saved as numbers; convert it first (text goes in the metadata)")
    ckpt = _checkpointer()
    ckpt.save(Path(folder).absolute(), {f"a{k:05d}": x for k, x in enumerate(leaves)})
    ckpt.wait_until_finished()
    return [{"path": n, "shape": list(x.shape), "dtype": x.dtype.str} for n, x in zip(names, leaves)]


def abstract_leaves(records, *, source: str) -> list[jax.ShapeDtypeStruct]:
    """The shape and dtype of each leaf :func:`save_tree` recorded, checked.

    Abstract, so that a metadata.json that claims a huge array allocates nothing.

    Raises:
      CheckpointError: ``records`` is not the list :func:`save_tree` returns
        (a damaged or hand-edited metadata.json).
    """
    out = []
    for rec in records if isinstance(records, list) else [None]:
        shape = rec.get("shape") if isinstance(rec, dict) else None
        try:
            dtype = np.dtype(rec["dtype"])
            ok = (isinstance(rec.get("path"), str) and isinstance(shape, list)
                  and all(type(d) is int and d >= 0 for d in shape) and dtype.kind in "biuf")
        except (TypeError, KeyError):
            ok = False
        if not ok:
            raise CheckpointError(f"{source}: metadata.json's record of the arrays is damaged "
                                  f"({rec!r} is not a path, shape and number dtype)")
        out.append(jax.ShapeDtypeStruct(tuple(shape), dtype))
    return out


def restore_tree(folder: Path, template, records: list[dict], *, source: str):
    """Read the leaves written by :func:`save_tree` into ``template``'s structure.

    Args:
      folder: the folder :func:`save_tree` wrote.
      template: a pytree of arrays (or ``jax.ShapeDtypeStruct``) of the expected
        structure, shapes and dtypes.
      records: :func:`save_tree`'s return value, from the metadata.
      source: the folder's name for messages.

    Raises:
      CheckpointError: the saved leaves do not match the template, or orbax
        cannot read them.
    """
    saved = abstract_leaves(records, source=source)
    want = [(n, tuple(np.shape(x)), np.dtype(getattr(x, "dtype", np.asarray(x).dtype)))
            for n, x in zip(leaf_names(template), jax.tree_util.tree_leaves(template))]
    if len(records) != len(want):
        raise CheckpointError(
            f"{source} holds {len(records)} arrays but the expected architecture has {len(want)}; "
            "the file does not belong to this model or run")
    for rec, got, (name, shape, dtype) in zip(records, saved, want):
        if got.shape != shape or got.dtype != dtype:
            raise CheckpointError(
                f"{source}: array {rec['path'] or name} has shape {got.shape} and dtype "
                f"{got.dtype}, but the architecture in its metadata needs {shape} "
                f"{dtype}; the file is inconsistent with its metadata.json")
    abstract = {f"a{k:05d}": jax.ShapeDtypeStruct(shape, dtype)
                for k, (_, shape, dtype) in enumerate(want)}
    try:
        flat = _checkpointer().restore(Path(folder).absolute(), abstract)
    except Exception as err:  # orbax/tensorstore raise many types for a damaged folder
        raise CheckpointError(f"{source} cannot be read ({type(err).__name__}: {err}); the "
                              "folder is damaged") from None
    leaves = [np.asarray(flat[f"a{k:05d}"]) for k in range(len(want))]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves)
