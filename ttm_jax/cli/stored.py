"""A model folder written by ``ttm_jax fit``, read back for the commands that score with it."""

from __future__ import annotations

import numpy as np

__all__ = ["StoredModel"]


class StoredModel:
    """A model folder written by ``fit``: the model and its training tables."""

    def __init__(self, folder: str):
        from ttm_jax.io import load_model

        saved = load_model(folder)
        self.folder = folder
        self.saved = saved
        self.model = saved.model
        a = self._tables(saved.arrays)
        self.user_ids, self.item_ids = a["user_ids"], a["item_ids"]
        self.user_features, self.item_features = a["user_features"], a["item_features"]
        self.rated_users, self.rated_items, self.ratings = (
            a["rated_users"], a["rated_items"], a["ratings"])
        columns = saved.metadata["user_metadata"].get("columns")
        if not (isinstance(columns, dict) and
                all(isinstance(columns.get(k), str) for k in ("user", "item", "rating"))):
            self._refuse("the names of its id and rating columns")
        self.columns = columns

    def _refuse(self, lacking: str):
        from ttm_jax.io import CheckpointError

        raise CheckpointError(f"{self.folder} was not written by `ttm_jax fit` (it lacks "
                              f"{lacking}); save models for the command line with it")

    def _tables(self, a: dict) -> dict:
        """The training tables, checked to fit together (a model saved by other code may
        hold arrays under these names that do not)."""
        need = ("user_ids", "item_ids", "user_features", "item_features", "rated_users",
                "rated_items", "ratings")
        missing = [k for k in need if k not in a]
        if missing:
            self._refuse(missing[0])
        schema = self.saved.schema
        for side in ("user", "item"):
            ids, x = a[f"{side}_ids"], a[f"{side}_features"]
            rated = a[f"rated_{side}s"]
            n_ids = getattr(schema, f"n_{side}_ids")
            if not (ids.ndim == 1 and x.shape == (ids.size, getattr(schema, f"{side}_features"))
                    and rated.shape == a["ratings"].shape and rated.dtype.kind in "iu"
                    and (rated.size == 0 or 0 <= rated.min() <= rated.max() < ids.size)
                    and n_ids in (0, ids.size)):
                self._refuse(f"{side} tables that fit together")
        return a

    def embed(self, side: str, features: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Embeddings ``[len(rows), p]`` of rows of ``features`` (a table from
        :meth:`covariates`): a training user or item (a row before the file's new
        ones) reads its id table row, when the model has one; a new one is known by
        its covariates alone."""
        from ttm_jax.serving.inference import embed_items, embed_users

        embed = embed_users if side == "user" else embed_items
        tower = self.model.user_tower if side == "user" else self.model.item_tower
        rows = np.asarray(rows, np.int64)
        if not tower.n_ids:
            return embed(self.model, features[rows])
        known = rows < tower.n_ids
        out = np.empty((rows.size, tower.out_features), np.float32)
        if known.any():
            out[known] = embed(self.model, features[rows[known]], rows[known])
        if not known.all():
            out[~known] = embed(self.model, features[rows[~known]])
        return out

    def covariates(self, side: str, path: str | None):
        """``(ids, features)``: the training table, extended/overridden by ``path``'s rows."""
        from ttm_jax.data.tabular import read_covariates

        ids = self.user_ids if side == "user" else self.item_ids
        feats = self.user_features if side == "user" else self.item_features
        if path is None:
            return ids, feats
        schema = self.saved.schema
        cols = schema.user_columns if side == "user" else schema.item_columns
        table = read_covariates(path, id_col=self.columns[side], columns=cols)
        new = ~np.isin(table.ids, ids)
        known_rows = np.searchsorted(ids, table.ids[~new], sorter=np.argsort(ids))
        known_rows = np.argsort(ids)[known_rows]
        feats = feats.copy()
        feats[known_rows] = table.features[~new]  # the file's covariates are the current ones
        return np.concatenate([ids, table.ids[new]]), np.concatenate([feats, table.features[new]])
