"""benchmarks/train_speed.py counts a tower's training FLOPs as XLA does."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from train_speed import flops_per_row

from ttm_jax import ModelConfig


@pytest.mark.parametrize("hidden", [(200, 200), (64,), (32, 48, 16)])
def test_the_counted_flops_are_xlas_for_a_training_step_of_the_tower(hidden):
    cfg = ModelConfig(hidden=hidden, embedding_dim=30)
    widths = [50, *hidden, 30]
    keys = jax.random.split(jax.random.key(0), len(widths))
    weights = [jax.random.normal(k, (a, b)) for k, a, b in zip(keys, widths[:-1], widths[1:])]
    x = jax.random.normal(keys[-1], (512, 50))

    def loss(ws):
        h = x
        for w in ws[:-1]:
            h = jax.nn.silu(h @ w)
        return jnp.sum((h @ ws[-1]) ** 2)

    flops = jax.jit(jax.grad(loss)).lower(weights).compile().cost_analysis()
    flops = (flops[0] if isinstance(flops, list) else flops)["flops"]
    counted = 512 * flops_per_row(50, cfg)
    # XLA also counts the activations and the loss (a few FLOPs per unit): within 5%.
    assert counted == pytest.approx(flops, rel=0.05)
