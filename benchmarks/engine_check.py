"""Table 1's setting 1, replication 0, rerun from scratch against its committed cache figure.

The one-engine rewrite (issue 18) had to keep behaviour: this reruns the cached
TTM figure of Table 1's first setting ((1500, 1500, 20), replication 0) on
today's engine with the configuration that produced it (the previous default,
frozen in ``time_to_accuracy.REFERENCE``; λ = the value the cached run's
25-point grid chose, read from the cache file; early stopping on the 20%
hold-out; the refit from scratch) and prints both test RMSEs and their
difference. The verdict (fixed before the run): within 0.01.

Run:  python benchmarks/engine_check.py      (about 8 minutes on 2 cores)
Writes OUT/engine_check.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import table1
from common import machine
from time_to_accuracy import REFERENCE

CACHED = Path(__file__).resolve().parent / "table1_cache" / "s1-1500x1500x20-r0-ttm-62507503da.json"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = ap.parse_args(argv)
    cached = json.loads(CACHED.read_text())
    model_cfg, train_cfg, refit = REFERENCE
    s_idx, rep = 1, 0
    split = table1.train_test(table1.SETTINGS[s_idx - 1], s_idx, rep, table1.N_RATINGS)
    rerun = table1.score_ttm(split.train, split.test, 1000 * s_idx + rep, model_cfg, train_cfg,
                             (cached["best_lambda"],), refit)
    difference = rerun["test_rmse"] - cached["test_rmse"]
    report = {"command": "python benchmarks/engine_check.py", "date": datetime.date.today().isoformat(),
              "machine": machine(), "cached": cached, "rerun": rerun, "difference": difference,
              "passes": abs(difference) <= 0.01}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "engine_check.json").write_text(json.dumps(report, indent=1))
    print(f"setting 1, replication 0, TTM test RMSE: cached {cached['test_rmse']:.5f} "
          f"(kept epoch {cached['best_epoch']:g}), rerun {rerun['test_rmse']:.5f} "
          f"(kept epoch {rerun['best_epoch']:g}, {rerun['fit_seconds']:.0f} s); difference "
          f"{difference:+.5f}: {'within' if report['passes'] else 'NOT within'} 0.01")
    return report


if __name__ == "__main__":
    main()
