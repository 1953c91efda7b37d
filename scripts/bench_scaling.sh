#!/usr/bin/env bash
# The scaling model of task-parallel meta-batches (rlmaml bench scaling): the costs of the slowest shard for 1..64
# workers measured on one thread, for every task split q dividing the episodes per task (up to 10), one Ray round
# trip, and the predicted seconds per meta-batch and efficiency with the best q, for each preset of PRESETS
# (default halfcheetah-vel ant-dir ml10) into OUT/scaling-<preset>.json (default results/studies/bench). Needs
# the ray extra (and metaworld for ml10). Extra arguments go to rlmaml bench scaling.
#   PRESETS=ant-dir scripts/bench_scaling.sh --workers 1 16
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-results/studies/bench}"
mkdir -p "$OUT"
for preset in ${PRESETS:-halfcheetah-vel ant-dir ml10}; do
  # shellcheck disable=SC2086
  MUJOCO_GL="${MUJOCO_GL:-egl}" OMP_NUM_THREADS=1 rlmaml bench scaling --preset "$preset" "$@" \
    | grep '^{' > "$OUT/scaling-$preset.json"
  echo "$OUT/scaling-$preset.json"
done
