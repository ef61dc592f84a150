"""The ``fit`` command: options to configurations, outputs checked, files read, training, saving."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

__all__ = ["run_fit"]


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


def run_fit(args) -> int:
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
