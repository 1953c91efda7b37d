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

``update_allocator`` times whole meta-updates under the two malloc policies of :mod:`rlmaml.runtime`
(freed memory retained for reuse, the default, against glibc's own), alternating on the same batch from the same θ.

``update_factored_vs_direct`` times whole meta-updates both ways (alternating, same batch, same θ), and
``fisher_vector_product`` times one product F v the way the meta-update computes it (factored, Jᵀ F' J v
through the inner Hessians) against the direct one, ∇_θ(∇_θ KL(θ'(θ)) · v) on the third-order graph of
the KL through the adaptation: seconds (median, alternating) and matmul GFLOP of each, same v, same batch.
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
from ..core.optim import hessian_vector_product
from ..core.params import flatten
from ..rl.algos import TRPO, make_meta_optimizer
from ..rl.algos.trpo import ShardTerms
from ..rl.components import make_env, make_policy
from ..rl.config import TrainConfig
from ..rl.objectives import detach_distribution, mean_kl, surrogate_loss
from ..rl.policies import mlp_output, stack_params, vmap_mean
from ..rl.sampling import batch_seeds, make_sampler
from ..runtime import cpu_allocator
from .timing import median_seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--preset", default="navigation", help="preset name or YAML file (default navigation)")
    parser.add_argument("--batches", type=int, default=3, help="timed meta-batches (median reported)")
    parser.add_argument("--num-threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", default=None, help="cpu or cuda")


def _time(fn, repeats: int) -> float:
    return median_seconds(fn, repeats, warmup=True)


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

    def baddbmm(module, params, x):
        return mlp_output(module, params, x, stacked=True)

    return {"baddbmm_seconds": _time(run(baddbmm), 3), "vmap_seconds": _time(run(vmap_mean), 3)}


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
    state = learner.state_dict()
    gflop = matmul_gflop(lambda: learner.step(train_batches, valid))
    learner.load_state_dict(state)
    return gflop


def matmul_gflop(fn) -> float:
    """Matrix-multiply GFLOP (``mm``/``bmm``/``baddbmm``/``addmm``) of one call of ``fn``, by ``torch.profiler``."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        fn()
    return sum(e.flops for e in prof.key_averages() if e.flops and "mm" in e.key) / 1e9


class DirectFisherTerms(ShardTerms):
    """The terms with the direct Fisher-vector product: ∇_θ(∇_θ KL(θ'(θ)) · v) on one third-order graph of the KL
    through the adaptation (which also gives g); the reference the factored terms are timed against."""

    def setup(self, theta):
        logp, pi = self.objective.adapted_log_probs(theta, self.train_batches, self.valid)
        self.old_logp, self.old_pi = logp.detach(), detach_distribution(pi)
        loss = surrogate_loss(logp, self.old_logp, self.valid, self.num_tasks)
        g = flatten(torch.autograd.grad(loss, list(theta.values()), retain_graph=True))
        self._direct = direct_fisher_vector_product(self, theta, (pi, self.old_pi))
        return loss.detach(), g

    def fisher_vector_product(self, v):
        return self._direct(v)


class DirectFisherMetaLearner(TRPO):
    """TRPO whose Fisher-vector products are the direct third-order ones (:class:`DirectFisherTerms`)."""

    terms_class = DirectFisherTerms


def direct_fisher_vector_product(terms: ShardTerms, theta, full_graph=None):
    """v ↦ F v as the Hessian-vector product of the KL through the second-order adaptation graph
    (``full_graph`` = (π, π_old) of every task reuses that graph when F is over every task)."""
    valid, train_batches = terms.valid, terms.train_batches
    if terms.subsampled or full_graph is None:
        n = terms.fisher_count
        valid = valid.first_tasks(n)
        _, pi = terms.objective.adapted_log_probs(theta, [b.first_tasks(n) for b in train_batches], valid)
        old_pi = detach_distribution(pi)
    else:
        pi, old_pi = full_graph
    kl = mean_kl(old_pi, pi, valid.mask, terms.fisher_norm)
    return hessian_vector_product(lambda: kl, theta)


def update_timing(learner, train_batches, valid, repeats: int) -> dict:
    """Whole meta-updates, factored vs direct Fisher-vector products, alternating on the same batch from the
    same θ (restored after each): median seconds of each and the median of the per-pair ratios."""
    direct = DirectFisherMetaLearner(learner.policy, learner.params, fast_lr=learner.objective.fast_lr,
                                     first_order=learner.objective.first_order, max_kl=learner.max_kl,
                                     cg_iters=learner.cg_iters, cg_damping=learner.cg_damping,
                                     ls_max_steps=learner.ls_max_steps, ls_backtrack_ratio=learner.ls_backtrack_ratio,
                                     fisher_tasks=learner.fisher_tasks, inner_loss=learner.objective.inner_loss)
    state = learner.state_dict()
    times = {"factored": [], "direct": []}
    for _ in range(repeats):
        for name, meta_learner in (("factored", learner), ("direct", direct)):
            meta_learner.load_state_dict(state)
            t = time.perf_counter()
            meta_learner.step(train_batches, valid)
            times[name].append(time.perf_counter() - t)
    learner.load_state_dict(state)
    return {"factored_seconds": statistics.median(times["factored"]),
            "direct_seconds": statistics.median(times["direct"]),
            "direct_over_factored": statistics.median(d / f for d, f in zip(times["direct"], times["factored"])),
            "repeats": repeats}


def allocator_timing(learner, train_batches, valid, repeats: int) -> dict | None:
    """Whole meta-updates with freed memory retained (``retain``) and with glibc's policy (``system``),
    alternating on the same batch from the same θ: median seconds of each and of the per-pair ratios.
    ``None`` where the policy cannot be set (not glibc)."""
    state = learner.state_dict()
    times = {"retain": [], "system": []}
    try:
        for _ in range(repeats):
            for policy, seconds in times.items():
                if cpu_allocator(policy) is None:
                    return None
                learner.load_state_dict(state)
                learner.step(train_batches, valid)  # warm-up under this policy (fills or trims the heap)
                learner.load_state_dict(state)
                t = time.perf_counter()
                learner.step(train_batches, valid)
                seconds.append(time.perf_counter() - t)
    finally:
        cpu_allocator()
        learner.load_state_dict(state)
    return {"retain_seconds": statistics.median(times["retain"]), "system_seconds": statistics.median(times["system"]),
            "system_over_retain": statistics.median(s / r for s, r in zip(times["system"], times["retain"])),
            "repeats": repeats}


def fisher_vector_product_timing(learner, train_batches, valid, repeats: int = 5) -> dict:
    """Seconds and matmul GFLOP of one factored and one direct Fisher-vector product, and their agreement."""
    with torch.enable_grad():
        shard = learner.shard_terms(train_batches, valid)
        shard.setup(learner.params)
        factored = shard.fisher_vector_product
        direct = direct_fisher_vector_product(shard, learner.params)
        v = torch.randn(sum(p.numel() for p in learner.params.values()), device=valid.observations.device,
                        generator=torch.Generator(valid.observations.device).manual_seed(0))
        result = {}
        for name, fvp in (("factored", factored), ("direct", direct)):
            result[f"{name}_matmul_gflop"] = matmul_gflop(lambda f=fvp: f(v))
        times = {"factored": [], "direct": []}
        for _ in range(repeats):
            for name, fvp in (("factored", factored), ("direct", direct)):
                t = time.perf_counter()
                fvp(v)
                if v.is_cuda:
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - t)
        a, b = factored(v), direct(v)
        result.update({f"{name}_seconds": statistics.median(ts) for name, ts in times.items()})
        result["direct_over_factored_seconds"] = result["direct_seconds"] / result["factored_seconds"]
        result["relative_difference"] = ((a - b).norm() / b.norm()).item()
    return result


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
    env = make_env(cfg, 1, 1)  # the task distribution and the spaces (the sampler has its own env)
    policy = make_policy(cfg, env).to(device)
    learner = make_meta_optimizer(cfg, policy, dict(policy.named_parameters()))
    sampler = make_sampler(cfg, policy, device)
    k = cfg.inner_steps
    load_before = os.getloadavg()[0]
    sample_times, update_times, accepted = [], [], []
    sample_cpu, update_cpu = [], []
    for b in range(args.batches + 1):
        seeds = batch_seeds(cfg.seed, b, k + 2)
        tasks = env.sample_tasks(cfg.meta_batch_size, seed=seeds[0])
        c0, t0 = time.process_time(), time.perf_counter()
        batches = sampler.sample(learner.params, tasks, seeds[1:], [cfg.fast_lr] * k).batches
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
    trpo = isinstance(learner, TRPO)  # the Fisher-vector products exist only in the TRPO meta-step
    fvp = fisher_vector_product_timing(learner, batches[:k], batches[k]) if trpo else None
    allocator = allocator_timing(learner, batches[:k], batches[k], args.batches)
    update_ab = update_timing(learner, batches[:k], batches[k], args.batches) if trpo else None
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
        "fisher_vector_product": fvp,
        "update_factored_vs_direct": update_ab,
        "update_allocator": allocator,
    }
    print(json.dumps(result))
    return 0
