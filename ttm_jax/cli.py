"""Command line: ``python -m ttm_jax`` (or ``ttm-jax``) ``fit``, ``evaluate``, ``recommend``,
``embeddings``.

Ratings come from CSV or Parquet files with user, item and rating columns;
covariates from CSV or Parquet tables keyed by the same id columns. ``fit``
saves a model folder (see :mod:`ttm_jax.checkpoint`) that also holds the id
maps, the covariates of the training users and items, and the training
ratings, so ``recommend`` and ``evaluate`` take external ids and need new
covariate files only for users or items the model has not met.

Every input is read and validated before anything is written; errors name the
file, column and first offending row, and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import stat
import sys
import uuid
from pathlib import Path

import numpy as np

__all__ = ["main", "build_parser"]


# --- helpers -------------------------------------------------------------------


def _hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give comma-separated widths, e.g. 100,100") from None
    return widths


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and one rename, so that an
    interrupted write never leaves half a file. A new file gets the umask's mode
    (``os.open`` applies it; ``mkstemp`` would give 0600); a replaced one keeps its mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if path.is_file():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_parent(path: Path, option: str) -> None:
    """The nearest existing folder above ``path`` must be a writable folder."""
    from ttm_jax.io import OutputPathError

    parent = next(p for p in path.parents if p.exists())
    if not parent.is_dir():
        raise OutputPathError(f"{option} {path}: {parent} is a file, so the path cannot be "
                              "created; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {path}: {parent} is not writable; choose a folder you "
                              "can write to")


def _check_out_file(path: str, option: str = "--out") -> Path:
    """Check, before any work, that a CSV may be written to ``path``: a new file, or an
    existing file the user named (it is replaced); never a folder or a file of a save."""
    from ttm_jax.io import OutputPathError, owned_by_save

    out = Path(path).absolute()
    if out.is_dir():
        raise OutputPathError(f"{option} {path} is a folder; give a file path for the CSV "
                              f"(e.g. {Path(path) / 'recs.csv'})")
    if out.exists() and not out.is_file():
        raise OutputPathError(f"{option} {path} exists and is not a regular file; choose "
                              "another path")
    if owned_by_save(out):
        raise OutputPathError(f"{option} {path} belongs to a saved model or checkpoint, which "
                              "writing it would break; choose a path outside its files")
    if out.exists() and not os.access(out, os.W_OK):
        raise OutputPathError(f"{option} {path} is read-only; choose another path, or make it "
                              "writable if it may be replaced")
    _check_parent(out, option)
    return out


def _check_new_folder(path: str, option: str = "--out") -> Path:
    """Check, before any work, that ``path`` is a new or empty folder we may create."""
    from ttm_jax.io import OutputPathError, owned_by_save

    out = Path(path).absolute()
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"{option} {path} is a file; give a new folder")
    if out.is_dir() and any(out.iterdir()):
        raise OutputPathError(f"{option} {path} is not empty; choose a new folder (nothing was "
                              "written)")
    if owned_by_save(out):
        raise OutputPathError(f"{option} {path} lies inside a saved model or checkpoint; choose "
                              "a folder outside it")
    _check_parent(out, option)
    return out


def _write_new_folder(out: Path, fill) -> None:
    """Fill a temporary folder beside ``out`` with ``fill(folder)``, then rename it to
    ``out`` (new, or empty: the rename replaces it). On any failure, the temporary
    folder and the parent folders created for it are removed: nothing is left."""
    created = [p for p in reversed(out.parents) if not p.exists()]
    for folder in created:
        folder.mkdir()
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()  # mode 0o777 less the umask
        fill(tmp)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


# --- fit -------------------------------------------------------------------------


#: The ``fit`` option that sets each configuration field, for messages.
_FIT_OPTIONS = {
    "hidden": "--hidden", "embedding_dim": "--embedding-dim", "activation": "--activation",
    "max_epochs": "--epochs", "batch_size": "--batch-size", "learning_rate": "--learning-rate",
    "penalty_weight": "--penalty-weight", "eval_every_epochs": "--eval-every",
    "patience": "--patience", "max_seconds": "--max-seconds", "optimizer": "--optimizer",
    "user_id_dropout": "--user-id-dropout", "item_id_dropout": "--item-id-dropout",
    "id_penalty_weight": "--id-penalty-weight", "id_updates": "--id-updates",
    "id_optimizer": "--id-optimizer", "missing_weight": "--missing-weight",
    "missing_rating": "--missing-rating",
}


def _fit_configs(args):
    """``(ModelConfig, TrainConfig)`` from the options; an error names the option."""
    from ttm_jax import checks
    from ttm_jax.config import ModelConfig, TrainConfig

    try:
        model_config = ModelConfig(hidden=args.hidden, embedding_dim=args.embedding_dim,
                                   activation=args.activation, user_ids=args.user_ids,
                                   item_ids=args.item_ids)
        train_config = TrainConfig(
            optimizer=args.optimizer,
            max_epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
            min_learning_rate=min(TrainConfig().min_learning_rate, args.learning_rate),
            penalty_weight=args.penalty_weight, eval_every_epochs=args.eval_every,
            patience=args.patience, max_seconds=args.max_seconds,
            user_id_dropout=args.user_id_dropout, item_id_dropout=args.item_id_dropout,
            id_penalty_weight=args.id_penalty_weight, id_updates=args.id_updates,
            id_optimizer=args.id_optimizer, missing_weight=args.missing_weight,
            missing_rating=args.missing_rating,
        )
    except checks.InvalidArgument as err:
        field = str(err).split("=", 1)[0].split("[", 1)[0]
        option = _FIT_OPTIONS.get(field)
        raise checks.InvalidArgument(f"{option}: {err}" if option else str(err)) from None
    checks.fraction("--validation-fraction", args.validation_fraction)
    checks.integer("--seed", args.seed, low=0, high=checks.SEED_MAX)
    checks.integer("--checkpoint-every", args.checkpoint_every, low=1)
    checks.integer("--ensemble", args.ensemble, low=1, high=1024)
    if args.seed + args.ensemble - 1 > checks.SEED_MAX:
        raise checks.InvalidArgument(
            f"--seed {args.seed} with --ensemble {args.ensemble}: the members' seeds "
            f"{args.seed} .. {args.seed + args.ensemble - 1} must stay at most "
            f"{checks.SEED_MAX}; use a smaller --seed")
    return model_config, train_config


#: The subfolder of ``--checkpoint-dir`` that holds member ``k``'s checkpoints with ``--ensemble``.
_MEMBER_DIR = "member-{k}"


def _checkpoint_dirs(args) -> list[str | None]:
    """Each member's checkpoint folder: ``--checkpoint-dir`` itself for one fit, its
    ``member-k/`` subfolders for ``--ensemble K``, refused if it holds anything else."""
    from ttm_jax.io.folders import check_holds_only

    if args.checkpoint_dir is None:
        return [None] * args.ensemble
    if args.ensemble == 1:
        return [args.checkpoint_dir]
    root = Path(args.checkpoint_dir)
    names = [_MEMBER_DIR.format(k=k) for k in range(args.ensemble)]
    check_holds_only(root, names, where=f"--checkpoint-dir {root}",
                     writer=f"fit --ensemble {args.ensemble}",
                     kept=f"member-0/ .. member-{args.ensemble - 1}/")
    return [str(root / name) for name in names]


def _check_fit_outputs(args) -> None:
    """Every output location of ``fit``, checked before any data is read or trained on."""
    from ttm_jax.io import OutputPathError, check_writable
    from ttm_jax.io.checkpoint import TRAINING_FORMAT
    from ttm_jax.io.saved_model import MODEL_FORMAT
    from ttm_jax.protocols import check_checkpoint_dir

    check_writable(args.model, MODEL_FORMAT)
    if args.checkpoint_dir is None:
        return
    model, ckpt = Path(args.model).resolve(), Path(args.checkpoint_dir).resolve()
    if model == ckpt or ckpt in model.parents or model in ckpt.parents:
        raise OutputPathError(f"--model {args.model} and --checkpoint-dir {args.checkpoint_dir} "
                              "overlap; give them separate folders")
    for folder in _checkpoint_dirs(args):
        if args.validation_fraction > 0:
            check_checkpoint_dir(folder)
        else:
            check_writable(folder, TRAINING_FORMAT)


def _read_fit_data(args):
    """``(RatingData, ratings table, user table, item table)``, every file checked."""
    from ttm_jax.data.ratings import RatingData
    from ttm_jax.data.tabular import check_covered, lookup_ids, read_covariates, read_ratings

    ratings = read_ratings(args.ratings, user_col=args.user_col, item_col=args.item_col,
                           rating_col=args.rating_col)
    users = read_covariates(args.user_features, id_col=args.user_col)
    items = read_covariates(args.item_features, id_col=args.item_col)
    u_rows = lookup_ids(ratings.users, users.ids, path=ratings.path, column=args.user_col,
                        known_from=str(users.path))
    i_rows = lookup_ids(ratings.items, items.ids, path=ratings.path, column=args.item_col,
                        known_from=str(items.path))
    if not args.allow_unrated:
        check_covered(users, ratings.users, used_in=ratings.path)
        check_covered(items, ratings.items, used_in=ratings.path)
    data = RatingData(users.features, items.features, u_rows, i_rows, ratings.ratings)
    return data, ratings, users, items


def _train(args, model_config, train_config, data):
    """``(selection result, model to save, refit epochs or None)``; with ``--ensemble K``,
    member 0's result and epochs and the mean of the ``K`` fits (seeds ``seed + k``), each
    fitted exactly as one fit of its seed (as ``TwoTowerRegressor(ensemble=K)`` does)."""
    from ttm_jax.model.ensemble import mean_model

    fits = [_train_one(args, model_config, train_config, data, args.seed + k, folder)
            for k, folder in enumerate(_checkpoint_dirs(args))]
    if len(fits) == 1:
        return fits[0]
    return fits[0][0], mean_model([model for _, model, _ in fits]), fits[0][2]


def _train_one(args, model_config, train_config, data, seed: int, checkpoint_dir):
    import jax

    from ttm_jax.model.init import init_model
    from ttm_jax.protocols import holdout_then_refit
    from ttm_jax.training.fit import fit

    init_key, fit_key = jax.random.split(jax.random.key(seed))
    progress = False if args.no_progress else None
    if args.validation_fraction > 0:
        out = holdout_then_refit(
            model_config, data, train_config, validation_fraction=args.validation_fraction,
            refit=args.refit, split_seed=seed, init_key=init_key,
            key=fit_key, progress=progress, checkpoint_dir=checkpoint_dir,
            checkpoint_every=args.checkpoint_every)
        return out.selection, out.model, None if out.refit is None else out.epochs
    model = init_model(model_config, data, key=init_key)
    result = fit(model, data, None, train_config, key=fit_key, progress=progress,
                 checkpoint_dir=checkpoint_dir, checkpoint_every=args.checkpoint_every)
    return result, result.model, None


def _outlier(ratings) -> str | None:
    """Where the ratings file holds a rating far outside the others, or ``None``."""
    from ttm_jax.data.ratings import outlying_rating

    k = outlying_rating(ratings.ratings)
    if k is None:
        return None
    return (f"the rating {ratings.ratings[k]:g} at {ratings.where(k)} is far outside the others "
            f"(median {np.median(ratings.ratings):g}): check it for a misplaced value, or "
            "rescale the ratings")


def _diverged(err, ratings) -> str:
    """The message for a diverged fit, pointing at an outlying rating's line if there is one."""
    outlier = _outlier(ratings)
    if outlier is not None:
        return f"training diverged, and {outlier}; nothing was saved"
    hint = " (--refit none saves the early-stopped model)" if err.selection is not None else ""
    return f"{err}; nothing was saved{hint}"


def _cmd_fit(args) -> int:
    from ttm_jax.io.saved_model import FeatureSchema, save_model
    from ttm_jax.model.ensemble import mean_model_config
    from ttm_jax.training.results import TrainingDivergedError

    # Options, output locations and files are all checked before training, and
    # the model is written only after training succeeded.
    model_config, train_config = _fit_configs(args)
    _check_fit_outputs(args)
    data, ratings, users, items = _read_fit_data(args)
    outlier = _outlier(ratings)
    if outlier is not None:
        # Not an error (it may be meant), but training on it rarely is: say so first.
        print(f"ttm_jax: warning: {outlier}", file=sys.stderr)
    try:
        result, model_out, refit_epochs = _train(args, model_config, train_config, data)
    except TrainingDivergedError as err:
        print(f"ttm_jax: error: {_diverged(err, ratings)}", file=sys.stderr)
        return 1

    schema = FeatureSchema(users.features.shape[1], items.features.shape[1],
                           users.columns, items.columns,
                           n_user_ids=model_out.user_tower.n_ids,
                           n_item_ids=model_out.item_tower.n_ids)
    summary = {
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
        "best_val_rmse": None if np.isnan(result.best_val_rmse) else result.best_val_rmse,
        "stop_reason": str(result.stop_reason), "seconds": round(result.seconds, 3),
        "seed": args.seed, "n_ratings": data.n_ratings, "refit_epochs": refit_epochs,
        "ensemble": args.ensemble,
    }
    path = save_model(
        args.model, model_out, mean_model_config(model_config, args.ensemble), schema=schema,
        arrays={
            "user_ids": users.ids, "item_ids": items.ids,
            "user_features": users.features, "item_features": items.features,
            "rated_users": data.user_ids, "rated_items": data.item_ids,
            "ratings": ratings.ratings,
        },
        metadata={"columns": {"user": args.user_col, "item": args.item_col,
                              "rating": args.rating_col},
                  "fit": summary,
                  "train_config": dict(vars(train_config))},
    )
    val = summary["best_val_rmse"]
    tables = [f"{side} ids" for side in ("user", "item")
              if getattr(model_config, f"{side}_ids")]
    if tables:
        print(f"id tables: {' and '.join(tables)} (one learnt row each, plus an unknown row "
              "for users or items the model has not met)")
    print(f"fitted on {data.n_ratings} ratings ({data.n_users} users, {data.n_items} items): "
          f"{result.epochs_run:g} epochs, stop: {result.stop_reason}"
          + (f", validation RMSE {val:.4f}" if val is not None else ""))
    if refit_epochs is not None:
        print(f"refitted on all {data.n_ratings} ratings for {refit_epochs} epochs ({args.refit})")
    if args.ensemble > 1:
        print(f"saved the mean of {args.ensemble} fits (seeds {args.seed} .. "
              f"{args.seed + args.ensemble - 1}; the lines above are the first's)")
    print(f"model saved to {path}")
    return 0


# --- model folder ------------------------------------------------------------------------


class _Stored:
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


# --- evaluate ------------------------------------------------------------------------------


def _cmd_evaluate(args) -> int:
    from ttm_jax.data.ratings import RatingData
    from ttm_jax.data.tabular import lookup_ids, read_ratings
    from ttm_jax.evaluate import evaluate
    from ttm_jax.serving.inference import score_pairs

    stored = _Stored(args.model)
    cols = stored.columns
    test = read_ratings(args.ratings, user_col=cols["user"], item_col=cols["item"],
                        rating_col=args.rating_col or cols["rating"])
    user_ids, user_x = stored.covariates("user", args.user_features)
    item_ids, item_x = stored.covariates("item", args.item_features)
    hint = " or in --{}-features".format
    u = lookup_ids(test.users, user_ids, path=test.path, column=cols["user"],
                   known_from=f"the model's training users{hint('user')}")
    i = lookup_ids(test.items, item_ids, path=test.path, column=cols["item"],
                   known_from=f"the model's training items{hint('item')}")
    data = RatingData(user_x, item_x, u, i, test.ratings)
    train = RatingData(user_x, item_x, stored.rated_users, stored.rated_items, stored.ratings)
    # Each distinct user and item is embedded once (by id where the model has an id
    # table and knows it; by covariates alone where it is new), then the pairs scored.
    users, inv_u = np.unique(u, return_inverse=True)
    items, inv_i = np.unique(i, return_inverse=True)
    pred = score_pairs(stored.model, stored.embed("user", user_x, users),
                       stored.embed("item", item_x, items), inv_u, inv_i)
    ev = evaluate(pred, data, train)
    groups = {name: getattr(ev, name) for name in ev._fields}
    report = {name: None if m is None else m._asdict() for name, m in groups.items()}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{'pairs':<10} {'n':>8} {'RMSE':>8} {'MAE':>8}")
        for name, m in groups.items():
            if m is not None:
                print(f"{name:<10} {m.n:>8d} {m.rmse:>8.4f} {m.mae:>8.4f}")
    return 0


# --- recommend -------------------------------------------------------------------------------


def _read_id_list(path: str, column: str) -> np.ndarray:
    from ttm_jax.data.tabular import TabularError, read_table

    p = Path(path)
    if p.suffix.lower() in (".csv", ".tsv", ".parquet", ".pq"):
        frame = read_table(p, (column,))
        if column not in frame.columns:
            raise TabularError(f"{p}: missing column {column!r}; the file has {list(frame.columns)}")
        return frame[column].to_numpy(dtype=str)
    if not p.is_file():
        raise TabularError(f"{p}: no such file")
    try:
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as err:
        line = p.read_bytes()[: err.start].count(b"\n") + 1
        raise TabularError(f"{p}, line {line}: not UTF-8 text; save the id list as UTF-8") from None
    return np.asarray([ln for ln in lines if ln], dtype=str)


def _cmd_recommend(args) -> int:
    from ttm_jax.data.tabular import TabularError
    from ttm_jax.serving.recommend import top_k

    out = None if args.out is None else _check_out_file(args.out)
    stored = _Stored(args.model)
    cols = stored.columns
    user_ids, user_x = stored.covariates("user", args.user_features)
    item_ids, item_x = stored.covariates("item", args.item_features)
    if args.item_features is not None:
        # Candidates: exactly the items of the given catalogue file.
        from ttm_jax.data.tabular import read_table

        cat = read_table(args.item_features, (cols["item"],))[cols["item"]].to_numpy(dtype=str)
        cand = np.flatnonzero(np.isin(item_ids, cat))
    else:
        cand = np.arange(item_ids.size)
    if args.users:
        wanted = np.asarray(args.users, dtype=str)
        source = "--users"
    elif args.users_file:
        wanted = _read_id_list(args.users_file, cols["user"])
        source = args.users_file
    elif args.user_features is not None:
        from ttm_jax.data.tabular import read_table

        wanted = read_table(args.user_features, (cols["user"],))[cols["user"]].to_numpy(dtype=str)
        source = args.user_features
    else:
        wanted, source = user_ids, "the model"
    index = {u: r for r, u in enumerate(user_ids)}
    rows = np.empty(wanted.size, np.int64)
    for j, u in enumerate(wanted):
        if u not in index:
            raise TabularError(f"{source}: user {str(u)!r} (position {j}) is unknown: it is not a "
                               "training user; give its covariates with --user-features")
        rows[j] = index[u]
    if args.k > cand.size:
        raise ValueError(f"-k {args.k} exceeds the {cand.size} candidate items")

    exclude = None
    if not args.include_seen:
        # Training ratings, mapped to (query row, candidate position).
        query_of = np.full(user_ids.size, -1, np.int64)
        query_of[rows[::-1]] = np.arange(rows.size)[::-1]
        pos_of = np.full(item_ids.size, -1, np.int64)
        pos_of[cand] = np.arange(cand.size)
        q, p = query_of[stored.rated_users], pos_of[stored.rated_items]
        keep = (q >= 0) & (p >= 0)
        exclude = (q[keep], p[keep])
        if np.unique(rows).size != rows.size:
            raise ValueError("--users lists a user twice; list each once")
    model = stored.model
    recs = top_k(stored.embed("user", user_x, rows), stored.embed("item", item_x, cand), args.k,
                 offset=float(np.float32(model.offset[...])), exclude=exclude)
    lines = [f"{cols['user']},rank,{cols['item']},score"]
    for j, u in enumerate(wanted):
        for r in range(args.k):
            pos = recs.item_ids[j, r]
            if pos < 0:
                break
            lines.append(f"{_csv_field(u)},{r + 1},{_csv_field(item_ids[cand[pos]])},"
                         f"{recs.scores[j, r]:.6g}")
    text = "\n".join(lines) + "\n"
    if out is not None:
        _write_atomic(out, text)
        print(f"{rows.size} users × {args.k} items written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


# --- embeddings --------------------------------------------------------------------------------


def _cmd_embeddings(args) -> int:
    from ttm_jax.serving.recommend import EmbeddingTables

    out = _check_new_folder(args.out)
    stored = _Stored(args.model)
    user_ids, user_x = stored.covariates("user", args.user_features)
    item_ids, item_x = stored.covariates("item", args.item_features)
    tables = EmbeddingTables(stored.embed("user", user_x, np.arange(user_ids.size)),
                             stored.embed("item", item_x, np.arange(item_ids.size)),
                             float(np.float32(stored.model.offset[...])))

    def fill(folder: Path) -> None:
        tables.save(folder)
        np.save(folder / "user_ids.npy", user_ids, allow_pickle=False)
        np.save(folder / "item_ids.npy", item_ids, allow_pickle=False)

    _write_new_folder(out, fill)
    print(f"{user_ids.size} user and {item_ids.size} item embeddings "
          f"(p = {tables.users.shape[1]}) written to {out}")
    return 0


# --- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from ttm_jax.io.folders import library_version

    parser = argparse.ArgumentParser(
        prog="ttm_jax",
        description="The two-tower recommender model: fit, evaluate, recommend.",
    )
    parser.add_argument("--version", action="version", version=f"ttm_jax {library_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = sub.add_parser(
        "fit", help="train a model on a ratings file and covariate tables",
        description="Train on RATINGS (user, item, rating columns) with covariates keyed by "
                    "the same ids; save the model folder only if everything succeeds.")
    fit.add_argument("--ratings", required=True, help="ratings file (.csv or .parquet)")
    fit.add_argument("--user-features", required=True,
                     help="user covariates, keyed by the user column")
    fit.add_argument("--item-features", required=True,
                     help="item covariates, keyed by the item column")
    fit.add_argument("--model", required=True, help="output model folder")
    fit.add_argument("--user-col", default="user", help="user id column (default: user)")
    fit.add_argument("--item-col", default="item", help="item id column (default: item)")
    fit.add_argument("--rating-col", default="rating", help="rating column (default: rating)")
    fit.add_argument("--allow-unrated", action="store_true",
                     help="keep covariate rows of users/items without ratings (default: an "
                          "error, as they are usually typos)")
    fit.add_argument("--validation-fraction", type=float, default=0.2,
                     help="ratings held out for early stopping (default: 0.2)")
    fit.add_argument("--refit", default="warm", choices=("warm", "scratch", "none"),
                     help="after early stopping on the held-out ratings, learn from all of them: "
                          "'warm' trains the early-stopped model on for a short share of its "
                          "epochs, 'scratch' trains a fresh model for all of them, 'none' saves "
                          "the early-stopped model (default: warm, as TwoTowerRegressor())")
    # Architecture and optimiser defaults are the library's (ModelConfig(),
    # TrainConfig()), so the command line and TwoTowerRegressor() train the same model.
    from ttm_jax.config import (
        ACTIVATION_NAMES,
        ID_OPTIMIZERS,
        ID_UPDATES,
        OPTIMIZERS,
        ModelConfig,
        TrainConfig,
    )

    mc, tc = ModelConfig(), TrainConfig()
    fit.add_argument("--hidden", type=_hidden, default=mc.hidden,
                     help=f"hidden widths of each tower (default: {','.join(map(str, mc.hidden))})")
    fit.add_argument("--embedding-dim", type=int, default=mc.embedding_dim,
                     help=f"p, the embedding width (default: {mc.embedding_dim})")
    fit.add_argument("--activation", default=mc.activation, choices=ACTIVATION_NAMES,
                     help=f"σ (default: {mc.activation})")
    fit.add_argument("--user-ids", action="store_true",
                     help="give the user tower an id table: a learnt row per user, added to its "
                          "first layer (the hybrid model); users without a training rating, and "
                          "new users, read its unknown row")
    fit.add_argument("--item-ids", action="store_true",
                     help="give the item tower an id table (as --user-ids)")
    fit.add_argument("--user-id-dropout", type=float, default=tc.user_id_dropout,
                     help="probability per rating that the user id is replaced by the unknown "
                          "row while training, which trains the covariate-only path of cold "
                          f"users (default: {tc.user_id_dropout:g})")
    fit.add_argument("--item-id-dropout", type=float, default=tc.item_id_dropout,
                     help=f"as --user-id-dropout, for item ids (default: {tc.item_id_dropout:g})")
    fit.add_argument("--id-penalty-weight", type=float, default=None,
                     help="λ of the id tables' penalty (default: the --penalty-weight)")
    fit.add_argument("--id-updates", default=tc.id_updates, choices=ID_UPDATES,
                     help="update every id row each step (dense) or only the rows the "
                          "minibatch reads (rows: for tables of millions of users; "
                          f"default: {tc.id_updates})")
    fit.add_argument("--id-optimizer", default=tc.id_optimizer, choices=ID_OPTIMIZERS,
                     help="the id tables' optimiser: the same as the rest, or rowwise_adagrad "
                          f"(one number of state per row; default: {tc.id_optimizer})")
    fit.add_argument("--missing-weight", type=float, default=tc.missing_weight,
                     help="w_m: every unrated (user, item) pair counts as a rating "
                          "--missing-rating of this weight (an observed rating weighs 1), "
                          "which improves top-k lists at some cost in RMSE (Steck 2010; "
                          f"default: {tc.missing_weight:g}, off)")
    fit.add_argument("--missing-rating", type=float, default=tc.missing_rating,
                     help="r_m, the rating an unrated pair counts as, in the ratings' units "
                          f"(default: {tc.missing_rating:g})")
    fit.add_argument("--optimizer", default=tc.optimizer, choices=OPTIMIZERS,
                     help=f"the optimiser (default: {tc.optimizer})")
    fit.add_argument("--epochs", type=int, default=tc.max_epochs,
                     help=f"epoch budget; early stopping usually ends sooner (default: "
                          f"{tc.max_epochs})")
    fit.add_argument("--batch-size", type=int, default=tc.batch_size,
                     help=f"ratings per step (default: {tc.batch_size})")
    fit.add_argument("--learning-rate", type=float, default=tc.learning_rate,
                     help=f"initial step size (default: {tc.learning_rate:g})")
    fit.add_argument("--penalty-weight", type=float, default=tc.penalty_weight,
                     help=f"λ of the {tc.penalty.upper()} penalty (default: {tc.penalty_weight:g})")
    fit.add_argument("--eval-every", type=int, default=tc.eval_every_epochs,
                     help=f"epochs between validation checks (default: {tc.eval_every_epochs})")
    fit.add_argument("--patience", type=int, default=tc.patience,
                     help=f"validation checks without improvement before stopping (default: "
                          f"{tc.patience})")
    fit.add_argument("--max-seconds", type=float, default=None,
                     help="wall-clock budget of each fit, in seconds (default: no limit)")
    fit.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    fit.add_argument("--ensemble", type=int, default=1,
                     help="K: fit K models with seeds seed .. seed+K-1 and save their mean, one "
                          "two-tower model K times as wide (K times the cost, a lower RMSE; "
                          "default: 1)")
    fit.add_argument("--checkpoint-dir", default=None,
                     help="checkpoint training here and resume from it if present "
                          "(default: no checkpoints)")
    fit.add_argument("--checkpoint-every", type=int, default=1,
                     help="validation checks between checkpoints (default: 1)")
    fit.add_argument("--no-progress", action="store_true",
                     help="no progress report (default: a bar on a terminal, a line per "
                          "check when stderr is a file)")
    fit.set_defaults(run=_cmd_fit)

    ev = sub.add_parser(
        "evaluate", help="RMSE and MAE of a model on a ratings file",
        description="Score a ratings file with a model folder; pairs are reported overall and "
                    "split into warm (user and item seen in training) and cold.")
    ev.add_argument("--model", required=True, help="model folder written by fit")
    ev.add_argument("--ratings", required=True, help="ratings to score (.csv or .parquet)")
    ev.add_argument("--rating-col", default=None, help="rating column (default: as in fit)")
    ev.add_argument("--user-features", default=None,
                    help="covariates of users not seen in training (or updated ones)")
    ev.add_argument("--item-features", default=None,
                    help="covariates of items not seen in training (or updated ones)")
    ev.add_argument("--json", action="store_true", help="print JSON")
    ev.set_defaults(run=_cmd_evaluate)

    rec = sub.add_parser(
        "recommend", help="top-k items per user",
        description="Exact top-k items for known users (by id) or new users (with "
                    "--user-features), over the training items or the catalogue given with "
                    "--item-features. Items a user rated in training are left out unless "
                    "--include-seen. Writes CSV: user, rank, item, score.")
    rec.add_argument("--model", required=True, help="model folder written by fit")
    rec.add_argument("-k", type=int, default=10, help="items per user (default: 10)")
    rec.add_argument("--users", nargs="+", help="user ids")
    rec.add_argument("--users-file", help="file of user ids (one per line, or a table with "
                                          "the user column)")
    rec.add_argument("--user-features", default=None,
                     help="covariates of new users; without --users, recommend for all of them")
    rec.add_argument("--item-features", default=None,
                     help="candidate catalogue (covariates keyed by item id); default: the "
                          "training items")
    rec.add_argument("--include-seen", action="store_true",
                     help="also recommend items the user rated in training")
    rec.add_argument("--out", help="output CSV (default: standard output)")
    rec.set_defaults(run=_cmd_recommend)

    emb = sub.add_parser(
        "embeddings", help="export user and item embeddings as .npy for a vector index",
        description="Write user_embeddings.npy [n_users, p], item_embeddings.npy [n_items, p], "
                    "offset.npy, user_ids.npy and item_ids.npy to a new folder.")
    emb.add_argument("--model", required=True, help="model folder written by fit")
    emb.add_argument("--out", required=True, help="new output folder")
    emb.add_argument("--user-features", default=None, help="add or update user covariates")
    emb.add_argument("--item-features", default=None, help="add or update item covariates")
    emb.set_defaults(run=_cmd_embeddings)
    return parser


def _message(err: Exception) -> str:
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}; check the path and its permissions"
    return str(err)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input or an unusable path)."""
    from ttm_jax.data.tabular import TabularError
    from ttm_jax.io import CheckpointError, OutputPathError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (TabularError, CheckpointError, OutputPathError, ValueError, OSError) as err:
        print(f"ttm_jax: error: {_message(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
