#!/usr/bin/env bash
# Reproduces results/sinusoid/preset, results/sinusoid/k5-batched, results/sinusoid/k10-batched,
# results/omniglot/5way-1shot, results/omniglot/5way-1shot-60k, results/omniglot/20way-1shot-60k,
# results/omniglot/5way-1shot-mamlpp and results/omniglot/5way-5shot-60k
# (config.yaml, metrics.jsonl, eval.json, learning_curve.png, TensorBoard events, checkpoint.pt).
# Usage: scripts/supervised_results.sh
#   [sinusoid|sinusoid-batched|omniglot|omniglot-60k|omniglot-20way|omniglot-mamlpp|omniglot-5shot|all]
# sinusoid-batched: K = 5 and K = 10 (K support and K query points in training) on the task-batched
# engine, evaluated after 0, 1 and 10 steps against the pretrained baseline.
# omniglot-60k is the paper's 60000 iterations on the batched engine with THREADS (default 2) torch
# threads (5–8 h here: 0.29–0.47 s per iteration, measured on different days); it checkpoints every
# 100 iterations and continues with RESUME=1. omniglot-20way is the paper's 20-way 1-shot (preset
# omniglot-20way: 16 tasks, 5 inner steps, alpha 0.1) for 60000 iterations, the same way (tens of hours
# here, over many sessions); omniglot-mamlpp is 5-way 1-shot with every MAML++ option (preset
# omniglot-mamlpp, 75000 iterations); omniglot-5shot is the paper's 5-way 5-shot (preset omniglot with
# num_shots=5, 60000 iterations). These three checkpoint and resume the same way; `all` leaves them out.
# INTERIM=1 evaluates a long run's current checkpoint on the held-out tasks instead of training (a line of
# its interim_eval.jsonl; it may run beside the training).
# CPU-only, one thread each except the long runs (the machine is shared). Omniglot data: data_dir=..., RLMAML_DATA,
# or ../shared/data/omniglot. The READMEs: rlmaml report supervised-summary results/sinusoid/preset ...
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
case "$what" in
  sinusoid|sinusoid-batched|omniglot|omniglot-60k|omniglot-20way|omniglot-mamlpp|omniglot-5shot|all) ;;
  *) echo "supervised_results.sh: unknown run '$what'; allowed: sinusoid, sinusoid-batched, omniglot, omniglot-60k, omniglot-20way, omniglot-mamlpp, omniglot-5shot, all" >&2
     exit 2 ;;
esac
export OMP_NUM_THREADS=1
# long_run OUT PRESET [key=value ...]: trains PRESET with the overrides into OUT (seed 0) on THREADS (default 2)
# torch threads, with RESUME=1 continues OUT from its checkpoint, with INTERIM=1 evaluates that checkpoint
long_run() {
  local out="$1" preset="$2" threads="${THREADS:-2}"
  shift 2
  if [[ "${INTERIM:-0}" == 1 ]]; then
    OMP_NUM_THREADS="$threads" rlmaml supervised --evaluate-only "$out" --interim --no-progress
  elif [[ "${RESUME:-0}" == 1 ]]; then
    OMP_NUM_THREADS="$threads" rlmaml supervised --resume "$out" --no-progress
  else
    OMP_NUM_THREADS="$threads" rlmaml supervised "$preset" "$@" num_threads="$threads" seed=0 \
      --out "$out" --no-progress
  fi
}
if [[ "$what" == sinusoid || "$what" == all ]]; then
  rlmaml supervised sinusoid engine=loop num_iterations=20000 num_threads=1 seed=0 \
    --out results/sinusoid/preset --no-progress
fi
if [[ "$what" == sinusoid-batched || "$what" == all ]]; then
  for k in 5 10; do
    rlmaml supervised sinusoid engine=batched num_shots="$k" num_query="$k" num_iterations=20000 \
      num_threads=1 seed=0 --out "results/sinusoid/k$k-batched" --no-progress
  done
fi
if [[ "$what" == omniglot || "$what" == all ]]; then
  # 5-way 1-shot, paper hyper-parameters; trained for as many iterations as the CPU budget allowed
  # (the paper uses 60000), then evaluated on 600 held-out tasks after 3 inner steps.
  rlmaml supervised omniglot engine=loop num_iterations=5200 num_threads=1 seed=0 \
    --out results/omniglot/5way-1shot --no-progress
fi
if [[ "$what" == omniglot-60k || "$what" == all ]]; then
  long_run results/omniglot/5way-1shot-60k omniglot num_iterations=60000
fi
if [[ "$what" == omniglot-20way ]]; then
  long_run results/omniglot/20way-1shot-60k omniglot-20way num_iterations=60000
fi
if [[ "$what" == omniglot-mamlpp ]]; then
  long_run results/omniglot/5way-1shot-mamlpp omniglot-mamlpp
fi
if [[ "$what" == omniglot-5shot ]]; then
  long_run results/omniglot/5way-5shot-60k omniglot num_shots=5 num_iterations=60000
fi
