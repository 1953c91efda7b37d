#!/usr/bin/env bash
# MAML-TRPO on HalfCheetahVel (paper configuration, preset `halfcheetah-vel`, seed 0): 500 meta-batches of
# 40 tasks × 20 episodes × H 200. Long: checkpoints every 5 batches; continue with RESUME=1.
# Afterwards: evaluation on 40 held-out tasks (grad steps 0..3) and the learning curve.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=results/halfcheetah-vel
if [[ "${RESUME:-0}" == 1 ]]; then
  OMP_NUM_THREADS=2 python scripts/rl_train.py --resume "$OUT" --no-progress "$@"
else
  OMP_NUM_THREADS=2 python scripts/rl_train.py halfcheetah-vel num_threads=2 seed=0 --out "$OUT" --no-progress "$@"
fi
if [[ "${SKIP_EVAL:-0}" != 1 ]]; then
  OMP_NUM_THREADS=1 python scripts/rl_evaluate.py "$OUT" --num-tasks 40 --grad-steps 3 --seed 1000 --out "$OUT/eval.json"
fi
python scripts/rl_plot_curve.py "$OUT"
