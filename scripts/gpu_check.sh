#!/usr/bin/env bash
# The GPU checks in one go, on a machine with CUDA and the project's dependencies importable: the CUDA tests
# (tests/test_cuda.py: meta-gradient and Fisher-vector product equal to the CPU's in float64, a short training
# run that follows the CPU run), then MAML-TRPO meta-batch timings on the CPU and on the GPU side by side for
# PRESETS (default: navigation halfcheetah-vel), BATCHES timed batches each (default 2, after one warm-up).
# One JSON object per preset and device is appended to $OUT/gpu-check.jsonl (OUT default results/studies/bench).
#   scripts/gpu_check.sh                      OUT=/tmp/out PRESETS=navigation scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-results/studies/bench}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MUJOCO_GL="${MUJOCO_GL:-egl}"
python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device: nothing to check")'
python3 -m pytest -q -rs tests/test_cuda.py
for preset in ${PRESETS:-navigation halfcheetah-vel}; do
  for device in cpu cuda; do
    rlmaml bench meta-step --preset "$preset" --batches "${BATCHES:-2}" --device "$device" | tee -a "$OUT/gpu-check.jsonl"
  done
done
