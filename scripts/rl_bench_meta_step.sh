#!/usr/bin/env bash
# Time MAML-TRPO meta-batches of a preset (default navigation: 20 tasks × 20 episodes × H 100, second order,
# 10 CG iterations) with THREADS torch threads (default 2, both cores here): wall time and process CPU time,
# medians over BATCHES batches (default 3) after one warm-up batch.
# Appends one JSON object per run to OUT (default results/<preset>/preset/bench-meta-step.jsonl). Extra
# arguments are config overrides, e.g. fisher_tasks=5 (Fisher-vector products on 5 of the 20 tasks).
#   PRESET=halfcheetah-vel BATCHES=1 scripts/rl_bench_meta_step.sh fisher_tasks=0
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET="${PRESET:-navigation}"
OUT="${OUT:-results/$PRESET/preset/bench-meta-step.jsonl}"
mkdir -p "$(dirname "$OUT")"
OMP_NUM_THREADS="${THREADS:-2}" rlmaml bench meta-step --preset "$PRESET" --batches "${BATCHES:-3}" \
  --num-threads "${THREADS:-2}" "$@" | tee -a "$OUT"
