#!/usr/bin/env bash
# One prepared GPU session for Table 1's TTM column: continue the resumable run
# (benchmarks/table1_cache) on the accelerator and bring the new per-run JSON
# files back. The cache only grows: a run cut off by the time limit keeps every
# (setting, replication) it finished, and the next session resumes from them.
# A λ grid cut off mid-way leaves a checkpoint in benchmarks/out/table1/checkpoints
# (ignored by git, kept on a warm device machine), from which the next call resumes.
#
# Usage (on a machine with a GPU and JAX's CUDA plugin):
#   bash benchmarks/gpu_table1.sh                        # the paper's 50 replications, λ tuned once
#   TUNE=each REPS=50 bash benchmarks/gpu_table1.sh      # the paper's protocol: λ tuned per replication
#   SETTINGS=1-9 REPS=5 LIMIT=540 bash benchmarks/gpu_table1.sh   # the committed CPU table's size
# The table's options must match the CPU run's for the cache files to be the same runs
# (their keys hold every option): REPS only adds replications.
# On the device tool, $OUT comes back (at most 8 files), so the new cache files
# are packed into one tarball: unpack it here with
#   tar -xzf <files_at>/table1_cache_new.tgz
set -uo pipefail
OUT=${OUT:-benchmarks/out/gpu}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
# Bit-reproducible scatter-adds on GPU (see docs/index.md, determinism).
export XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_deterministic_ops=true"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/device.txt"
touch /tmp/table1_start
TUNE_FLAG=--tune-once
[ "${TUNE:-once}" = each ] && TUNE_FLAG=
timeout "${LIMIT:-540}" python3 benchmarks/table1.py --methods ttm $TUNE_FLAG --cv-folds 3 \
  --settings "${SETTINGS:-1-9}" --reps "${REPS:-50}" --no-progress --out-dir "$OUT" \
  --checkpoints benchmarks/out/table1/checkpoints \
  2>&1 | grep -v -i warn | tee "$OUT/table1_ttm.txt"
find benchmarks/table1_cache -name '*.json' -newer /tmp/table1_start -print0 \
  | tar -czf "$OUT/table1_cache_new.tgz" --null -T -
tar -tzf "$OUT/table1_cache_new.tgz" | wc -l | sed 's/$/ new cache files/' | tee -a "$OUT/table1_ttm.txt"
