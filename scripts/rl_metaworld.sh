#!/usr/bin/env bash
# MAML-TRPO on a Meta-World preset (ml1-reach, ml1-push, ml10; the Meta-World+ protocol, seed SEED, default 0)
# into OUT (default results/<preset>/seed-<SEED>), with THREADS (default 1) torch threads. Long:
# checkpoints every 5 meta-batches; continue with RESUME=1 (a finished run is left untouched). Afterwards,
# unless SKIP_EVAL=1: evaluation on the 50 held-out tasks (one inner step, seed 1000; MAML and a random
# initialisation), then the learning and adaptation curves. Extra arguments are config overrides.
#   scripts/rl_metaworld.sh ml1-reach                 RESUME=1 scripts/rl_metaworld.sh ml1-reach
#   OUT=results/ml1-reach/fast-lr-1e-4 scripts/rl_metaworld.sh ml1-reach fast_lr=1e-4
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET="${1:?usage: scripts/rl_metaworld.sh PRESET [key=value ...]}"
shift
SEED="${SEED:-0}"
OUT="${OUT:-results/$PRESET/seed-$SEED}"
THREADS="${THREADS:-1}"
export OMP_NUM_THREADS="$THREADS"
if [[ "${RESUME:-0}" == 1 ]]; then
  rlmaml train --resume "$OUT" --no-progress "$@"
else
  rlmaml train "$PRESET" num_threads="$THREADS" seed="$SEED" "$@" --out "$OUT" --no-progress
fi
if [[ "${SKIP_EVAL:-0}" != 1 ]]; then
  rlmaml evaluate "$OUT" --num-tasks 50 --grad-steps 1 --seed 1000 --out "$OUT/eval.json"
  rlmaml plot "$OUT" --only adaptation
fi
rlmaml plot "$OUT" --only learning
