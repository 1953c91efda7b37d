#!/usr/bin/env bash
# The TRPO KL profile study (results/studies/trpo-kl-profile): the measured KL along the meta-step against its
# Fisher model at the final checkpoints of results/navigation/{preset,softplus} and
# results/halfcheetah-vel/preset, with the presets' Fisher, the full Fisher and a smooth ReLU; one markdown
# table per case into OUT (default results/studies/trpo-kl-profile). Single-threaded.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-results/studies/trpo-kl-profile}"
mkdir -p "$OUT"
export OMP_NUM_THREADS=1 MUJOCO_GL="${MUJOCO_GL:-egl}"
rlmaml bench kl-profile results/navigation/preset --batches 3 > "$OUT/navigation.md"
rlmaml bench kl-profile results/navigation/preset --batches 3 --smooth-relu 50 > "$OUT/navigation-smooth-relu-50.md"
rlmaml bench kl-profile results/navigation/softplus --batches 3 > "$OUT/navigation-softplus.md"
rlmaml bench kl-profile results/halfcheetah-vel/preset --batches 2 > "$OUT/halfcheetah-vel.md"
rlmaml bench kl-profile results/halfcheetah-vel/preset --batches 2 --fisher-tasks 0 > "$OUT/halfcheetah-vel-full-fisher.md"
rlmaml bench kl-profile results/halfcheetah-vel/preset --batches 2 --smooth-relu 50 > "$OUT/halfcheetah-vel-smooth-relu-50.md"
