"""Scaling: training cost per rating and peak memory as |Ω| grows, and top-k latency
as the catalogue grows.

Training: SPEC §6-style synthetic data (D_u = D_i = 50, d = 20, p = 30) with
|Ω| = 10^5, 10^6, 10^7 ratings over n_users = |Ω|/10 and n_items = |Ω|/100 (so
10^6 users and 10^5 items at the top). Each size runs in its own process, which
generates the data in chunks, builds the ``RatingData``, and times the jitted
``lax.scan`` training chunk of ``fit`` (default ``ModelConfig()``,
``TrainConfig()``: batch 32,768, Muon, tower mode "auto") for a fixed number of
steps after compilation, for the covariate-only model and for the hybrid model
(``ModelConfig(user_ids=True, item_ids=True)``: an id table per side, updated
row-wise with row-wise Adagrad, ``TrainConfig(id_updates="rows",
id_optimizer="rowwise_adagrad")``). Cost per rating = seconds / (steps × batch). Peak
memory is the process's maximum resident set size (``getrusage`` ru_maxrss),
data generation included, so it bounds the training peak from above.

Top-k: exact top-10 (``ttm_jax.serving.recommend.top_k``, chunks of 65,536 items) over
catalogues of 10^4, 10^5, 10^6 items, with the item embeddings (p = 30)
computed and laid out on the device once (``index_items``), as a server would;
latency per user for a batch of 256 users and for a single user, plus the time
to embed and index the catalogue once.

Ratios are against the smallest size. Run:

    python benchmarks/scale.py                 # ~10 minutes on a 2-core CPU
    python benchmarks/scale.py --quick         # smaller sizes, a smoke test

Writes benchmarks/out/scale.json and benchmarks/out/scale.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _synthetic(n_users: int, n_items: int, n_ratings: int, seed: int):
    """SPEC §6 data generated in chunks (``make_synthetic`` holds [|Ω|, p] float64 at once)."""
    import numpy as np

    from ttm_jax import RatingData, make_synthetic
    from ttm_jax.data.synthetic import sample_pairs

    # A tiny draw gives the true maps f*, g* and the covariate sampler.
    _, truth = make_synthetic(4, 4, 4, intrinsic_dim=20, ambient_dim=50, seed=seed)
    rng = np.random.default_rng(seed + 1)
    x_u = truth.sample_users(n_users, rng)
    x_i = truth.sample_items(n_items, rng)
    step = 100_000

    def embed(fn, x):
        return np.concatenate([fn(x[s : s + step]).astype(np.float32)
                               for s in range(0, x.shape[0], step)])

    u_emb, i_emb = embed(truth.user_map, x_u), embed(truth.item_map, x_i)
    users, items = sample_pairs(n_users, n_items, n_ratings, rng)
    ratings = np.empty(n_ratings, np.float32)
    step = 1_000_000
    for s in range(0, n_ratings, step):
        sl = slice(s, s + step)
        clean = np.einsum("np,np->n", u_emb[users[sl]], i_emb[items[sl]])
        ratings[sl] = clean + rng.normal(0.0, math.sqrt(truth.noise_var), clean.shape[0])
    del u_emb, i_emb
    return RatingData(x_u, x_i, users, items, ratings)


def train_worker(n_ratings: int, steps: int, repeats: int, seed: int, ids: bool) -> dict:
    import jax
    from common import time_train_chunk

    from ttm_jax import ModelConfig, TrainConfig, init_model
    from ttm_jax.training import resolve_tower_mode

    t0 = time.perf_counter()
    n_users, n_items = max(10, n_ratings // 10), max(10, n_ratings // 100)
    data = _synthetic(n_users, n_items, n_ratings, seed)
    gen_s = time.perf_counter() - t0
    rss_data = _peak_rss_gib()

    # The hybrid model updates only the id rows each minibatch reads (id_updates="rows"):
    # a dense update of a [10^6, 200] table and its moments every step would cost more
    # than the towers.
    # Its tables take row-wise Adagrad (one accumulator per row) rather than Muon's Adam
    # branch (two moments per entry: 1.6 GB more at 10^6 users).
    config = (TrainConfig(id_updates="rows", id_optimizer="rowwise_adagrad") if ids
              else TrainConfig())
    mode = resolve_tower_mode(config.tower_mode, n_users, n_items, config.batch_size,
                              config.id_updates)
    # The hybrid model (SPEC §1): the same towers plus an id table per side, a learnt
    # row per user and item ([n + 1, 200] each) added to the first layer.
    model_config = ModelConfig(user_ids=ids, item_ids=ids)
    model = init_model(model_config, data, key=jax.random.key(seed))
    timing = time_train_chunk(model, data, config, mode, steps, repeats)
    best, times, compile_s = timing["seconds_best"], timing["seconds_all"], timing["first_s"]
    return {
        "model": "hybrid" if ids else "covariates",
        "n_ratings": n_ratings, "n_users": n_users, "n_items": n_items, "tower_mode": mode,
        "batch_size": config.batch_size, "steps": steps, "repeats": repeats,
        "seconds_best": best, "seconds_all": times,
        "ns_per_rating": best / (steps * config.batch_size) * 1e9,
        "ratings_per_s": steps * config.batch_size / best,
        "peak_rss_gib": _peak_rss_gib(), "rss_after_data_gib": rss_data,
        "generate_s": gen_s, "first_chunk_s": compile_s,
        "final_mse": timing["final_mse"],
    }


def topk_worker(n_items: int, k: int, batch: int, repeats: int, seed: int) -> dict:
    import jax
    import numpy as np

    from ttm_jax import ModelConfig, embed_items, embed_users, make_synthetic
    from ttm_jax.model import build_model
    from ttm_jax.serving.recommend import index_items, top_k

    _, truth = make_synthetic(4, 4, 4, intrinsic_dim=20, ambient_dim=50, seed=seed)
    rng = np.random.default_rng(seed)
    x_i = truth.sample_items(n_items, rng)
    x_u = truth.sample_users(batch, rng)
    model = build_model(ModelConfig(), 50, 50)
    embed_items(model, x_i[:1000])  # compile
    t0 = time.perf_counter()
    v = embed_items(model, x_i)
    embed_s = time.perf_counter() - t0
    u = embed_users(model, x_u)
    del x_i
    t0 = time.perf_counter()
    index = index_items(v)  # once per catalogue, as a server would
    index.chunks.block_until_ready()
    index_s = time.perf_counter() - t0
    out = {"n_items": n_items, "k": k, "batch_users": batch, "embed_catalogue_s": embed_s,
           "index_s": index_s}
    for name, users in (("batch", u), ("single", u[:1])):
        top_k(users, index, k)  # compile
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            top_k(users, index, k)
            times.append(time.perf_counter() - t0)
        out[f"{name}_ms_per_user"] = min(times) / users.shape[0] * 1e3
    out["peak_rss_gib"] = _peak_rss_gib()
    del jax
    return out


def _spawn(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e5, 1e6, 1e7],
                        help="|Ω| values (default 1e5 1e6 1e7)")
    parser.add_argument("--catalogues", type=float, nargs="+", default=[1e4, 1e5, 1e6],
                        help="item counts for top-k (default 1e4 1e5 1e6)")
    # 20 steps of the default batch (32,768) are 655,360 ratings per repeat.
    parser.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="sizes 1e4, 1e5; catalogues "
                                                             "1e3, 1e4; 20 steps")
    parser.add_argument("--out", type=Path, default=OUT,
                        help="folder for scale.json and scale.md (default: benchmarks/out)")
    parser.add_argument("--models", nargs="+", choices=["covariates", "hybrid"],
                        default=["covariates", "hybrid"],
                        help="covariate-only towers, and the hybrid model with id tables "
                             "(default: both, at every size)")
    parser.add_argument("--ids", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["train", "topk"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "train":
        print(json.dumps(train_worker(int(args.n), args.steps, args.repeats, args.seed,
                                      args.ids)))
        return
    if args.worker == "topk":
        print(json.dumps(topk_worker(int(args.n), 10, 256, args.repeats, args.seed)))
        return
    if args.quick:
        args.sizes, args.catalogues, args.steps = [1e4, 1e5], [1e3, 1e4], 20

    common = ["--steps", str(args.steps), "--repeats", str(args.repeats), "--seed",
              str(args.seed)]
    train_rows = []
    for n in args.sizes:
        for name in args.models:
            row = _spawn(["--worker", "train", "--n", str(int(n)), *common]
                         + (["--ids"] if name == "hybrid" else []))
            train_rows.append(row)
            print(f"|Ω|={row['n_ratings']:>10,d} {name:>10}  {row['ns_per_rating']:8.1f} "
                  f"ns/rating  peak RSS {row['peak_rss_gib']:.2f} GiB", flush=True)
    topk_rows = []
    for m in args.catalogues:
        row = _spawn(["--worker", "topk", "--n", str(int(m)), *common])
        topk_rows.append(row)
        print(f"items={row['n_items']:>10,d}  {row['batch_ms_per_user']:8.3f} ms/user (batch), "
              f"{row['single_ms_per_user']:8.3f} ms (single)", flush=True)

    tbase = topk_rows[0]
    base = {r["model"]: r for r in reversed(train_rows)}  # each model's smallest size
    same_size = {(r["model"], r["n_ratings"]): r for r in train_rows}
    lines = [
        "| |Ω| | users | items | model | tower mode | ratings/s | ns per rating | ratio to "
        "smallest | hybrid ÷ covariates | peak RSS (GiB) | RSS after data (GiB) |",
        "|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in train_rows:
        cov = same_size.get(("covariates", r["n_ratings"]))
        vs = (f"{r['ns_per_rating'] / cov['ns_per_rating']:.2f}"
              if r["model"] == "hybrid" and cov else "")
        lines.append(
            f"| {r['n_ratings']:,} | {r['n_users']:,} | {r['n_items']:,} | {r['model']} | "
            f"{r['tower_mode']} | {r['ratings_per_s']:,.0f} | {r['ns_per_rating']:.1f} | "
            f"{r['ns_per_rating'] / base[r['model']]['ns_per_rating']:.2f} | {vs} | "
            f"{r['peak_rss_gib']:.2f} | {r['rss_after_data_gib']:.2f} |")
    lines += [
        "",
        "| items | ms per user (batch of 256) | ratio | ms, single user | ratio | "
        "embed catalogue (s) | index (s) | peak RSS (GiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in topk_rows:
        lines.append(
            f"| {r['n_items']:,} | {r['batch_ms_per_user']:.3f} | "
            f"{r['batch_ms_per_user'] / tbase['batch_ms_per_user']:.1f} | "
            f"{r['single_ms_per_user']:.2f} | "
            f"{r['single_ms_per_user'] / tbase['single_ms_per_user']:.1f} | "
            f"{r['embed_catalogue_s']:.2f} | {r['index_s']:.3f} | {r['peak_rss_gib']:.2f} |")
    table = "\n".join(lines)
    print()
    print(table)
    import jax

    meta = {"date": datetime.date.today().isoformat(), "machine": platform.platform(),
            "cpu_count": __import__("os").cpu_count(), "jax": jax.__version__,
            "backend": jax.default_backend(), "command": " ".join(["python", *sys.argv])}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(
        {"meta": meta, "train": train_rows, "topk": topk_rows}, indent=1))
    (args.out / "scale.md").write_text(f"{table}\n\n{json.dumps(meta)}\n")
    print(f"\nwrote {args.out / 'scale.json'} and {args.out / 'scale.md'}")


if __name__ == "__main__":
    main()
