#!/usr/bin/env bash
# Videos of a trained HalfCheetah/Ant run adapting to new tasks: the policy before adaptation and after each
# of 3 inner steps, replayed from the states the evaluation recorded (same tasks and seeds as eval.json).
# usage: scripts/render_cheetah.sh RUN_DIR [N_TASKS]   (writes RUN_DIR/eval.json and RUN_DIR/videos/)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:?usage: scripts/render_cheetah.sh RUN_DIR [N_TASKS]}"
export OMP_NUM_THREADS=1 MUJOCO_GL="${MUJOCO_GL:-egl}"
python -m rlmaml.rl.compare "$RUN" --num-tasks 40 --grad-steps 3 --seed 1000 --render "${2:-2}"
python scripts/plot_results.py "$RUN"
