#!/usr/bin/env bash
# The scaling model of task-parallel meta-batches (rlmaml bench scaling): per-shard costs measured on one thread
# for shard sizes SIZES (default 1 2 5 10 tasks), one Ray round trip, and the predicted seconds per meta-batch and
# efficiency for 1..64 workers, for each preset of PRESETS (default halfcheetah-vel ant-dir ml10) into
# OUT/scaling-<preset>.json (default results/studies/bench). Needs the ray extra (and metaworld for ml10).
#   PRESETS=ant-dir SIZES="1 5" scripts/bench_scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-results/studies/bench}"
mkdir -p "$OUT"
for preset in ${PRESETS:-halfcheetah-vel ant-dir ml10}; do
  # shellcheck disable=SC2086
  MUJOCO_GL="${MUJOCO_GL:-egl}" OMP_NUM_THREADS=1 rlmaml bench scaling --preset "$preset" --sizes ${SIZES:-1 2 5 10} \
    | grep '^{' > "$OUT/scaling-$preset.json"
  echo "$OUT/scaling-$preset.json"
done
