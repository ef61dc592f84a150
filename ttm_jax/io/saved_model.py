"""Saving and loading trained models, with the features they expect, without pickle.

A saved model is a folder (:mod:`ttm_jax.io.folders` makes its writes atomic,
checks its files on reading, and never touches files it did not write)::

    model/
      metadata.json        format and version, library version, ModelConfig,
                           feature schema (D_u, D_i, optional column names),
                           user metadata, text arrays, the payload's manifest
      payload-<id>/state   every array of the model (weights, standardisation,
                           offset), written by orbax-checkpoint
      payload-<id>/arrays  optional extra numeric arrays (the command line keeps
                           its training tables here)

Loading rebuilds the model from the configuration and schema and fills it
with the saved arrays, so a file can only ever fill the architecture its
metadata describes. Non-finite weights are refused at save and at load.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import nnx

from ttm_jax import checks
from ttm_jax.config import ModelConfig
from ttm_jax.io.folders import CheckpointError, commit, read
from ttm_jax.io.trees import abstract_leaves, restore_tree, save_tree
from ttm_jax.model.init import build_model
from ttm_jax.model.towers import TwoTower

__all__ = ["MODEL_FORMAT", "FeatureSchema", "SavedModel", "load_model", "save_model"]

MODEL_FORMAT = "ttm_jax.model"


@dataclasses.dataclass(frozen=True)
class FeatureSchema:
    """The covariates a model expects.

    Attributes:
      user_features: ``D_u``.
      item_features: ``D_i``.
      user_columns: names of the ``D_u`` user covariate columns, in order (optional).
      item_columns: names of the ``D_i`` item covariate columns, in order (optional).
      n_user_ids, n_item_ids: the entity counts of the id tables (0: no table):
        ids are rows ``0 .. n - 1`` of the training covariate tables.
    """

    user_features: int
    item_features: int
    user_columns: tuple[str, ...] | None = None
    item_columns: tuple[str, ...] | None = None
    n_user_ids: int = 0
    n_item_ids: int = 0

    def __post_init__(self):
        for side in ("user", "item"):
            checks.integer(f"n_{side}_ids", getattr(self, f"n_{side}_ids"), low=0,
                           high=checks.INT32_MAX)
            width = checks.integer(f"{side}_features", getattr(self, f"{side}_features"), low=1)
            cols = getattr(self, f"{side}_columns")
            if cols is not None:
                if isinstance(cols, str) or not all(isinstance(c, str) for c in cols):
                    raise checks.InvalidArgument(
                        f"{side}_columns={cols!r} must be a sequence of column names (str)")
                cols = tuple(cols)
                if len(cols) != width:
                    raise checks.InvalidArgument(
                        f"{side}_columns has {len(cols)} names but {side}_features={width}; "
                        "give one name per covariate column")
                object.__setattr__(self, f"{side}_columns", cols)

    @classmethod
    def of(cls, model: TwoTower) -> FeatureSchema:
        """The widths (and id table sizes) of ``model``'s towers, without column names."""
        return cls(model.user_tower.in_features, model.item_tower.in_features,
                   n_user_ids=model.user_tower.n_ids, n_item_ids=model.item_tower.n_ids)

    def build(self, config: ModelConfig, *, key: jax.Array | None = None) -> TwoTower:
        """An untrained model of ``config``'s architecture for these inputs."""
        return build_model(config, self.user_features, self.item_features,
                           n_users=self.n_user_ids, n_items=self.n_item_ids, key=key)

    def check(self, user_features: int | None = None, item_features: int | None = None,
              *, source: str = "the data") -> None:
        """Raise :class:`CheckpointError` unless the given widths are the expected ones."""
        for side, got in (("user", user_features), ("item", item_features)):
            want = getattr(self, f"{side}_features")
            if got is not None and got != want:
                raise CheckpointError(
                    f"{source} has {got} {side} covariate columns but the saved model expects "
                    f"D_{side[0]}={want}; pass covariates with the same columns as in training")


class SavedModel(NamedTuple):
    """What :func:`load_model` returns.

    Attributes:
      model: the :class:`TwoTower`, predicting exactly as when it was saved.
      config: its :class:`ModelConfig`.
      schema: the :class:`FeatureSchema` it expects.
      arrays: extra arrays saved with it (empty dict when none).
      metadata: the rest of ``metadata.json`` (library version, ``user_metadata``).
    """

    model: TwoTower
    config: ModelConfig
    schema: FeatureSchema
    arrays: dict[str, np.ndarray]
    metadata: dict[str, Any]


def _check_finite(state, where: str) -> None:
    for name, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        if not np.isfinite(np.asarray(leaf)).all():
            raise ValueError(f"{where}: {jax.tree_util.keystr(name)} holds NaN or infinite "
                             "values; a diverged model cannot be saved or used")


def save_model(
    path: str | os.PathLike,
    model: TwoTower,
    config: ModelConfig,
    *,
    schema: FeatureSchema | None = None,
    arrays: Mapping[str, np.ndarray] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model`` to the folder ``path``, atomically.

    Args:
      path: target folder: new, empty, or a model saved there before (its
        other files are kept).
      model: the trained :class:`TwoTower` (every weight finite).
      config: the :class:`ModelConfig` it was built with (checked against the model).
      schema: the covariates it expects; default: its tower widths, without names.
      arrays: extra numeric or text arrays to keep with it.
      metadata: extra JSON-serialisable information.

    Returns:
      The folder's absolute path.

    Raises:
      TypeError, ValueError: a bad argument, a config that does not describe
        the model, non-finite weights, or an array that is neither numbers nor text.
      ttm_jax.io.OutputPathError: ``path`` holds files the library did not write.

    Example:
      >>> saved = save_model("out/model", result.model, ModelConfig(hidden=(32,)))
      >>> load_model(saved).model   # predicts exactly as result.model
    """
    if not isinstance(model, TwoTower):
        raise TypeError(f"model must be a TwoTower, got {type(model).__name__}")
    if not isinstance(config, ModelConfig):
        raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
    schema = schema if schema is not None else FeatureSchema.of(model)
    schema.check(model.user_tower.in_features, model.item_tower.in_features, source="the model")
    for side in ("user", "item"):
        have, said = getattr(model, f"{side}_tower").n_ids, getattr(schema, f"n_{side}_ids")
        if have != said:
            raise ValueError(f"schema.n_{side}_ids={said} but the model's {side} id table has "
                             f"{have} entities; build the schema with FeatureSchema.of(model) "
                             f"(or n_{side}_ids={have})")
    try:
        described = schema.build(config).describe()
    except ValueError as err:
        raise ValueError(f"config {config} does not describe the model: {err}") from None
    if described != model.describe():
        raise ValueError(f"config {config} does not describe the model ({model.describe()}); "
                         "pass the ModelConfig the model was built with")
    state = nnx.state(model)
    _check_finite(state, "save_model")
    numeric, text = {}, {}
    for name, value in (arrays or {}).items():
        value = np.asarray(value)
        if value.dtype.kind == "U":
            text[str(name)] = value.tolist()
        elif value.dtype.kind in "biuf":
            numeric[str(name)] = value
        else:
            raise ValueError(f"array {name!r} has dtype {value.dtype}, which cannot be saved "
                             "without pickle; convert it to numbers or text (np.asarray(x, str))")
    meta = {
        "model_config": dataclasses.asdict(config),
        "schema": dataclasses.asdict(schema),
        "user_metadata": dict(metadata or {}),
        "text_arrays": text,
        "numeric_arrays": sorted(numeric),
    }
    json.dumps(meta)  # fail before writing anything if it is not JSON-serialisable

    def write_payload(folder: Path) -> None:
        leaves = {"state": save_tree(folder / "state", state)}
        if numeric:
            leaves["arrays"] = save_tree(folder / "arrays", [numeric[k] for k in sorted(numeric)])
        # Known once written; commit() builds metadata.json after the payload.
        meta["leaves"] = leaves

    return commit(Path(path), MODEL_FORMAT, meta, write_payload)


class _Fields(NamedTuple):
    config: ModelConfig
    schema: FeatureSchema
    state: list
    arrays: list
    numeric_names: list[str]
    text: dict[str, np.ndarray]


def _parse(meta: dict, where: str) -> _Fields:
    """The model's fields of ``metadata.json``, checked (types included): a damaged or
    hand-resealed file is a :class:`CheckpointError`, never a ``KeyError``."""
    try:
        config = ModelConfig(**meta["model_config"])
        schema = FeatureSchema(**meta["schema"])
        leaves, names, text = meta["leaves"], meta["numeric_arrays"], meta["text_arrays"]
        if not isinstance(meta.get("user_metadata"), dict):
            raise TypeError("user_metadata is not an object")
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise TypeError("numeric_arrays is not a list of names")
        arrays = leaves.get("arrays", []) if names else []
        if not isinstance(arrays, list) or len(arrays) != len(names):
            raise ValueError(f"{len(names)} numeric array names but the records of "
                             f"{len(arrays) if isinstance(arrays, list) else 'no'} arrays")
        if not all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                   for v in text.values()):
            raise TypeError("text_arrays holds something other than lists of text")
        return _Fields(config, schema, leaves["state"], arrays, names,
                       {k: np.asarray(v, dtype=str) for k, v in text.items()})
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"{where} is not a valid saved model's metadata "
                              f"({type(err).__name__}: {err}); it was damaged or edited, so "
                              "it is not used. Save the model again") from None


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
      CheckpointError: an edited metadata.json, truncated or altered files,
        another format version, an architecture inconsistent with the
        metadata, non-finite weights, or other feature widths.
    """
    meta, payload = read(Path(path), MODEL_FORMAT, "saved ttm_jax model")
    fields = _parse(meta, f"{path}/metadata.json")
    config, schema = fields.config, fields.schema
    schema.check(user_features, item_features, source="the covariates given")
    # Restored into an abstract model first, so that an architecture the
    # payload does not hold is refused before anything is allocated.
    try:
        graphdef, abstract = nnx.split(nnx.eval_shape(lambda: schema.build(config)))
    except ValueError as err:
        raise CheckpointError(f"{path}/metadata.json: its model_config and schema do not fit "
                              f"together ({err}); it was damaged or edited. Save the model "
                              "again") from None
    state = restore_tree(payload / "state", abstract, fields.state,
                         source=f"{path} (model state)")
    try:
        _check_finite(state, f"{path}")
    except ValueError as err:
        raise CheckpointError(str(err)) from None
    model = nnx.merge(graphdef, state)
    arrays = dict(fields.text)
    if fields.numeric_names:
        values = restore_tree(payload / "arrays",
                              abstract_leaves(fields.arrays, source=f"{path} (arrays)"),
                              fields.arrays, source=f"{path} (arrays)")
        arrays.update(zip(fields.numeric_names, values))
    rest = {k: v for k, v in meta.items()
            if k not in ("model_config", "schema", "files", "leaves", "text_arrays",
                         "numeric_arrays", "checksum", "payload")}
    return SavedModel(model, config, schema, arrays, rest)
