#!/usr/bin/env bash
# Held-out evaluations of a supervised run's past checkpoints: every version of RUN/checkpoint.pt that git
# history holds is evaluated with RUN's config.yaml (the tasks of the final evaluation) and kept as a line of
# RUN/interim_eval.jsonl (rlmaml supervised --evaluate-only ... --interim; a line per checkpoint iteration).
# Usage: scripts/supervised_interim_history.sh RUN [RUN ...]   e.g. results/omniglot/20way-1shot-60k
# THREADS (default 2) torch threads. The checkpoint in the working tree: INTERIM=1 scripts/supervised_results.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 1 ]] || { echo "usage: scripts/supervised_interim_history.sh RUN [RUN ...]" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for run in "$@"; do
  [[ -f "$run/config.yaml" ]] || { echo "supervised_interim_history.sh: $run has no config.yaml" >&2; exit 2; }
  for commit in $(git log --format=%H -- "$run/checkpoint.pt"); do
    git cat-file -e "$commit:$run/checkpoint.pt" 2>/dev/null || continue   # the commit that removed it
    rm -rf "$tmp/run" && mkdir "$tmp/run"
    cp "$run/config.yaml" "$tmp/run/config.yaml"
    git show "$commit:$run/checkpoint.pt" > "$tmp/run/checkpoint.pt"
    OMP_NUM_THREADS="${THREADS:-2}" rlmaml supervised --evaluate-only "$tmp/run" --interim --no-progress
    python -c "import sys, json; from rlmaml.supervised.evaluate import read_interim, record_interim
[record_interim(sys.argv[2], r) for r in read_interim(sys.argv[1])]" "$tmp/run" "$run"
  done
done
