"""A scaling model of task-parallel meta-batches, built from measured per-shard costs; prints one JSON object.

With W workers a meta-batch of N tasks has shards of n = ⌈N/W⌉ tasks, m = ⌈n_F/W⌉ of them in the subsampled
Fisher (n_F = ``fisher_tasks``, or N), and one TRPO step makes 1 + K + J round trips (setup, K = ``cg_iters``
Fisher-vector products, J line-search trials). The slowest shard sets the pace of every round:

    T(W) = t_sample(n) + t_setup(n, m) + K·t_fvp(m) + J·t_search(n) + (1 + K + J + 1)·ℓ

with the per-shard times t_·(n) measured here, one shard of n tasks on one thread, for n on a grid (linear in
n between the grid points and beyond), and ℓ the measured time of one round trip to a Ray worker (a call that
does nothing; between machines it adds the network's). The efficiency is E(W) = T(1) / (W · T(W)). The model
leaves out the driver's own arithmetic (θ-sized vector operations) and any sharing of a machine between workers.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import torch

from ..config import load_config
from ..errors import UserError
from ..rl.algos import make_meta_optimizer
from ..rl.algos.trpo import ShardTerms
from ..rl.components import make_env, make_policy
from ..rl.config import TrainConfig
from ..rl.sampling import LocalSampler, Shard, batch_seeds
from .timing import median_seconds

WORKERS = (1, 2, 4, 8, 16, 32, 64)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="halfcheetah-vel", help="RL preset (default halfcheetah-vel)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 5, 10], help="shard sizes measured (tasks)")
    parser.add_argument("--line-search", type=int, default=2, help="line-search trials per step J (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="timings per size, median (default 2)")
    parser.add_argument("overrides", nargs="*", default=[], help="config overrides key=value")


def shard_costs(cfg: TrainConfig, n: int, fisher: int, repeats: int) -> dict:
    """Seconds of one shard of ``n`` tasks (``fisher`` of them in the Fisher): sampling, setup, one Fisher-vector
    product and one line-search trial."""
    torch.manual_seed(cfg.seed)
    policy = make_policy(cfg, make_env(cfg, 1, 1))
    learner = make_meta_optimizer(cfg, policy, dict(policy.named_parameters()))
    sampler = LocalSampler.from_config(cfg, policy, shard=Shard(0, n, cfg.meta_batch_size))
    seeds = batch_seeds(cfg.seed, 0, cfg.inner_steps + 2)
    tasks = sampler.env.sample_tasks(n, seed=seeds[0])
    batch = None

    def sample():
        nonlocal batch
        batch = sampler.sample(learner.params, tasks, seeds[1:], [cfg.fast_lr] * cfg.inner_steps)

    costs = {"sample": median_seconds(sample, repeats)}
    terms = ShardTerms(learner.objective, batch.train_batches, batch.valid, num_tasks=cfg.meta_batch_size,
                       fisher_tasks=cfg.fisher_tasks or cfg.meta_batch_size, fisher_count=fisher)
    with torch.enable_grad():
        costs["setup"] = median_seconds(lambda: terms.setup(learner.params), repeats)
        v = torch.randn(sum(p.numel() for p in learner.params.values()))
        costs["fvp"] = median_seconds(lambda: terms.fisher_vector_product(v), repeats)
    moved = {k: p.detach() * 0.999 for k, p in learner.params.items()}
    costs["search"] = median_seconds(lambda: terms.surrogate_and_kl(moved), repeats)
    sampler.close()
    return costs


def round_trip_seconds(repeats: int = 50) -> float:
    """One call to a Ray worker and its answer, doing nothing (median)."""
    from ..distributed import require_ray, start_local_cluster

    ray = require_ray()
    start_local_cluster(1)
    pong = ray.remote(num_cpus=1)(_Pong).remote()
    ray.get(pong.ping.remote(0))
    seconds = median_seconds(lambda: ray.get(pong.ping.remote(0)), repeats)
    ray.kill(pong)
    return seconds


class _Pong:
    def ping(self, x):
        return x


def predict(costs: dict[int, dict], total: int, fisher_total: int, cg_iters: int, trials: int, latency: float,
            workers=WORKERS) -> dict:
    """T(W) and E(W) of the module docstring from the measured ``costs[n][kind]`` (linear in n)."""
    sizes = sorted(costs)

    def at(kind: str, n: float) -> float:
        return float(np.interp(n, sizes, [costs[s][kind] for s in sizes], left=None, right=None)) if n <= sizes[-1] \
            else costs[sizes[-1]][kind] + (n - sizes[-1]) * (costs[sizes[-1]][kind] - costs[sizes[-2]][kind]) / (
                sizes[-1] - sizes[-2])

    out = {}
    for w in workers:
        if w > total:
            continue
        n, m = math.ceil(total / w), math.ceil(fisher_total / w)
        seconds = (at("sample", n) + at("setup", n) + cg_iters * at("fvp", m) + trials * at("search", n)
                   + (2 + cg_iters + trials) * latency)
        out[w] = {"shard_tasks": n, "fisher_tasks": m, "seconds": seconds}
    for w, row in out.items():
        row["efficiency"] = out[1]["seconds"] / (w * row["seconds"])
    return out


def run(args) -> int:
    cfg = load_config(TrainConfig, args.preset, [*args.overrides, "num_threads=1"])
    if min(args.sizes) < 1 or max(args.sizes) > cfg.meta_batch_size or len(args.sizes) < 2:
        raise UserError(f"--sizes must be at least two shard sizes from 1 to meta_batch_size ({cfg.meta_batch_size})")
    torch.set_num_threads(1)
    fisher_total = cfg.fisher_tasks or cfg.meta_batch_size
    costs = {}
    for n in sorted(set(args.sizes)):
        costs[n] = shard_costs(cfg, n, min(n, fisher_total), args.repeats)
    latency = round_trip_seconds()
    model = predict(costs, cfg.meta_batch_size, fisher_total, cfg.cg_iters, args.line_search, latency)
    print(json.dumps({"preset": args.preset, "overrides": list(args.overrides), "meta_batch_size": cfg.meta_batch_size,
                      "fisher_tasks": fisher_total, "cg_iters": cfg.cg_iters, "line_search_trials": args.line_search,
                      "round_trip_seconds": latency, "shard_seconds": {str(n): c for n, c in costs.items()},
                      "model": {str(w): r for w, r in model.items()}}))
    return 0
