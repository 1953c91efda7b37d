#!/usr/bin/env bash
# Every plot `rlmaml plot` makes for each run directory given (default: every folder under results/ with a
# metrics.jsonl or an eval.json), written into that directory, adaptation curves with the paper's numbers.
#   scripts/plot_results.sh                       scripts/plot_results.sh results/ant-goal/preset
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -eq 0 ]]; then
  mapfile -t dirs < <(find results -mindepth 2 -maxdepth 2 -type d \
    -exec sh -c '[ -f "$1/metrics.jsonl" ] || [ -f "$1/eval.json" ]' _ {} \; -print | sort)
else
  dirs=("$@")
fi
for dir in "${dirs[@]}"; do
  rlmaml plot "$dir" --reference paper
done
