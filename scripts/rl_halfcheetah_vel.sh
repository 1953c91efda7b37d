#!/usr/bin/env bash
# MAML-TRPO on HalfCheetahVel (paper configuration, preset `halfcheetah-vel`, seed 0): 500 meta-batches of
# 40 tasks × 20 episodes × H 200 into results/halfcheetah-vel/preset. Long: checkpoints every 5 batches; continue
# with RESUME=1. Afterwards: evaluation on 40 held-out tasks (grad steps 0..3) and the learning curve.
exec "$(dirname "$0")/rl_train_preset.sh" halfcheetah-vel "$@"
