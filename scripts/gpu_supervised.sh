#!/usr/bin/env bash
# The supervised checks for a GPU session, in one go (the device time of a session is short: BUDGET seconds in
# all, default 540, inside one 10-minute command):
#   1. second-order meta-batches timed on the CPU and on DEVICE side by side, Omniglot 5-way and 20-way
#      (rlmaml bench supervised: the batched engine and the per-task loop, BATCHES timed batches each);
#   2. the rest of BUDGET on the longest Omniglot 5-way 1-shot training that fits (plain MAML, the paper's
#      preset), stopped by SIGINT after a whole iteration (a checkpoint is written), then evaluated on the 600
#      held-out tasks.
# Everything goes under OUT (default results/studies/gpu): bench-*.json, omniglot-5way/{config.yaml,
# metrics.jsonl,checkpoint.pt,eval.json} and log.txt. Omniglot arrays: DATA (default ../shared/data/omniglot);
# on a device machine carry a copy inside the checkout and point DATA at it.
#   scripts/gpu_supervised.sh                 DEVICE=cpu BUDGET=120 BATCHES=1 OUT=/tmp/g scripts/gpu_supervised.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-results/studies/gpu}"
DEVICE="${DEVICE:-cuda}"
BUDGET="${BUDGET:-540}"
BATCHES="${BATCHES:-5}"
DATA="${DATA:-../shared/data/omniglot}"
EVAL_SECONDS="${EVAL_SECONDS:-60}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
start=$(date +%s)
{
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
  for task in omniglot omniglot-20way; do
    for device in cpu "$DEVICE"; do
      rlmaml bench supervised --task "$task" --orders second --implementations batched,loop \
        --batches "$BATCHES" --device "$device" data_dir="$DATA" > "$OUT/bench-$task-$device.json"
      cat "$OUT/bench-$task-$device.json"
    done
  done
  left=$(( BUDGET - ($(date +%s) - start) - EVAL_SECONDS ))
  echo "training for ${left} s on $DEVICE"
  if (( left > 30 )); then
    timeout -s INT "$left" rlmaml supervised omniglot device="$DEVICE" data_dir="$DATA" seed=0 \
      --out "$OUT/omniglot-5way" --no-progress --no-eval || true
    rlmaml supervised --evaluate-only "$OUT/omniglot-5way" --device "$DEVICE" --no-progress
  fi
} 2>&1 | tee "$OUT/log.txt"
