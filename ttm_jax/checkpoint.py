"""Saving and loading trained models, and training checkpoints, without pickle.

A saved model is a folder::

    model/
      metadata.json     format name and version, library version, ModelConfig,
                        feature schema (D_u, D_i, optional column names), and the
                        size and SHA-256 of each payload file
      state.msgpack     every array of the model (``nnx.split(model)``: weights,
                        standardisation, offset), by path, in Flax's msgpack format
      arrays.msgpack    optional extra arrays saved with the model (the command
                        line keeps its id maps and training tables here)

Writes are atomic: the new folder is written beside the target under a hidden
temporary name, every file and the folder are fsync'ed, and only then is it
renamed into place (``os.replace``). A previous model at the target is first
renamed aside and deleted only after the new one is in place, so a crash at any
point leaves either the old or the new model complete, never a mixture; if a
crash falls between the two renames, :func:`load_model` finds the old one.

Loading checks the format name and version, the file sizes and checksums
(a truncated or altered file fails with a message naming it), that the arrays
match the architecture in the metadata, and, when asked, the feature widths.

Training checkpoints (:class:`TrainingCheckpointer`, used by
``ttm_jax.train.fit(checkpoint_dir=...)``) use the same folder format with the
optimiser state and the early-stopping bookkeeping, so an interrupted ``fit``
resumes exactly where it left off. :class:`GridCheckpointer` does the same for
``ttm_jax.lambda_grid.fit_lambda_grid(checkpoint_dir=...)``: the batched state of
the λ still training, every λ's best parameters and its stopping state.

Serialisation is ``flax.serialization.msgpack_serialize`` of flat
``{path: numpy array}`` dicts plus JSON metadata: it needs no extra dependency,
stores plain arrays only (no code is ever unpickled) and gives one file per
payload, which is what makes a size and checksum check straightforward.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import shutil
import uuid
import warnings
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import nnx, serialization

from ttm_jax.config import ModelConfig, TrainConfig
from ttm_jax.towers import TwoTower

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "FeatureSchema",
    "GridCheckpointer",
    "GridProgress",
    "SavedModel",
    "TrainingCheckpointer",
    "TrainingProgress",
    "build_model",
    "load_model",
    "save_model",
]

#: Version of the on-disk layout; bumped whenever old folders can no longer be read.
FORMAT_VERSION = 1
MODEL_FORMAT = "ttm_jax.model"
TRAINING_FORMAT = "ttm_jax.training"
GRID_FORMAT = "ttm_jax.lambda_grid"
_METADATA = "metadata.json"


def _library_version() -> str:
    try:
        return importlib.metadata.version("ttm_jax")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "unknown"


class CheckpointError(ValueError):
    """A saved model or checkpoint cannot be read: truncated, altered, from another
    format version, or for another architecture or feature widths."""


@dataclasses.dataclass(frozen=True)
class FeatureSchema:
    """The covariates a model expects.

    Attributes:
      user_features: ``D_u``.
      item_features: ``D_i``.
      user_columns: names of the ``D_u`` user covariate columns, in order (optional).
      item_columns: names of the ``D_i`` item covariate columns, in order (optional).
    """

    user_features: int
    item_features: int
    user_columns: tuple[str, ...] | None = None
    item_columns: tuple[str, ...] | None = None

    def __post_init__(self):
        for side in ("user", "item"):
            width = getattr(self, f"{side}_features")
            if int(width) != width or width < 1:
                raise ValueError(f"{side}_features={width} must be a positive integer")
            cols = getattr(self, f"{side}_columns")
            if cols is not None:
                cols = tuple(str(c) for c in cols)
                if len(cols) != width:
                    raise ValueError(
                        f"{side}_columns has {len(cols)} names but {side}_features={width}; "
                        "give one name per covariate column"
                    )
                object.__setattr__(self, f"{side}_columns", cols)

    @classmethod
    def of(cls, model: TwoTower) -> FeatureSchema:
        """The widths of ``model``'s towers, without column names."""
        return cls(model.user_tower.in_features, model.item_tower.in_features)

    def check(self, user_features: int | None = None, item_features: int | None = None,
              *, source: str = "the data") -> None:
        """Raise :class:`CheckpointError` unless the given widths are the expected ones."""
        for side, got in (("user", user_features), ("item", item_features)):
            want = getattr(self, f"{side}_features")
            if got is not None and got != want:
                raise CheckpointError(
                    f"{source} has {got} {side} covariate columns but the saved model expects "
                    f"D_{side[0]}={want}; pass covariates with the same columns as in training"
                )


class SavedModel(NamedTuple):
    """What :func:`load_model` returns.

    Attributes:
      model: the :class:`TwoTower`, predicting exactly as when it was saved.
      config: its :class:`ModelConfig`.
      schema: the :class:`FeatureSchema` it expects.
      arrays: extra arrays saved with it (empty dict when none).
      metadata: the rest of ``metadata.json`` (library version, user metadata).
    """

    model: TwoTower
    config: ModelConfig
    schema: FeatureSchema
    arrays: dict[str, np.ndarray]
    metadata: dict[str, Any]


def build_model(config: ModelConfig, schema: FeatureSchema) -> TwoTower:
    """An untrained :class:`TwoTower` with ``config``'s architecture for ``schema``'s widths.

    Its values are placeholders, to be overwritten by loaded state.
    """
    return TwoTower(
        schema.user_features,
        schema.item_features,
        hidden=config.hidden,
        embedding_dim=config.embedding_dim,
        activation=config.activation,
        rngs=nnx.Rngs(params=0),
    )


# --- flat array dicts ---------------------------------------------------------------


def _flatten(tree) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(p): np.asarray(jax.device_get(x)) for p, x in leaves}


def _unflatten(template, flat: Mapping[str, np.ndarray], *, source: str):
    """Fill ``template``'s structure with ``flat``'s arrays, checking names, shapes, dtypes."""
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    want = {jax.tree_util.keystr(p): x for p, x in paths_leaves}
    missing = sorted(set(want) - set(flat))
    extra = sorted(set(flat) - set(want))
    if missing or extra:
        raise CheckpointError(
            f"{source} does not match the expected architecture: "
            + (f"missing {missing[:3]}{'…' if len(missing) > 3 else ''}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unexpected {extra[:3]}{'…' if len(extra) > 3 else ''}" if extra else "")
        )
    leaves = []
    for name, ref in want.items():
        got = np.asarray(flat[name])
        ref_shape, ref_dtype = tuple(np.shape(ref)), np.asarray(jax.device_get(ref)).dtype
        if got.shape != ref_shape or got.dtype != ref_dtype:
            raise CheckpointError(
                f"{source}: array {name} has shape {got.shape} and dtype {got.dtype}, but the "
                f"architecture in its metadata needs {ref_shape} {ref_dtype}; the file is "
                "inconsistent with its metadata.json"
            )
        leaves.append(got)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _pack(flat: Mapping[str, np.ndarray]) -> bytes:
    packed = {}
    for name, arr in flat.items():
        arr = np.asarray(arr)
        if arr.dtype.kind == "U":
            # Flax's array codec has no text dtype; msgpack stores lists of str natively.
            packed[name] = arr.tolist()
        elif arr.dtype.kind in "OSV":
            raise ValueError(
                f"array {name!r} has dtype {arr.dtype}, which cannot be saved without pickle; "
                "convert it to numbers or text (np.asarray(x, str))"
            )
        else:
            packed[name] = arr
    return serialization.msgpack_serialize(packed)


def _unpack(data: bytes, *, source: str) -> dict[str, np.ndarray]:
    try:
        restored = serialization.msgpack_restore(data)
    except Exception as err:
        raise CheckpointError(f"{source} cannot be decoded ({err}); the file is damaged") from None
    return {k: np.asarray(v, dtype=str) if isinstance(v, list) else np.asarray(v)
            for k, v in restored.items()}


# --- atomic folders ---------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.old-*"))


def _check_replaceable(path: Path, fmt: str) -> None:
    if not path.exists():
        return
    if not path.is_dir():
        raise ValueError(f"{path} exists and is not a folder; choose another path")
    if any(path.iterdir()) and not (path / _METADATA).is_file():
        raise ValueError(
            f"{path} is a non-empty folder that is not a saved {fmt}; refusing to replace it. "
            "Choose a new or empty folder"
        )
    if (path / _METADATA).is_file():
        try:
            old_fmt = json.loads((path / _METADATA).read_text()).get("format")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            old_fmt = None
        if old_fmt not in (None, fmt):
            raise ValueError(f"{path} holds a {old_fmt}, not a {fmt}; refusing to replace it")


def _write_folder(path: Path, fmt: str, meta: dict, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` and ``metadata.json`` to ``path`` atomically (see module docstring)."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_replaceable(path, fmt)
    if not path.exists():
        # A save that crashed between its two renames left the previous folder aside.
        for backup in _backups(path)[-1:]:
            os.replace(backup, path)
    meta = dict(meta, format=fmt, format_version=FORMAT_VERSION,
                library_version=_library_version(),
                files={name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                       for name, data in files.items()})
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name, data in files.items():
            _write_file(tmp / name, data)
        # metadata.json last: a folder without it is never mistaken for a complete save.
        _write_file(tmp / _METADATA, json.dumps(meta, indent=1).encode())
        _fsync_dir(tmp)
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def _read_folder(path: Path, fmt: str, what: str) -> tuple[dict, dict[str, bytes]]:
    path = Path(path)
    if not path.exists():
        backups = _backups(path)
        if not backups:
            raise FileNotFoundError(f"no {what} at {path}")
        warnings.warn(f"{path} is missing but an interrupted save left the previous {what} at "
                      f"{backups[-1]}; loading that", RuntimeWarning, stacklevel=3)
        path = backups[-1]
    meta_path = path / _METADATA
    if not meta_path.is_file():
        raise CheckpointError(f"{path} has no {_METADATA}: it is not a {what} (or its save "
                              "never completed)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{meta_path} is truncated or not JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        got = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path} holds {got or 'an unknown format'!s}, not a {what} "
                              f"({fmt})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written in format version {version} (ttm_jax "
            f"{meta.get('library_version', '?')}); this ttm_jax ({_library_version()}) reads "
            f"format version {FORMAT_VERSION}. Load it with the ttm_jax that wrote it and "
            "re-save, or retrain"
        )
    files = {}
    for name, info in meta.get("files", {}).items():
        fp = path / name
        if not fp.is_file():
            raise CheckpointError(f"{fp} is missing; the {what} is incomplete")
        data = fp.read_bytes()
        if len(data) != info["bytes"]:
            raise CheckpointError(
                f"{fp} is truncated or altered: {len(data)} bytes, but {info['bytes']} were "
                "written"
            )
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise CheckpointError(f"{fp} is corrupted: its SHA-256 checksum does not match "
                                  f"the one recorded in {_METADATA}")
        files[name] = data
    return meta, files


# --- models -----------------------------------------------------------------------


def save_model(
    path: str | os.PathLike,
    model: TwoTower,
    config: ModelConfig,
    *,
    schema: FeatureSchema | None = None,
    arrays: Mapping[str, np.ndarray] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model`` to the folder ``path``, atomically (replacing a model saved there).

    Args:
      path: target folder; created, or replaced if it holds a saved model.
      model: the trained :class:`TwoTower`.
      config: the :class:`ModelConfig` it was built with (checked against the model).
      schema: the covariates it expects; default: its tower widths, without names.
      arrays: extra numeric or fixed-width-string arrays to keep with it.
      metadata: extra JSON-serialisable information.

    Returns:
      The folder's absolute path.

    Example:
      >>> saved = save_model("out/model", result.model, ModelConfig(hidden=(32,)))
      >>> load_model(saved).model   # predicts exactly as result.model
    """
    if not isinstance(model, TwoTower):
        raise TypeError(f"model must be a TwoTower, got {type(model).__name__}")
    schema = schema if schema is not None else FeatureSchema.of(model)
    schema.check(model.user_tower.in_features, model.item_tower.in_features, source="the model")
    state = _flatten(nnx.state(model))
    # Loading rebuilds the model from config and schema, so they must describe it.
    _unflatten(nnx.state(build_model(config, schema)), state,
               source=f"the model (for config {config})")
    files = {"state.msgpack": _pack(state)}
    if arrays:
        files["arrays.msgpack"] = _pack({str(k): np.asarray(v) for k, v in arrays.items()})
    meta = {
        "model_config": dataclasses.asdict(config),
        "schema": dataclasses.asdict(schema),
        "user_metadata": dict(metadata or {}),
    }
    json.dumps(meta)  # fail before writing anything if it is not JSON-serialisable
    return _write_folder(Path(path), MODEL_FORMAT, meta, files)


def load_model(
    path: str | os.PathLike,
    *,
    user_features: int | None = None,
    item_features: int | None = None,
) -> SavedModel:
    """Load a model saved by :func:`save_model`.

    Args:
      path: the folder.
      user_features, item_features: the widths ``D_u``, ``D_i`` of the covariates
        it will be used with; a mismatch raises :class:`CheckpointError`.

    Returns:
      A :class:`SavedModel` whose ``model`` predicts bit-identically to the saved one.

    Raises:
      FileNotFoundError: nothing at ``path``.
      CheckpointError: truncated or altered files, another format version, an
        architecture inconsistent with the metadata, or other feature widths.
    """
    meta, files = _read_folder(Path(path), MODEL_FORMAT, "saved ttm_jax model")
    try:
        config = ModelConfig(**meta["model_config"])
        schema = FeatureSchema(**meta["schema"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}/{_METADATA} has an invalid model_config or schema "
                              f"({err})") from None
    schema.check(user_features, item_features, source="the covariates given")
    if "state.msgpack" not in files:
        raise CheckpointError(f"{path}/{_METADATA} lists no state.msgpack")
    model = build_model(config, schema)
    flat = _unpack(files["state.msgpack"], source=f"{path}/state.msgpack")
    nnx.update(model, _unflatten(nnx.state(model), flat, source=f"{path}/state.msgpack"))
    arrays = (_unpack(files["arrays.msgpack"], source=f"{path}/arrays.msgpack")
              if "arrays.msgpack" in files else {})
    rest = {k: v for k, v in meta.items() if k not in ("model_config", "schema", "files")}
    return SavedModel(model, config, schema, arrays, rest)


# --- training checkpoints ---------------------------------------------------------------


class TrainingProgress(NamedTuple):
    """Everything :func:`ttm_jax.train.fit` needs to carry on from a check.

    Attributes:
      state: the ``TrainState`` (parameters, non-trainable state, optimiser, step).
      best_params: parameters with the best validation RMSE so far.
      best_rmse, best_epoch, since_best: early-stopping bookkeeping.
      rows: history rows so far, ``[n_checks_done, 4]``.
      next_check: index of the next check to run.
      stop_reason: why the saved run stopped (``""`` while it was still running).
    """

    state: Any
    best_params: Any
    best_rmse: float
    best_epoch: float
    since_best: int
    rows: np.ndarray
    next_check: int
    stop_reason: str


# Settings that may change between an interrupted run and its resumption: more
# epochs, a new time budget, more patience.
_RESUMABLE_CHANGES = ("max_epochs", "max_seconds", "patience")


def _crc(*arrays: np.ndarray) -> int:
    crc = 0
    for a in arrays:
        crc = zlib.crc32(np.ascontiguousarray(a).view(np.uint8).reshape(-1), crc)
    return crc


def _check_every(every) -> int:
    if int(every) != every or every < 1:
        raise ValueError(f"checkpoint_every={every} must be a positive integer")
    return int(every)


def _run_fingerprint(config: TrainConfig, train, validation, key, mode: str, **extra) -> dict:
    """What identifies a training run: settings that may not change, data checksums, key."""
    settings = {k: v for k, v in dataclasses.asdict(config).items()
                if k not in _RESUMABLE_CHANGES}
    return json.loads(json.dumps({
        "train_config": settings,
        "tower_mode": mode,
        "train": [train.n_users, train.n_items, train.n_ratings,
                  _crc(train.user_ids, train.item_ids, train.ratings)],
        "validation": None if validation is None else [
            validation.n_ratings,
            _crc(validation.user_ids, validation.item_ids, validation.ratings)],
        "key": np.asarray(jax.random.key_data(key)).ravel().tolist(),
        **extra,
    }))


def _read_run(path: Path, fmt: str, what: str, fingerprint: dict) -> tuple[dict, dict[str, bytes]]:
    """Read a checkpoint folder and check that it belongs to the run ``fingerprint`` names."""
    meta, files = _read_folder(path, fmt, what)
    saved = meta.get("fingerprint", {})
    if saved != fingerprint:
        diff = _describe_difference(saved, fingerprint)
        raise ValueError(
            f"checkpoint_dir={path} holds another run ({diff}); resume with the same "
            "data, settings and key, or use a new checkpoint_dir"
        )
    if "state.msgpack" not in files:
        raise CheckpointError(f"{path}/{_METADATA} lists no state.msgpack")
    return meta, files


class TrainingCheckpointer:
    """Periodic checkpoints of one ``fit`` run in a folder, and its resumption.

    ``fit(..., checkpoint_dir=d)`` builds one; you rarely need it directly.
    The folder identifies its run (training settings, data checksums, key);
    resuming with other settings or data raises ``ValueError`` rather than mixing
    two runs. ``max_epochs``, ``max_seconds`` and ``patience`` may change, so a
    finished run can be continued for more epochs.

    Args:
      path: the checkpoint folder (created on the first save).
      every: save after every ``every``-th validation check (and when training stops).
      config, train, validation, key, mode: the run, for its fingerprint.
    """

    def __init__(self, path, *, every: int, config: TrainConfig, train, validation, key,
                 mode: str):
        self.path, self.every = Path(path), _check_every(every)
        self.fingerprint = _run_fingerprint(config, train, validation, key, mode)

    def restore(self, template: TrainingProgress) -> TrainingProgress | None:
        """The saved progress (``None`` when the folder holds no checkpoint yet)."""
        if not self.path.exists() and not _backups(self.path):
            return None
        meta, files = _read_run(self.path, TRAINING_FORMAT, "ttm_jax training checkpoint",
                                self.fingerprint)
        flat = _unpack(files["state.msgpack"], source=f"{self.path}/state.msgpack")
        state, best = _unflatten((template.state, template.best_params), flat,
                                 source=f"{self.path}/state.msgpack")
        b = meta["progress"]
        rows = np.asarray(b["rows"], np.float64).reshape(-1, 4)
        return TrainingProgress(state, best, float(b["best_rmse"]), float(b["best_epoch"]),
                                int(b["since_best"]), rows, int(b["next_check"]),
                                str(b["stop_reason"]))

    def save(self, progress: TrainingProgress, *, force: bool = False) -> None:
        """Save ``progress`` if its check is due (every ``every`` checks) or ``force``."""
        if not force and progress.next_check % self.every:
            return
        flat = _flatten((progress.state, progress.best_params))
        meta = {
            "fingerprint": self.fingerprint,
            "progress": {
                # JSON has no inf/NaN literals that every reader accepts; store them as strings.
                "best_rmse": repr(float(progress.best_rmse)),
                "best_epoch": progress.best_epoch,
                "since_best": int(progress.since_best),
                "rows": [[repr(float(x)) for x in r] for r in np.asarray(progress.rows)],
                "next_check": int(progress.next_check),
                "stop_reason": progress.stop_reason,
            },
        }
        _write_folder(self.path, TRAINING_FORMAT, meta, {"state.msgpack": _pack(flat)})


class GridProgress(NamedTuple):
    """Everything :func:`ttm_jax.lambda_grid.fit_lambda_grid` needs to carry on from a check.

    For a grid of ``g`` values of λ of which ``a`` are still training after
    ``c`` checks:

    Attributes:
      state: the batched ``TrainState`` of the ``a`` grid points still training, ``[a, ...]``.
      best_params: best-validation parameters of every grid point, ``[g, ...]``.
      rows: grid indices of ``state``'s rows, ``[a]`` int.
      best_rmse, best_epoch, since_best, active, diverged: per-λ early stopping, each ``[g]``.
      epochs: epoch of each check so far, ``[c]``.
      val_rmse: validation RMSE at each check, ``[c, g]`` (NaN once a λ stopped).
      next_check: index of the next check to run.
      stop_reason: why the saved run stopped (``""`` while it was still running).
    """

    state: Any
    best_params: Any
    rows: np.ndarray
    best_rmse: np.ndarray
    best_epoch: np.ndarray
    since_best: np.ndarray
    active: np.ndarray
    diverged: np.ndarray
    epochs: np.ndarray
    val_rmse: np.ndarray
    next_check: int
    stop_reason: str


_GRID_ARRAYS = ("rows", "best_rmse", "best_epoch", "since_best", "active", "diverged", "epochs",
                "val_rmse")


class GridCheckpointer:
    """Periodic checkpoints of one :func:`~ttm_jax.lambda_grid.fit_lambda_grid` run.

    ``fit_lambda_grid(..., checkpoint_dir=d)`` builds one. As for
    :class:`TrainingCheckpointer`, the folder identifies its run (settings, data
    checksums, key, and here the λ grid); ``max_epochs``, ``max_seconds`` and
    ``patience`` may change on resumption.

    Args:
      path: the checkpoint folder (created on the first save).
      every: save after every ``every``-th validation check (and when training stops).
      config, train, validation, key, mode: the run, for its fingerprint.
      lambdas: ``[g]`` the grid.
    """

    def __init__(self, path, *, every: int, config: TrainConfig, train, validation, key,
                 mode: str, lambdas: np.ndarray):
        self.path, self.every = Path(path), _check_every(every)
        self.fingerprint = _run_fingerprint(
            config, train, validation, key, mode,
            lambdas=[repr(float(x)) for x in np.asarray(lambdas, np.float64)])

    def restore(self, state: Any, best_params: Any) -> GridProgress | None:
        """The saved progress (``None`` when the folder holds no checkpoint yet).

        Args:
          state: the batched ``TrainState`` at step 0, ``[g, ...]`` (a template:
            its first ``a`` rows give the saved state's structure).
          best_params: the ``[g, ...]`` parameter template.
        """
        if not self.path.exists() and not _backups(self.path):
            return None
        meta, files = _read_run(self.path, GRID_FORMAT, "ttm_jax λ-grid checkpoint",
                                self.fingerprint)
        source = f"{self.path}/state.msgpack"
        flat = _unpack(files["state.msgpack"], source=source)
        try:
            arrays = {name: flat.pop(f"grid/{name}") for name in _GRID_ARRAYS}
        except KeyError as err:
            raise CheckpointError(f"{source} lacks the grid's {err.args[0]}; the file is "
                                  "damaged") from None
        a = arrays["rows"].size
        template = (jax.tree_util.tree_map(lambda x: x[:a], state), best_params)
        state, best = _unflatten(template, flat, source=source)
        return GridProgress(state, best, **arrays, next_check=int(meta["progress"]["next_check"]),
                            stop_reason=str(meta["progress"]["stop_reason"]))

    def save(self, progress: GridProgress, *, force: bool = False) -> None:
        """Save ``progress`` if its check is due (every ``every`` checks) or ``force``."""
        if not force and progress.next_check % self.every:
            return
        flat = _flatten((progress.state, progress.best_params))
        flat.update({f"grid/{name}": np.asarray(getattr(progress, name))
                     for name in _GRID_ARRAYS})
        meta = {"fingerprint": self.fingerprint,
                "progress": {"next_check": int(progress.next_check),
                             "stop_reason": progress.stop_reason}}
        _write_folder(self.path, GRID_FORMAT, meta, {"state.msgpack": _pack(flat)})


def _describe_difference(saved: dict, now: dict) -> str:
    for key in now:
        a, b = saved.get(key), now[key]
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    return f"it has {key}.{k}={a.get(k)!r}, this call {b.get(k)!r}"
        if key in ("train", "validation"):
            return f"its {key} ratings differ from this call's"
        return f"its {key} differs from this call's"
    return "its metadata differs"
