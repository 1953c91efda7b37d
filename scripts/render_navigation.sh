#!/usr/bin/env bash
# 2D navigation, the paper's comparison (Finn et al. 2017, Fig. 4): MAML (results/navigation/preset, trained by
# scripts/rl_navigation.sh) against a policy pretrained on the task mixture, a random initialisation and an
# oracle that observes the goal; all evaluated on the same 40 held-out tasks (seed 1000), 0..3 inner steps, each
# inner step on 40 episodes = 4000 steps per task (the paper's evaluation protocol; EPISODES overrides).
# Writes results/studies/navigation-comparison/{eval.json, adaptation_curve.png, learning_curves.png, videos/}.
# The comparison runs (results/navigation/{pretrained,oracle}) are trained here when missing (preset
# `navigation`, seed 0, BATCHES meta-batches, default 200: the same budget as MAML).
set -euo pipefail
cd "$(dirname "$0")/.."
MAML=results/navigation/preset
OUT=results/studies/navigation-comparison
BATCHES="${BATCHES:-200}"
export OMP_NUM_THREADS=1
if [[ ! -f "$MAML/checkpoint.pt" ]]; then
  echo "train MAML first: scripts/rl_navigation.sh" >&2
  exit 2
fi
for alg in pretrained oracle; do
  if [[ ! -f "results/navigation/$alg/checkpoint.pt" ]]; then
    rlmaml train navigation algorithm=$alg num_inner_steps=0 num_batches="$BATCHES" num_threads=1 \
      seed=0 --out "results/navigation/$alg" --no-progress
  fi
done
rlmaml evaluate "$MAML" --compare results/navigation/pretrained results/navigation/oracle \
  --num-tasks 40 --grad-steps 3 --seed 1000 --episodes-per-task "${EPISODES:-40}" --out "$OUT/eval.json" \
  --render 2 --render-out "$OUT/videos"
rlmaml plot "$OUT" --reference paper
rlmaml plot "$MAML" results/navigation/pretrained results/navigation/oracle --labels MAML pretrained oracle \
  --only learning --out "$OUT/learning_curves.png"
