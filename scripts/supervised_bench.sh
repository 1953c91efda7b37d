#!/usr/bin/env bash
# Side-by-side speed of supervised MAML vs a plain per-task deepcopy loop (one JSON object per task),
# written next to the results they belong to. Single-threaded (shared CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
rlmaml bench supervised --task sinusoid --batches 50 --threads 1 | tee results/sinusoid/preset/bench.json
rlmaml bench supervised --task omniglot --batches 10 --threads 1 | tee results/omniglot/5way-1shot/bench.json
