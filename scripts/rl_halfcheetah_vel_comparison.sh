#!/usr/bin/env bash
# HalfCheetahVel, the paper's comparison (Finn et al. 2017, Fig. 5): MAML (MAML, default
# results/halfcheetah-vel/preset, trained by scripts/rl_halfcheetah_vel.sh) against a policy pretrained with TRPO
# on the task mixture, a random initialisation and an oracle that observes the target velocity; all evaluated on
# the same 40 held-out tasks (seed 1000), 0..3 inner steps, with videos of MAML adapting on the first 2 tasks.
# The comparison runs are trained here when missing (preset halfcheetah-vel, seed 0, BATCHES meta-batches,
# default 100; they train without adaptation, so a batch samples half as many steps as a MAML batch), into
# PRETRAINED and ORACLE (default: results/halfcheetah-vel/{pretrained,oracle} beside .../preset, else
# $MAML-pretrained and $MAML-oracle); extra arguments are their config overrides. TRAIN_ONLY=1 stops after them.
# Writes $MAML/{eval.json (every method), adaptation_curve.png, learning_curves.png, videos/}.
#   scripts/rl_halfcheetah_vel_comparison.sh                                       # results/halfcheetah-vel/preset
#   MAML=results/halfcheetah-vel/frame-skip-5 scripts/rl_halfcheetah_vel_comparison.sh frame_skip=0   # Gymnasium timing
set -euo pipefail
cd "$(dirname "$0")/.."
MAML="${MAML:-results/halfcheetah-vel/preset}"
MAML="${MAML%/}"
if [[ "$(basename "$MAML")" == preset ]]; then prefix="$(dirname "$MAML")/"; else prefix="$MAML-"; fi
PRETRAINED="${PRETRAINED:-${prefix}pretrained}"
ORACLE="${ORACLE:-${prefix}oracle}"
OUT=$MAML
BATCHES="${BATCHES:-100}"
THREADS="${THREADS:-1}"
export OMP_NUM_THREADS="$THREADS" MUJOCO_GL="${MUJOCO_GL:-egl}"
for alg in pretrained oracle; do
  if [[ $alg == pretrained ]]; then run=$PRETRAINED; else run=$ORACLE; fi
  if [[ -f "$run/checkpoint.pt" ]]; then
    rlmaml train --resume "$run" --no-progress num_batches="$BATCHES"
  else
    rlmaml train halfcheetah-vel algorithm=$alg num_inner_steps=0 num_batches="$BATCHES" \
      num_threads="$THREADS" seed=0 "$@" --out "$run" --no-progress
  fi
done
if [[ "${TRAIN_ONLY:-0}" == 1 ]]; then exit 0; fi
if [[ ! -f "$MAML/checkpoint.pt" ]]; then
  echo "train MAML first: scripts/rl_halfcheetah_vel.sh" >&2
  exit 2
fi
rlmaml evaluate "$MAML" --compare "$PRETRAINED" "$ORACLE" \
  --num-tasks 40 --grad-steps 3 --seed 1000 --out "$OUT/eval.json" --render 2 --render-out "$OUT/videos"
rlmaml plot "$OUT" --reference paper
rlmaml plot "$MAML" "$PRETRAINED" "$ORACLE" --labels MAML pretrained oracle --only learning \
  --out "$OUT/learning_curves.png"
