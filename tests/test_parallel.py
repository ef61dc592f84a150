"""Data-parallel training agrees with one device: over 4 local (simulated) devices,
and over 2 processes joined by jax.distributed on localhost.

Both run in subprocesses: the device count must be set before JAX starts, and
this pytest process keeps its single device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np

import ttm_jax as ttm

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
from distributed_demo import demo_problem  # noqa: E402

FOUR_DEVICES = textwrap.dedent(
    """
    import json, os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, numpy as np
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    import ttm_jax as ttm
    sys.path.insert(0, EXAMPLES)
    from distributed_demo import demo_problem
    from ttm_jax.training import data_parallel_mesh, fit_members, init_train_state
    from ttm_jax.training.distributed import replicate
    from ttm_jax.training.step import Batch, Tables, make_train_chunk

    p = demo_problem()
    model = ttm.init_model(p.model_config, p.split.train, key=jax.random.key(p.init_seed))
    key = jax.random.key(p.fit_seed)
    args = (model, p.split.train, p.split.validation, p.train_config)
    one = ttm.fit(*args, key=key, progress=False)
    mesh = data_parallel_mesh()
    four = ttm.fit(*args, key=key, mesh=mesh, progress=False)
    # Members (here a λ grid) on the mesh: the same loop, the same placement.
    grid_one = ttm.fit_lambda_grid(*args, lambdas=[1e-4, 1e-2], key=key, progress=False)
    grid_four = ttm.fit_lambda_grid(*args, lambdas=[1e-4, 1e-2], key=key, mesh=mesh,
                                    progress=False)
    test = p.split.test
    pred = lambda m: ttm.predict_pairs(m, test.user_features, test.item_features,
                                       test.user_ids, test.item_ids)
    # The hybrid model: id tables replicated on every device, id dropout drawn per rating,
    # and the missing-rating term's pairs drawn per step and split like the minibatch.
    hybrid_config = p.model_config.replace(user_ids=True, item_ids=True)
    hybrid = ttm.init_model(hybrid_config, p.split.train, key=jax.random.key(p.init_seed))
    hybrid_train = p.train_config.replace(user_id_dropout=0.3, item_id_dropout=0.1,
                                          missing_weight=0.05, missing_rating=1.0)
    hargs = (hybrid, p.split.train, p.split.validation, hybrid_train)
    hybrid_one = ttm.fit(*hargs, key=key, progress=False)
    hybrid_four = ttm.fit(*hargs, key=key, mesh=mesh, progress=False)
    try:
        ttm.fit(*args[:3], p.train_config.replace(batch_size=254), key=key, mesh=mesh)
        bad_batch = "accepted"
    except ValueError as err:
        bad_batch = str(err)
    # The compiled step works on a quarter of the batch per device and all-reduces.
    graphdef, state = init_train_state(model, p.train_config, 1)
    tr = p.split.train
    chunk = make_train_chunk(graphdef, p.train_config, "rating", 1, 1, mesh=mesh)
    states = jax.tree_util.tree_map(lambda x: x[None], state)
    hlo = chunk.lower(
        *replicate((states, Tables(tr.user_features, tr.item_features),
                    Batch(tr.user_ids, tr.item_ids, tr.ratings),
                    jax.random.key_data(key)[None]), mesh)
    ).compile().as_text()
    print(json.dumps({
        "devices": mesh.devices.size,
        "one": pred(one.model).tolist(), "four": pred(four.model).tolist(),
        "hybrid_one": pred(hybrid_one.model).tolist(),
        "hybrid_four": pred(hybrid_four.model).tolist(),
        "hybrid_moved": float(np.abs(np.asarray(pred(hybrid_one.model))
                                     - np.asarray(pred(one.model))).max()),
        "val_one": one.history.val_rmse.tolist(), "val_four": four.history.val_rmse.tolist(),
        "grid_one": grid_one.val_rmse.tolist(), "grid_four": grid_four.val_rmse.tolist(),
        "bad_batch": bad_batch, "all_reduce": "all-reduce" in hlo,
        "local_batch": "f32[64,6]" in hlo,
    }))
    """
).replace("EXAMPLES", repr(str(EXAMPLES)))


def _run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def test_four_devices_train_like_one(tmp_path):
    script = tmp_path / "four_devices.py"
    script.write_text(FOUR_DEVICES)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = json.loads(_run([sys.executable, str(script)], env=env).splitlines()[-1])
    assert out["devices"] == 4
    one, four = np.asarray(out["one"]), np.asarray(out["four"])
    # Same minibatches; only the order of the gradient sums differs.
    np.testing.assert_allclose(four, one, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["val_four"], out["val_one"], rtol=1e-4)
    np.testing.assert_allclose(out["grid_four"], out["grid_one"], rtol=1e-4)
    # The hybrid model (id tables, id dropout) trains alike on 4 devices and on one, and is
    # a different model from the covariate-only one.
    np.testing.assert_allclose(out["hybrid_four"], out["hybrid_one"], rtol=1e-4, atol=1e-4)
    assert out["hybrid_moved"] > 1e-3
    assert "batch_size=254 is not a multiple of the mesh's 4 devices" in out["bad_batch"]
    assert out["all_reduce"] and out["local_batch"]


def test_two_processes_on_localhost_train_like_one_device(tmp_path):
    out = tmp_path / "two.npz"
    log = _run([sys.executable, str(EXAMPLES / "distributed_demo.py"), "--launch", "2",
                "--out", str(out)])
    assert "process 0/2: 2 devices in all, 1 here" in log
    assert "process 1/2: 2 devices in all, 1 here" in log
    two = np.load(out)

    # The reference: the same problem on this process's single device.
    p = demo_problem()
    model = ttm.init_model(p.model_config, p.split.train, key=jax.random.key(p.init_seed))
    one = ttm.fit(model, p.split.train, p.split.validation, p.train_config,
                  key=jax.random.key(p.fit_seed), progress=False)
    test = p.split.test
    pred = ttm.predict_pairs(one.model, test.user_features, test.item_features,
                             test.user_ids, test.item_ids)
    assert int(two["n_processes"]) == 2
    np.testing.assert_allclose(two["predictions"], pred, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(two["val_rmse"], one.history.val_rmse, rtol=1e-4)
