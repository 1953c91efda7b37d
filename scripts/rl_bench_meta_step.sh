#!/usr/bin/env bash
# Time one paper-config 2D-navigation meta-batch (20 tasks × 20 episodes × H 100, second-order MAML-TRPO)
# with 1 and 2 torch threads; writes results/bench/meta-step-navigation.json (one JSON object per line).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results/bench
OUT=results/bench/meta-step-navigation.jsonl
: > "$OUT"
for threads in 1 2; do
  python -c "import sys; from rlmaml.cli import main; sys.exit(main(sys.argv[1:]))" \
    bench meta-step --preset navigation --batches 3 --num-threads "$threads" | tee -a "$OUT"
done
