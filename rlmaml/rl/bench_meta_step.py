"""Time one MAML-TRPO meta-batch (sampling and meta-update) on a preset; prints one JSON object.

``sample_seconds``: k+1 batched rollouts of meta_batch_size × episodes_per_task episodes plus the
sampling-time adaptation; ``update_seconds``: the meta-update (second-order adaptation graph,
meta-gradient, ``cg_iters`` Fisher-vector products through the adaptation, line search).
Both are medians over ``--batches`` meta-batches after one warm-up batch; the ``*_cpu_seconds`` twins
are process CPU time (all threads), which on a shared, busy machine tracks the work better than wall time. The policy forward+backward
of the task-stacked MLP is also timed both ways (``torch.baddbmm`` vs ``vmap(functional_call)``).

``update_matmul_gflop`` counts the matrix-multiply work of one meta-update (``torch.profiler`` FLOP
counts of ``mm``/``bmm``/``baddbmm``/``addmm``, one extra update after the timed ones), and
``matmul_gflop_per_s`` is the rate of a plain ``torch.bmm`` of the policy's largest layer on the task-stacked
batch, same threads, same run: ``update_floor_seconds`` = their ratio is what the update would take if it did
nothing but its matmuls at that rate, i.e. a floor for any implementation of the same arithmetic.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time

import torch

from ..config import load_config
from .policies import mlp_output, stack_params, vmap_mean
from .train import TrainConfig, batch_seeds, make_env, make_learner, make_policy, sample_meta_batch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--preset", default="navigation", help="preset name or YAML file (default navigation)")
    parser.add_argument("--batches", type=int, default=3, help="timed meta-batches (median reported)")
    parser.add_argument("--num-threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default=None, help="cpu or cuda")


def _time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def policy_forward_backward(policy, params, num_tasks: int, steps_per_task: int, device) -> dict:
    """Seconds for mean-network forward+backward on [T, M, obs] with task-stacked θ, both implementations."""
    stacked = {n: p.detach().requires_grad_() for n, p in stack_params(params, num_tasks).items()}
    obs = torch.randn(num_tasks, steps_per_task, policy.obs_dim, device=device)
    layers = [p for n, p in stacked.items() if n.startswith("layers.")]

    def run(impl):
        def once():
            out = impl(policy, stacked, obs)
            torch.autograd.grad(out.square().sum(), layers)
        return once

    return {"baddbmm_seconds": _time(run(mlp_output), 3), "vmap_seconds": _time(run(vmap_mean), 3)}


def matmul_rate(policy, num_tasks: int, steps_per_task: int, device) -> float:
    """GFLOP/s of ``torch.bmm`` [T, M, h] x [T, h, h'] for the policy's largest hidden layer (h x h')."""
    sizes = [policy.obs_dim, *policy.hidden_sizes, policy.out_dim]
    h_in, h_out = max(itertools.pairwise(sizes), key=lambda io: io[0] * io[1])
    x = torch.randn(num_tasks, steps_per_task, h_in, device=device)
    w = torch.randn(num_tasks, h_in, h_out, device=device)

    def once():
        torch.bmm(x, w)
        if x.is_cuda:
            torch.cuda.synchronize()

    return 2.0 * num_tasks * steps_per_task * h_in * h_out / _time(once, 10) / 1e9


def update_matmul_gflop(learner, train_batches, valid) -> float:
    """Matrix-multiply GFLOP of one meta-update (θ restored afterwards), counted by ``torch.profiler``."""
    from torch.profiler import ProfilerActivity, profile

    state = learner.state_dict()
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        learner.step(train_batches, valid)
    learner.load_state_dict(state)
    return sum(e.flops for e in prof.key_averages() if e.flops and "mm" in e.key) / 1e9


def run(args) -> int:
    if args.batches <= 0:
        from ..errors import UserError

        raise UserError(f"--batches must be a positive integer, got {args.batches}")
    overrides = list(args.overrides) + ([f"device={args.device}"] if args.device else [])
    cfg = load_config(TrainConfig, args.preset, overrides)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    env = make_env(cfg)
    policy = make_policy(cfg, env).to(device)
    learner = make_learner(cfg, policy, dict(policy.named_parameters()))
    k = cfg.inner_steps
    load_before = os.getloadavg()[0]
    sample_times, update_times, accepted = [], [], []
    sample_cpu, update_cpu = [], []
    for b in range(args.batches + 1):
        seeds = batch_seeds(cfg.seed, b, k + 2)
        tasks = env.sample_tasks(cfg.meta_batch_size, seed=seeds[0])
        c0, t0 = time.process_time(), time.perf_counter()
        _, batches = sample_meta_batch(env, policy, learner.params, tasks, cfg, seeds[1:], device)
        c1, t1 = time.process_time(), time.perf_counter()
        metrics = learner.step(batches[:k], batches[k])
        c2, t2 = time.process_time(), time.perf_counter()
        if b > 0:  # the first batch warms up allocators and kernels
            sample_times.append(t1 - t0)
            update_times.append(t2 - t1)
            sample_cpu.append(c1 - c0)
            update_cpu.append(c2 - c1)
            accepted.append(bool(metrics["step_accepted"]))
    fb = policy_forward_backward(policy, learner.params, cfg.meta_batch_size,
                                 cfg.episodes_per_task * cfg.horizon, device)
    gflop = update_matmul_gflop(learner, batches[:k], batches[k])
    rate = matmul_rate(policy, cfg.meta_batch_size, cfg.episodes_per_task * cfg.horizon, device)
    result = {
        "preset": args.preset,
        "env": cfg.env,
        "algorithm": cfg.algorithm,
        "meta_batch_size": cfg.meta_batch_size,
        "episodes_per_task": cfg.episodes_per_task,
        "horizon": cfg.horizon,
        "num_inner_steps": k,
        "first_order": cfg.first_order,
        "meta_optimizer": cfg.meta_optimizer,
        "cg_iters": cfg.cg_iters,
        "fisher_tasks": cfg.fisher_tasks,
        "overrides": list(args.overrides),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "batches": args.batches,
        "sample_seconds": statistics.median(sample_times),
        "update_seconds": statistics.median(update_times),
        "total_seconds": statistics.median([s + u for s, u in zip(sample_times, update_times)]),
        "sample_cpu_seconds": statistics.median(sample_cpu),
        "update_cpu_seconds": statistics.median(update_cpu),
        "steps_accepted": sum(accepted),
        "update_matmul_gflop": gflop,
        "matmul_gflop_per_s": rate,
        "update_floor_seconds": gflop / rate,
        "policy_forward_backward": fb,
    }
    print(json.dumps(result))
    return 0
