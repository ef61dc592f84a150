#!/usr/bin/env bash
# One prepared GPU session: check the library runs unchanged on the accelerator,
# then time it. Results go to $OUT (or benchmarks/out/gpu when OUT is unset).
# Usage (on a machine with a GPU and JAX's CUDA plugin):  bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-benchmarks/out/gpu}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if [ "${USE_WHL:-0}" = 1 ] && [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
python3 -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())" | tee -a "$OUT/device.txt"
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_train.py tests/test_model.py 2>&1 | tail -5 | tee "$OUT/tests.txt"
timeout 120 python3 benchmarks/train_speed.py --batch-sizes 256 1024 4096 16384 --out "$OUT" 2>&1 | tee "$OUT/train_speed.txt"
timeout "${TUNE_SECONDS:-240}" python3 benchmarks/tune_default.py --max-seconds 30 --candidates base decay lr1e-2-decay width200 depth3-width200 lam3e-4 lam2e-3 gelu batch1024 adamw-wd1e-2 adamw-wd1e-1 lr1e-2 p50 tanh relu depth2 raw-inputs width50 lr1e-3 batch1024-lr1e-3 paper-sgd --out "$OUT" 2>&1 | tee "$OUT/tune.txt"
