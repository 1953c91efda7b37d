#!/usr/bin/env bash
# MAML-TRPO on 2D navigation (paper configuration, preset `navigation`, seed 0) into results/navigation/preset,
# then evaluation on 40 held-out tasks (grad steps 0..3, 40 episodes per task and step) and the learning curve.
# Resumable: re-run with RESUME=1; extra arguments are config overrides (e.g. RESUME=1 scripts/rl_navigation.sh
# num_batches=400); OUT=DIR writes elsewhere (OUT=results/navigation/softplus scripts/rl_navigation.sh
# nonlinearity=softplus).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-results/navigation/preset}"
export OMP_NUM_THREADS=1
if [[ "${RESUME:-0}" == 1 ]]; then
  rlmaml train --resume "$OUT" --no-progress "$@"
else
  rlmaml train navigation num_threads=1 seed=0 "$@" --out "$OUT" --no-progress
fi
rlmaml evaluate "$OUT" --num-tasks 40 --grad-steps 3 --seed 1000 --episodes-per-task 40 --no-random --out "$OUT/eval.json"
rlmaml plot "$OUT" --only learning
