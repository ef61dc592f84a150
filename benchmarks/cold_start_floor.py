"""What bounds a cold user's RMSE on MovieLens-100K: their own offset, which covariates lack.

On each split of the cold-start study of ``benchmarks/movielens.py`` (20% of users
held out, ``cold_start_split(data, user_fraction=0.2, test_fraction=0.2, seed=s)``)
it measures, on the held-out users' ratings, three predictors of the residual
``r − μ − b_i`` (``μ`` the training mean, ``b_i`` the item's training mean offset
shrunk by ``SHRINK`` pseudo-ratings):

- **item bias**: 0, i.e. ``μ + b_i``, what a model that knows nothing of the user
  predicts;
- **covariate offset**: a ridge regression (``sklearn.linear_model.RidgeCV``) of
  the training users' mean residuals on their covariates, weighted by their
  number of ratings: the user offset that the covariates predict;
- **oracle offset**: each held-out user's own mean residual on their test
  ratings. It reads the test ratings, so no model can have it; it measures how
  much of the cold-user error is the user's unknown offset.

It prints the mean squared errors per seed and their means, with the
out-of-sample R² of the covariate offset against the oracle one, and (when
``--movielens-json`` holds the study's results) the TTM column's cold-user MSE
beside them: the error a cold-user model leaves once the offset is out of reach.

Usage::

  python benchmarks/cold_start_floor.py --data ../shared/datasets/ml-100k --seeds 10
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
from common import machine, mean_se
from sklearn.linear_model import RidgeCV

from ttm_jax import RatingData, cold_start_split, read_movielens

#: Pseudo-ratings that shrink an item's mean offset towards 0 (items with few ratings).
SHRINK = 10.0
#: The ridge penalties RidgeCV chooses from (leave-one-out over training users).
ALPHAS = np.logspace(-2, 3, 20)


class ColdFloor(NamedTuple):
    """One split's mean squared errors on its held-out users' ratings (rating units²)."""

    seed: int
    n_cold_ratings: int
    item_bias: float
    covariate_offset: float
    oracle_offset: float
    covariate_r2: float  # out of sample: covariate offset against the oracle offset


def cold_floor(data: RatingData, train: RatingData, test: RatingData, seed: int) -> ColdFloor:
    """The three predictors' MSE on the pairs of ``test`` whose user has no rating in ``train``.

    ``data`` supplies the covariates (``user_features [n_users, D_u]``); ``train`` and
    ``test`` index the same users and items.
    """
    seen = np.unique(train.user_ids)
    cold = ~np.isin(test.user_ids, seen)
    if not cold.any():
        raise ValueError(f"seed {seed}: the test set has no held-out user; pass a cold-start split")
    mu = float(np.mean(train.ratings))
    n_items, n_users = data.n_items, data.n_users
    n_i = np.bincount(train.item_ids, minlength=n_items)
    b_i = np.bincount(train.item_ids, weights=train.ratings - mu, minlength=n_items) / (n_i + SHRINK)

    users, items = test.user_ids[cold], test.item_ids[cold]
    resid = test.ratings[cold] - mu - b_i[items]
    n_u = np.bincount(users, minlength=n_users)
    oracle = np.bincount(users, weights=resid, minlength=n_users) / np.maximum(n_u, 1)

    train_resid = train.ratings - mu - b_i[train.item_ids]
    n_tu = np.bincount(train.user_ids, minlength=n_users)[seen]
    target = np.bincount(train.user_ids, weights=train_resid, minlength=n_users)[seen] / n_tu
    x = np.asarray(data.user_features, dtype=np.float64)
    ridge = RidgeCV(alphas=ALPHAS).fit(x[seen], target, sample_weight=n_tu)
    predicted = ridge.predict(x)

    def mse(e: np.ndarray) -> float:
        return float(np.mean(e**2))

    spread = mse(oracle[users] - np.mean(oracle[users]))
    return ColdFloor(
        seed=seed,
        n_cold_ratings=int(cold.sum()),
        item_bias=mse(resid),
        covariate_offset=mse(resid - predicted[users]),
        oracle_offset=mse(resid - oracle[users]),
        covariate_r2=1.0 - mse(oracle[users] - predicted[users]) / spread,
    )


def _ttm_cold_mse(path: Path, n_seeds: int) -> list[float] | None:
    """Per-seed cold-user MSE of the study's best TTM column, if its JSON is there."""
    if not path.is_file():
        return None
    rmse = json.loads(path.read_text())["cold"]["ttm_ensemble"]["cold_user"]
    return [r * r for r in rmse[:n_seeds]] if len(rmse) >= n_seeds else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(
        os.environ.get("TTM_DATA_DIR", "../shared/datasets"), "ml-100k"),
        help="folder holding u.data, u.user, u.item (default: $TTM_DATA_DIR/ml-100k "
             "or ../shared/datasets/ml-100k)")
    ap.add_argument("--seeds", type=int, default=10, help="splits 0 .. seeds − 1 (default 10)")
    ap.add_argument("--movielens-json", default="benchmarks/results/movielens.json",
                    help="the cold-start study's results, for TTM's column (optional)")
    ap.add_argument("--json", default="benchmarks/out/cold_start_floor.json",
                    help="where to write the results (default: %(default)s)")
    args = ap.parse_args(argv)
    if args.seeds < 2:
        ap.error(f"--seeds {args.seeds}: at least 2, for a standard error")
    folder = Path(args.data)
    if not folder.is_dir():
        ap.error(f"--data {folder}: no such folder; pass the folder holding MovieLens-100K's "
                 "u.data (or set TTM_DATA_DIR)")

    data = read_movielens(folder).data
    rows = []
    print("| seed | cold ratings | item bias | + covariate offset | + oracle offset | R² |")
    print("|---|---|---|---|---|---|")
    for s in range(args.seeds):
        split = cold_start_split(data, user_fraction=0.2, test_fraction=0.2, seed=s)
        row = cold_floor(data, split.train, split.test, s)
        rows.append(row)
        print(f"| {s} | {row.n_cold_ratings} | {row.item_bias:.4f} | {row.covariate_offset:.4f} "
              f"| {row.oracle_offset:.4f} | {row.covariate_r2:+.3f} |", flush=True)

    summary = {f: mean_se(getattr(r, f) for r in rows)
               for f in ("item_bias", "covariate_offset", "oracle_offset", "covariate_r2")}
    ttm = _ttm_cold_mse(Path(args.movielens_json), args.seeds)
    if ttm is not None:
        summary["ttm_ensemble"] = mean_se(ttm)
    print("\nmean squared error on held-out users' ratings, mean (s.e.) over seeds; "
          "RMSE = √ of the mean MSE:")
    for name, (m, se) in summary.items():
        root = "" if name == "covariate_r2" else f"  (RMSE {np.sqrt(m):.4f})"
        print(f"  {name:17s} {m:.4f} ({se:.4f}){root}")
    offset = summary["item_bias"][0] - summary["oracle_offset"][0]
    print(f"\nthe users' own offsets: {offset:.4f} of the item-bias MSE "
          f"{summary['item_bias'][0]:.4f}; covariates predict R² "
          f"{summary['covariate_r2'][0]:+.3f} of them out of sample")
    if ttm is not None:
        gain = summary["item_bias"][0] - summary["ttm_ensemble"][0]
        print(f"TTM (hybrid, tuned, mean of 5) takes {gain:.4f} off the item-bias MSE; an RMSE of "
              f"1.00 (a mean squared error of 1.00) needs {summary['item_bias'][0] - 1.0:.4f}")

    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "meta": {"command": " ".join(["python", "benchmarks/cold_start_floor.py",
                                      *(sys.argv[1:] if argv is None else argv)]),
                 "date": datetime.date.today().isoformat(), "machine": machine(),
                 "shrink": SHRINK},
        "seeds": [r._asdict() for r in rows],
        "summary": {k: {"mean": m, "se": se} for k, (m, se) in summary.items()},
    }, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
