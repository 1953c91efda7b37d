#!/usr/bin/env bash
# Meta-batches of a preset (default halfcheetah-vel) on one process against 1 and 2 Ray workers at equal total
# cores (all of them), from the same θ_0 and seeds: median sample, update and total seconds over BATCHES
# (default 3) after one warm-up batch, bytes sent and received, round trips per TRPO step, overhead = Ray / local.
# Writes one JSON object to OUT (default results/studies/bench/distributed-<preset>.json). Needs the ray extra.
#   PRESET=ant-dir BATCHES=2 scripts/bench_distributed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET="${PRESET:-halfcheetah-vel}"
OUT="${OUT:-results/studies/bench/distributed-$PRESET.json}"
mkdir -p "$(dirname "$OUT")"
MUJOCO_GL="${MUJOCO_GL:-egl}" rlmaml bench distributed --preset "$PRESET" --workers 1 2 --batches "${BATCHES:-3}" "$@" \
  | grep '^{' > "$OUT"
cat "$OUT"
