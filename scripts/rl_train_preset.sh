#!/usr/bin/env bash
# MAML-TRPO on a MuJoCo preset (halfcheetah-vel, halfcheetah-dir, ant-vel, ...; paper configuration, seed 0)
# into results/<preset>, with 2 torch/physics threads. Long: checkpoints every few batches; continue with
# RESUME=1 (a finished run is left untouched). Afterwards, unless SKIP_EVAL=1: evaluation on 40 held-out
# tasks (grad steps 0..3, seed 1000; MAML and a random initialisation), a video of the first RENDER (default 1)
# held-out tasks, the adaptation curve and the learning curve. Extra arguments are config overrides.
#   scripts/rl_train_preset.sh halfcheetah-dir            RESUME=1 scripts/rl_train_preset.sh halfcheetah-dir
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET="${1:?usage: scripts/rl_train_preset.sh PRESET [key=value ...]}"
shift
OUT="${OUT:-results/$PRESET}"
if [[ "${RESUME:-0}" == 1 ]]; then
  OMP_NUM_THREADS=2 python scripts/rl_train.py --resume "$OUT" --no-progress "$@"
else
  OMP_NUM_THREADS=2 python scripts/rl_train.py "$PRESET" num_threads=2 seed=0 "$@" --out "$OUT" --no-progress
fi
if [[ "${SKIP_EVAL:-0}" != 1 ]]; then
  MUJOCO_GL="${MUJOCO_GL:-egl}" OMP_NUM_THREADS=2 python scripts/rl_evaluate.py "$OUT" --num-tasks 40 --grad-steps 3 \
    --seed 1000 --out "$OUT/eval.json" --render "${RENDER:-1}" --render-out "$OUT/videos"
  rlmaml plot "$OUT" --reference paper --only adaptation
fi
python scripts/rl_plot_curve.py "$OUT"
