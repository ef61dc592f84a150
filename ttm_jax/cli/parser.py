"""The command line's parser and entry point: ``main`` runs one command and returns its exit status."""

from __future__ import annotations

import argparse
import sys

from ttm_jax.cli.fitting import run_fit
from ttm_jax.cli.scoring import run_embeddings, run_evaluate, run_recommend

__all__ = ["build_parser", "main"]


def _hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give comma-separated widths, e.g. 100,100") from None
    return widths



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
    fit.set_defaults(run=run_fit)

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
    ev.set_defaults(run=run_evaluate)

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
    rec.set_defaults(run=run_recommend)

    emb = sub.add_parser(
        "embeddings", help="export user and item embeddings as .npy for a vector index",
        description="Write user_embeddings.npy [n_users, p], item_embeddings.npy [n_items, p], "
                    "offset.npy, user_ids.npy and item_ids.npy to a new folder.")
    emb.add_argument("--model", required=True, help="model folder written by fit")
    emb.add_argument("--out", required=True, help="new output folder")
    emb.add_argument("--user-features", default=None, help="add or update user covariates")
    emb.add_argument("--item-features", default=None, help="add or update item covariates")
    emb.set_defaults(run=run_embeddings)
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
