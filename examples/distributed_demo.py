"""A runnable multi-process data-parallel training example (``jax.distributed``).

Launch two processes on this machine and check they train as one device would::

    python examples/distributed_demo.py --launch 2 --out /tmp/demo.npz

or start each process yourself (on one host or several; same command, its own
``--process-id``; the coordinator is process 0's host and a free port)::

    python examples/distributed_demo.py --coordinator host0:12355 --num-processes 2 --process-id 0
    python examples/distributed_demo.py --coordinator host0:12355 --num-processes 2 --process-id 1

Every process builds the same synthetic data from the same seed (in real use,
each reads the same files), joins the job with
:func:`ttm_jax.training.initialize_distributed` (gloo collectives on CPU), and
trains with :func:`ttm_jax.fit` over a mesh of the devices of all processes
(``mesh=data_parallel_mesh()``: the same loop, with the arrays placed on the
mesh). Process 0 writes the test-set predictions and the validation curve to
``--out``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from typing import NamedTuple

__all__ = ["DemoProblem", "demo_problem", "launch", "main"]


class DemoProblem(NamedTuple):
    """The example's data and settings, the same in every process."""

    split: object  # ttm_jax.data.Split
    model_config: object  # ttm_jax.ModelConfig
    train_config: object  # ttm_jax.TrainConfig
    init_seed: int
    fit_seed: int


def demo_problem() -> DemoProblem:
    """A small SPEC §6-style problem, small enough for a CPU test."""
    import ttm_jax as ttm

    data, _ = ttm.make_synthetic(150, 120, 5000, intrinsic_dim=3, ambient_dim=6,
                                 coef_range=0.5, noise_var=0.01, seed=0)
    split = ttm.random_split(data, 0.2, 0.2, seed=0)
    return DemoProblem(
        split,
        ttm.ModelConfig(hidden=(16, 16), embedding_dim=4),
        ttm.TrainConfig(max_epochs=6, eval_every_epochs=2, batch_size=256, tower_mode="rating"),
        init_seed=0,
        fit_seed=1,
    )


def worker(coordinator: str, num_processes: int, process_id: int, out: str | None) -> None:
    """One process of the job: join, train data-parallel, and (process 0) save the result."""
    from ttm_jax.training.distributed import initialize_distributed

    initialize_distributed(coordinator, num_processes, process_id, initialization_timeout=120)
    import jax
    import numpy as np

    import ttm_jax as ttm
    from ttm_jax.training import data_parallel_mesh

    p = demo_problem()
    model = ttm.init_model(p.model_config, p.split.train, key=jax.random.key(p.init_seed))
    mesh = data_parallel_mesh()
    res = ttm.fit(model, p.split.train, p.split.validation, p.train_config,
                  key=jax.random.key(p.fit_seed), mesh=mesh, progress=False)
    print(f"process {jax.process_index()}/{jax.process_count()}: {mesh.devices.size} devices in "
          f"all, {jax.local_device_count()} here; validation RMSE {res.best_val_rmse:.5f}",
          flush=True)
    if process_id == 0 and out:
        # Every process holds the same trained model; one of them reports it.
        test = p.split.test
        pred = ttm.predict_pairs(res.model, test.user_features, test.item_features,
                                 test.user_ids, test.item_ids)
        np.savez(out, predictions=pred, val_rmse=res.history.val_rmse,
                 n_devices=mesh.devices.size, n_processes=jax.process_count())
    jax.distributed.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(num_processes: int, out: str | None, *, timeout: float = 300.0) -> None:
    """Start ``num_processes`` workers on localhost and wait for all of them.

    Raises:
      RuntimeError: a worker failed or timed out (with the tail of its output).
    """
    coordinator = f"127.0.0.1:{_free_port()}"
    procs = []
    for pid in range(num_processes):
        cmd = [sys.executable, os.path.abspath(__file__), "--coordinator", coordinator,
               "--num-processes", str(num_processes), "--process-id", str(pid)]
        if out and pid == 0:
            cmd += ["--out", out]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, env=dict(os.environ)))
    deadline = time.monotonic() + timeout
    failed = None
    outputs = []
    for pid, proc in enumerate(procs):
        try:
            text, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate()
            failed = failed or (pid, f"timed out after {timeout:.0f} s")
        outputs.append(text)
        if proc.returncode and failed is None:
            failed = (pid, f"exit status {proc.returncode}")
        if failed is not None:
            for other in procs:
                if other.poll() is None:
                    other.kill()
    for text in outputs:
        lines = [ln for ln in text.splitlines() if ln.startswith("process ")]
        print("\n".join(lines))
    if failed is not None:
        pid, why = failed
        tail = "\n".join(outputs[pid].splitlines()[-20:]) if pid < len(outputs) else ""
        raise RuntimeError(f"worker {pid} failed ({why}):\n{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python examples/distributed_demo.py",
        description="Multi-process data-parallel training of the two-tower model (example).")
    parser.add_argument("--launch", type=int, metavar="N",
                        help="start N processes on localhost and wait for them")
    parser.add_argument("--coordinator", help="host:port of process 0 (worker mode)")
    parser.add_argument("--num-processes", type=int, help="processes in the job (worker mode)")
    parser.add_argument("--process-id", type=int, help="this process's index (worker mode)")
    parser.add_argument("--out", help="process 0 writes predictions and curves here (.npz)")
    args = parser.parse_args(argv)
    if args.launch:
        launch(args.launch, args.out)
        return 0
    if args.coordinator is None or args.num_processes is None or args.process_id is None:
        parser.error("give --launch N, or all of --coordinator, --num-processes, --process-id")
    worker(args.coordinator, args.num_processes, args.process_id, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
