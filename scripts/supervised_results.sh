#!/usr/bin/env bash
# Reproduces results/sinusoid/preset and results/omniglot/5way-1shot (config.yaml, metrics.jsonl,
# eval.json, learning_curve.png, TensorBoard events, checkpoint.pt).
# Usage: scripts/supervised_results.sh [sinusoid|omniglot|all]
# CPU-only, one thread each (the machine is shared). Omniglot data: data_dir=..., RLMAML_DATA,
# or ../shared/data/omniglot. The READMEs: rlmaml report supervised-summary results/sinusoid/preset ...
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
export OMP_NUM_THREADS=1
if [[ "$what" == sinusoid || "$what" == all ]]; then
  rlmaml supervised sinusoid num_iterations=20000 num_threads=1 seed=0 \
    --out results/sinusoid/preset --no-progress
fi
if [[ "$what" == omniglot || "$what" == all ]]; then
  # 5-way 1-shot, paper hyper-parameters; trained for as many iterations as the CPU budget allowed
  # (the paper uses 60000), then evaluated on 600 held-out tasks after 3 inner steps.
  rlmaml supervised omniglot num_iterations=5200 num_threads=1 seed=0 \
    --out results/omniglot/5way-1shot --no-progress
fi
