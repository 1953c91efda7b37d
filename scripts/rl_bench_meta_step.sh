#!/usr/bin/env bash
# Time paper-config 2D-navigation meta-batches (20 tasks × 20 episodes × H 100, second-order MAML-TRPO,
# 10 CG iterations) with THREADS torch threads (default 2, both cores here): wall time and process CPU time,
# medians over 3 batches.
# Appends one JSON object per run to results/navigation/bench-meta-step.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=results/navigation/bench-meta-step.jsonl
OMP_NUM_THREADS="${THREADS:-2}" python -c "import sys; from rlmaml.cli import main; sys.exit(main(sys.argv[1:]))" \
  bench meta-step --preset navigation --batches "${BATCHES:-3}" --num-threads "${THREADS:-2}" | tee -a "$OUT"
