#!/usr/bin/env bash
# Reproduces results/sinusoid and results/omniglot-5way-1shot (config.yaml, metrics.jsonl,
# eval.json, learning_curve.png, TensorBoard events, checkpoint.pt).
# Usage: scripts/supervised_results.sh [sinusoid|omniglot|all]
# CPU-only, one thread each (the machine is shared). Omniglot data: data_dir=..., RLMAML_DATA,
# or ../shared/data/omniglot. `rlmaml supervised ...` is the same as `python -m rlmaml.supervised.train ...`.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
export OMP_NUM_THREADS=1
if [[ "$what" == sinusoid || "$what" == all ]]; then
  python -m rlmaml.supervised.train sinusoid num_iterations=20000 num_threads=1 seed=0 \
    --out results/sinusoid --no-progress
fi
if [[ "$what" == omniglot || "$what" == all ]]; then
  # 5-way 1-shot, paper hyper-parameters; trained for as many iterations as the CPU budget allowed
  # (the paper uses 60000), then evaluated on 600 held-out tasks after 3 inner steps.
  python -m rlmaml.supervised.train omniglot num_iterations=5200 num_threads=1 seed=0 \
    --out results/omniglot-5way-1shot --no-progress
fi
