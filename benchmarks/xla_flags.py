"""XLA CPU options against the default training step: time per step, and whether the result moves.

XLA reads ``XLA_FLAGS`` once, when JAX starts its backend, so each option runs in
a fresh Python process. Each process times the library's jitted training chunk
(``benchmarks/common.time_train_chunk``: ``--steps`` steps of ``TrainConfig()``
per dispatch, best of ``--repeats``) on the data the README's example trains on
(SPEC §6, (1500, 1500, 20), seed 0: the hold-out fit's 56,000 ratings), and
reports the last minibatch loss to every digit, so an option that changes the
arithmetic shows. The options run in ``--rounds`` interleaved rounds (A B C …
A B C …), so that the machine's drift meets all of them alike; the verdict
compares each option's median best time with the default's (no flag), and
calls it a gain only when it is faster in every round.

Run:  python benchmarks/xla_flags.py [--rounds 3] [--steps 200] [--repeats 5]
                                    [--option=--xla_cpu_... ...]
Writes benchmarks/out/xla_flags.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import provenance

HERE = Path(__file__).resolve().parent

#: The options tried: XLA CPU's own (names as in this jaxlib), the default first.
OPTIONS = (
    "",
    "--xla_cpu_use_thunk_runtime=false",
    "--xla_cpu_use_onednn=true",
    "--xla_cpu_use_xnnpack=true",
    "--xla_cpu_prefer_vector_width=512",
    "--xla_cpu_enable_concurrency_optimized_scheduler=true",
    "--xla_cpu_enable_fast_math=true",
)

CHILD = """
import json, sys
sys.path.insert(0, {here!r})
import jax
from common import time_train_chunk
from ttm_jax import ModelConfig, TrainConfig, init_model, make_synthetic, random_split
data, _ = make_synthetic(1500, 1500, 100000, intrinsic_dim=20, seed=0)
part = random_split(random_split(data, 0.3, seed=0).train, 0.2, seed=0).train
model = init_model(ModelConfig(), part, key=jax.random.key(0))
t = time_train_chunk(model, part, TrainConfig(), "entity", {steps}, {repeats})
print(json.dumps({{"ms_per_step": 1000 * t["seconds_best"] / {steps},
                  "first_s": t["first_s"], "final_mse": t["final_mse"]}}))
"""


def time_option(flag: str, steps: int, repeats: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=flag)
    proc = subprocess.run([sys.executable, "-c", CHILD.format(here=str(HERE), steps=steps,
                                                              repeats=repeats)],
                          capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1][:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--option", action="append", dest="options", metavar="XLA_FLAGS",
                    help="an XLA_FLAGS value to try, written --option=--xla_cpu_...; "
                         "repeat for more; --option= is the default (no flag); "
                         "default: the default and the six OPTIONS")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args(argv)
    args.options = list(OPTIONS) if args.options is None else args.options
    runs: dict[str, list[dict]] = {flag: [] for flag in args.options}
    t0 = time.perf_counter()
    for r in range(args.rounds):
        for flag in args.options:
            res = time_option(flag, args.steps, args.repeats)
            runs[flag].append(res)
            shown = res.get("error") or f"{res['ms_per_step']:.2f} ms a step, loss {res['final_mse']!r}"
            print(f"round {r + 1}: {flag or '(default)'}: {shown}", flush=True)
    base = runs.get("", [])
    rows = []
    for flag, results in runs.items():
        ok = [x for x in results if "error" not in x]
        if not ok:
            rows.append({"flag": flag, "error": results[0]["error"]})
            continue
        ms = [x["ms_per_step"] for x in ok]
        row = {"flag": flag, "ms_per_step": ms, "median_ms": statistics.median(ms),
               "same_result": (all(x["final_mse"] == base[0]["final_mse"] for x in ok)
                               if base and "error" not in base[0] else None)}
        if base and flag:
            base_ms = [x["ms_per_step"] for x in base]
            row["ratio_to_default"] = row["median_ms"] / statistics.median(base_ms)
            row["faster_every_round"] = len(ms) == len(base_ms) and all(
                a < b for a, b in zip(ms, base_ms))
        rows.append(row)
    report = {**provenance(__file__, argv), "wall_seconds": time.perf_counter() - t0,
              "steps": args.steps, "repeats": args.repeats, "rounds": args.rounds, "rows": rows}
    print("\n| XLA_FLAGS | ms a step, per round | median / default's | faster in every round "
          "| same loss to the last bit |\n|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| `{row['flag']}` | refused: {row['error']} | | | |")
            continue
        print(f"| `{row['flag'] or '(none: the default)'}` | "
              + ", ".join(f"{m:.2f}" for m in row["ms_per_step"])
              + f" | {row.get('ratio_to_default', 1.0):.3f} | "
              + {True: "yes", False: "no", None: "—"}[row.get("faster_every_round")]
              + f" | {'yes' if row['same_result'] else 'no'} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "xla_flags.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out / 'xla_flags.json'}")
    return report


if __name__ == "__main__":
    main()
