#!/usr/bin/env bash
# MAML-TRPO on 2D navigation (paper configuration, preset `navigation`, seed 0), then evaluation on
# 40 held-out tasks (grad steps 0..3) and the learning curve. Resumable: re-run with RESUME=1; extra
# arguments are config overrides (e.g. RESUME=1 scripts/rl_navigation.sh num_batches=400); OUT=DIR writes
# elsewhere (OUT=results/navigation-softplus scripts/rl_navigation.sh nonlinearity=softplus).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-results/navigation}"
if [[ "${RESUME:-0}" == 1 ]]; then
  OMP_NUM_THREADS=1 python scripts/rl_train.py "$@" --resume "$OUT" --no-progress
else
  OMP_NUM_THREADS=1 python scripts/rl_train.py navigation num_threads=1 seed=0 "$@" --out "$OUT" --no-progress
fi
OMP_NUM_THREADS=1 python scripts/rl_evaluate.py "$OUT" --num-tasks 40 --grad-steps 3 --seed 1000 --episodes-per-task 40 --no-random --out "$OUT/eval.json"
python scripts/rl_plot_curve.py "$OUT"
