#!/usr/bin/env bash
# MAML-TRPO on a MuJoCo preset (halfcheetah-vel, halfcheetah-dir, ant-vel, ant-dir, ant-goal; paper
# configuration, seed 0) into OUT (default results/<preset>/preset), with 2 torch/physics threads. Long:
# checkpoints every few batches; continue with RESUME=1 (a finished run is left untouched). Afterwards, unless
# SKIP_EVAL=1: evaluation on 40 held-out tasks (grad steps 0..3, seed 1000; MAML and a random initialisation),
# a video of the first RENDER (default 1) held-out tasks, the adaptation curve; then the learning curve.
# Extra arguments are config overrides.
#   scripts/rl_train_preset.sh halfcheetah-dir            RESUME=1 scripts/rl_train_preset.sh halfcheetah-dir
#   OUT=results/halfcheetah-dir/max-kl-0.02 scripts/rl_train_preset.sh halfcheetah-dir max_kl=0.02 num_batches=100
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET="${1:?usage: scripts/rl_train_preset.sh PRESET [key=value ...]}"
shift
OUT="${OUT:-results/$PRESET/preset}"
export OMP_NUM_THREADS=2
if [[ "${RESUME:-0}" == 1 ]]; then
  rlmaml train --resume "$OUT" --no-progress "$@"
else
  rlmaml train "$PRESET" num_threads=2 seed=0 "$@" --out "$OUT" --no-progress
fi
if [[ "${SKIP_EVAL:-0}" != 1 ]]; then
  MUJOCO_GL="${MUJOCO_GL:-egl}" rlmaml evaluate "$OUT" --num-tasks 40 --grad-steps 3 \
    --seed 1000 --out "$OUT/eval.json" --render "${RENDER:-1}" --render-out "$OUT/videos"
  rlmaml plot "$OUT" --reference paper --only adaptation
fi
rlmaml plot "$OUT" --only learning
