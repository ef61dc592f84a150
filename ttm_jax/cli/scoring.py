"""The commands that score with a saved model: ``evaluate``, ``recommend`` and ``embeddings``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ttm_jax.cli.outputs import check_new_folder, check_out_file, write_atomic, write_new_folder
from ttm_jax.cli.stored import StoredModel

__all__ = ["run_embeddings", "run_evaluate", "run_recommend"]


# --- evaluate ------------------------------------------------------------------------------


def run_evaluate(args) -> int:
    from ttm_jax.data.ratings import RatingData
    from ttm_jax.data.tabular import lookup_ids, read_ratings
    from ttm_jax.evaluate import evaluate
    from ttm_jax.serving.inference import score_pairs

    stored = StoredModel(args.model)
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


def run_recommend(args) -> int:
    from ttm_jax.data.tabular import TabularError
    from ttm_jax.serving.recommend import top_k

    out = None if args.out is None else check_out_file(args.out)
    stored = StoredModel(args.model)
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
        write_atomic(out, text)
        print(f"{rows.size} users × {args.k} items written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


# --- embeddings --------------------------------------------------------------------------------


def run_embeddings(args) -> int:
    from ttm_jax.serving.recommend import EmbeddingTables

    out = check_new_folder(args.out)
    stored = StoredModel(args.model)
    user_ids, user_x = stored.covariates("user", args.user_features)
    item_ids, item_x = stored.covariates("item", args.item_features)
    tables = EmbeddingTables(stored.embed("user", user_x, np.arange(user_ids.size)),
                             stored.embed("item", item_x, np.arange(item_ids.size)),
                             float(np.float32(stored.model.offset[...])))

    def fill(folder: Path) -> None:
        tables.save(folder)
        np.save(folder / "user_ids.npy", user_ids, allow_pickle=False)
        np.save(folder / "item_ids.npy", item_ids, allow_pickle=False)

    write_new_folder(out, fill)
    print(f"{user_ids.size} user and {item_ids.size} item embeddings "
          f"(p = {tables.users.shape[1]}) written to {out}")
    return 0
