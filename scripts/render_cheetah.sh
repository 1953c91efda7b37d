#!/usr/bin/env bash
# Videos of a trained HalfCheetah/Ant run adapting to new tasks: the policy before adaptation and after each
# of 3 inner steps, replayed from the states the evaluation recorded (same tasks and seeds as its eval.json),
# beside a random initialisation fine-tuned the same way on the same 40 held-out tasks (seed 1000).
# usage: scripts/render_cheetah.sh RUN_DIR [N_TASKS]   (writes RUN_DIR/adaptation/{eval.json, adaptation_curve.png, videos/})
set -euo pipefail
cd "$(dirname "$0")/.."
RUN="${1:?usage: scripts/render_cheetah.sh RUN_DIR [N_TASKS]}"
OUT="${RUN%/}/adaptation"
export OMP_NUM_THREADS=1 MUJOCO_GL="${MUJOCO_GL:-egl}"
rlmaml evaluate "$RUN" --num-tasks 40 --grad-steps 3 --seed 1000 --out "$OUT/eval.json" \
  --render "${2:-2}" --render-out "$OUT/videos"
rlmaml plot "$OUT" --reference paper
