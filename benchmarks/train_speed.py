"""Training-step throughput: tower outputs per rating vs once per entity, and its GFLOP/s.

For each batch size, times the same jitted ``lax.scan`` training chunk in the
two tower modes on SPEC §6 data (1500 users × 1500 items, 70,000 training
ratings by default) and prints ratings per second and the ratio
entity / rating. Both modes run in this one process, interleaved, so the ratio
is measured against a baseline under the same conditions.

Beside ratings per second it prints the achieved GFLOP/s of the towers'
matrix products and their fraction of a float32 matmul peak measured in the
same process (a square ``jnp.dot``, best of several): how far the step is from
what this machine's matmul can do. The FLOPs are counted from the widths: a
layer ``a → b`` costs ``2ab`` per row forward, ``2ab`` for its weight gradient
and ``2ab`` for its input gradient (not for the first layer, whose input is
data); a step runs the towers on ``2B`` rows in rating mode and on every user
and item (``n + m`` rows) in entity mode.

Run:  python benchmarks/train_speed.py [--batch-sizes 256 1024 4096 16384] [--seed 0]
Writes benchmarks/out/train_speed.json and benchmarks/out/train_speed.png.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from common import time_train_chunk

from ttm_jax import ModelConfig, TrainConfig, init_model, make_synthetic


def time_mode(data, model_cfg, batch_size, mode, steps, repeats, seed):
    """Ratings per second and GFLOP/s of ``steps`` training steps per dispatch."""
    config = TrainConfig(batch_size=batch_size)
    model = init_model(model_cfg, data, key=jax.random.key(seed))
    timing = time_train_chunk(model, data, config, mode, steps, repeats)
    rows = 2 * batch_size if mode == "rating" else data.n_users + data.n_items
    flops = steps * rows * flops_per_row(data.user_features.shape[1], model_cfg)
    return steps * batch_size / timing["seconds_best"], flops / timing["seconds_best"] / 1e9


def flops_per_row(in_features: int, model_cfg: ModelConfig) -> int:
    """Training FLOPs of one tower on one row: forward, weight and input gradients."""
    widths = [in_features, *model_cfg.hidden, model_cfg.embedding_dim]
    layers = list(zip(widths[:-1], widths[1:]))
    forward = sum(2 * a * b for a, b in layers)
    return forward + forward + (forward - 2 * layers[0][0] * layers[0][1])


def matmul_peak_gflops(n: int = 2048, repeats: int = 7) -> float:
    """This process's float32 matmul rate: the best of ``repeats`` ``[n, n] @ [n, n]``."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    dot(a, a).block_until_ready()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        dot(a, a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024, 4096, 16384, 32768])
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--items", type=int, default=1500)
    ap.add_argument("--ratings", type=int, default=70_000)
    ap.add_argument("--ratings-per-repeat", type=int, default=400_000,
                    help="ratings processed per timed repeat (sets the steps per dispatch)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, required=False, default=0,
                    help="seed of the synthetic data and initialisation")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = ap.parse_args(argv)

    data, _ = make_synthetic(args.users, args.items, args.ratings, seed=args.seed)
    model_cfg = ModelConfig()
    device = jax.devices()[0]
    print(f"device: {device.device_kind} ({device.platform}); model hidden={model_cfg.hidden}, "
          f"p={model_cfg.embedding_dim}; {args.users} users x {args.items} items, "
          f"|Ω|={args.ratings}; seed={args.seed}")
    peak = matmul_peak_gflops()
    print(f"float32 matmul peak in this process: {peak:.1f} GFLOP/s (2048 x 2048, best of 7)")
    print(f"{'batch':>7} {'per-rating r/s':>15} {'GFLOP/s':>8} {'of peak':>8} "
          f"{'per-entity r/s':>15} {'GFLOP/s':>8} {'of peak':>8} {'entity/rating':>14}")
    rows = []
    for b in args.batch_sizes:
        steps = max(4, args.ratings_per_repeat // b)
        rating, rating_gf = time_mode(data, model_cfg, b, "rating", steps, args.repeats,
                                      args.seed)
        entity, entity_gf = time_mode(data, model_cfg, b, "entity", steps, args.repeats,
                                      args.seed)
        rows.append(dict(batch_size=b, steps_per_dispatch=steps, rating_per_s=rating,
                         entity_per_s=entity, ratio=entity / rating,
                         rating_gflops=rating_gf, entity_gflops=entity_gf,
                         rating_peak_fraction=rating_gf / peak,
                         entity_peak_fraction=entity_gf / peak))
        print(f"{b:>7} {rating:>15,.0f} {rating_gf:>8.1f} {rating_gf / peak:>8.2f} "
              f"{entity:>15,.0f} {entity_gf:>8.1f} {entity_gf / peak:>8.2f} "
              f"{entity / rating:>13.2f}x", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    meta = dict(matmul_peak_gflops=peak, device=device.device_kind, platform=device.platform,
                machine=platform.node(),
                date=time.strftime("%Y-%m-%d"), jax=jax.__version__, args=vars(args) | {
                    "out": str(args.out)})
    tag = "" if device.platform == "cpu" else f"_{device.platform}"
    (args.out / f"train_speed{tag}.json").write_text(json.dumps(dict(meta=meta, rows=rows),
                                                                indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        bs = [r["batch_size"] for r in rows]
        ax.loglog(bs, [r["rating_per_s"] for r in rows], "o-", label="towers per rating")
        ax.loglog(bs, [r["entity_per_s"] for r in rows], "s-", label="towers per entity")
        ax.set_xlabel("batch size")
        ax.set_ylabel("training ratings / s")
        ax.set_title(f"train step throughput ({device.platform})")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out / f"train_speed{tag}.png", dpi=120)
    except ImportError:
        pass
    print(f"wrote {args.out}/train_speed{tag}.json")
    return rows


if __name__ == "__main__":
    main()
