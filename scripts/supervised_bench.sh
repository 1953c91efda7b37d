#!/usr/bin/env bash
# Side-by-side speed of supervised MAML (one JSON object per line), written next to the results they belong to.
# Single-threaded (shared CPU). learn2learn 0.2.0 on Python 3.11: docs/supervised.md ("Speed").
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
# the earlier bench (rlmaml against a deepcopy loop); the two files there keep the format of that time
rlmaml bench supervised --task sinusoid --batches 50 --threads 1 | tee results/sinusoid/preset/bench.json
rlmaml bench supervised --task omniglot --batches 10 --threads 1 | tee results/omniglot/5way-1shot/bench.json
# the batched engine, the per-task loop and learn2learn 0.2.0's MAML.clone().adapt(), alternating per meta-batch,
# second and first order, on the presets' conv4 (results/studies/bench/README.md): the automatic task groups,
# then all tasks of the meta-batch in one group
B=results/studies/bench
rlmaml bench supervised --task omniglot --batches 20 --threads 1 | tee $B/supervised-omniglot-5way.json
rlmaml bench supervised --task omniglot-20way --batches 8 --threads 1 | tee $B/supervised-omniglot-20way.json
rlmaml bench supervised --task omniglot --batches 20 --threads 1 task_chunk=32 | tee $B/supervised-omniglot-5way-one-group.json
rlmaml bench supervised --task omniglot-20way --batches 8 --threads 1 task_chunk=16 | tee $B/supervised-omniglot-20way-one-group.json
