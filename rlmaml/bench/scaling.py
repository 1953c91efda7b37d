"""A scaling model of task-parallel meta-batches, built from measured shard costs; prints one JSON object.

With W workers a meta-batch of N tasks, each cut into q parts of E/q episodes (``task_split``, a divisor of E;
:mod:`rlmaml.rl.parts`), has shards of at most n = ⌈Nq/W⌉ parts, at most m = ⌈n_F·q/W⌉ of them parts of the
subsampled Fisher's tasks (n_F = ``fisher_tasks``, or N). The slowest shard sets the pace of every round:

    T(W, q) = t_sample(n) + t_setup(n, m) + K·t_fvp(m) + J·t_search(n) + R(q)·ℓ

with the shard times t_· measured here for exactly those (q, n, m), one shard on one thread, every shard in turn
in each of ``--repeats`` rounds and the median kept (K = ``cg_iters``
Fisher-vector products, J line-search trials), ℓ the measured time of one round trip to a Ray worker (a call
that does nothing; between machines it adds the network's), and R(q) the round trips of one meta-batch: 2 + K + J
when no task has parts on two shards, else one more for every per-task sum the shard programs make (counted
here as they run). For each W > 1 the model keeps the q with the least T(W, q) (W = 1 is the plain run,
q = 1); the efficiency is
E(W) = T(1, 1) / (W · T(W, q)). It also reports the bytes of shares and totals a joined layout sends per
meta-batch (θ-sized vectors per task and shard, counted here), for the network between machines. It leaves out
the driver's own arithmetic and any sharing of a machine between workers.
"""

from __future__ import annotations

import argparse
import json
import math

import torch

from ..config import load_config
from ..errors import UserError
from ..rl.algos import make_meta_optimizer
from ..rl.algos.trpo import ShardTerms
from ..rl.components import make_env, make_policy
from ..rl.config import TrainConfig
from ..rl.parts import Shard, lockstep, step
from ..rl.sampling import LocalSampler, batch_seeds
from .timing import median_seconds

WORKERS = (1, 2, 4, 8, 16, 32, 64)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="halfcheetah-vel", help="RL preset (default halfcheetah-vel)")
    parser.add_argument("--splits", type=int, nargs="+", default=None,
                        help="task splits q tried (divisors of episodes_per_task; default every divisor up to 10)")
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKERS), help="worker counts W modelled")
    parser.add_argument("--line-search", type=int, default=2, help="line-search trials per step J (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="timings per shard, median (default 2)")
    parser.add_argument("overrides", nargs="*", default=[], help="config overrides key=value")


class _Counted:
    """Runs one shard program alone, answering each yield with the shard's own totals, and counts the yields
    and the bytes of the shares and totals (what a joined layout sends through the driver)."""

    def __init__(self):
        self.rounds = self.bytes = 0

    def __call__(self, program):
        from ..distributed.ray_sampler import nbytes

        def count(shares, totals):
            self.rounds += 1
            self.bytes += nbytes(shares) + nbytes(totals)

        (value,), _ = lockstep([step(program, None)], lambda totals: [step(program, totals[0])], on_round=count)
        return value


def shard_parts(cfg: TrainConfig, q: int, n: int, m: int) -> tuple:
    """n parts of tasks cut into q: the first m of them parts of the Fisher's tasks, then parts of the others."""
    n_f = cfg.fisher_tasks or cfg.meta_batch_size
    fisher = [(t, j) for t in range(n_f) for j in range(q)][:m]
    other = [(t, j) for t in range(n_f, cfg.meta_batch_size) for j in range(q)][: n - m]
    return tuple(fisher + other)


def shard_costs(cfg: TrainConfig, q: int, n: int, m: int, repeats: int) -> dict:
    """Seconds of one shard of ``n`` parts (``m`` of them in the Fisher) of tasks cut into ``q``: sampling, setup,
    one Fisher-vector product and one line-search trial; and the round trips and bytes each makes when the tasks'
    other parts are on other shards."""
    torch.manual_seed(cfg.seed)
    policy = make_policy(cfg, make_env(cfg, 1, 1))
    learner = make_meta_optimizer(cfg, policy, dict(policy.named_parameters()))
    parts = shard_parts(cfg, q, n, m)
    shard = Shard(0, n, cfg.meta_batch_size * q, parts, q, joined=True)
    sampler = LocalSampler.from_config(cfg, policy, shard=shard, episodes_per_task=cfg.episodes_per_task // q)
    seeds = batch_seeds(cfg.seed, 0, cfg.num_inner_steps + 2)
    tasks = sampler.env.sample_tasks(cfg.meta_batch_size, seed=seeds[0])
    counted = {kind: _Counted() for kind in ("sample", "setup", "fvp", "search")}
    batch = None

    def sample():
        nonlocal batch
        batch = counted["sample"](sampler.sample_program(learner.params, [tasks[t] for t, _ in parts], seeds[1:],
                                                         [cfg.fast_lr] * cfg.num_inner_steps))

    costs = {"sample": median_seconds(sample, repeats)}
    terms = ShardTerms(learner.objective, batch.train_batches, batch.valid, num_tasks=cfg.meta_batch_size,
                       fisher_tasks=cfg.fisher_tasks, fisher_count=m, parts=parts)
    with torch.enable_grad():
        costs["setup"] = median_seconds(lambda: counted["setup"](terms.setup_program(learner.params)), repeats)
        v = torch.randn(sum(p.numel() for p in learner.params.values()))
        costs["fvp"] = median_seconds(lambda: counted["fvp"](terms.fisher_vector_product_program(v)), repeats)
    moved = {k: p.detach() * 0.999 for k, p in learner.params.items()}
    costs["search"] = median_seconds(lambda: counted["search"](terms.surrogate_and_kl_program(moved)), repeats)
    sampler.close()
    costs["rounds"] = {k: c.rounds / repeats for k, c in counted.items()}
    costs["bytes"] = {k: c.bytes / repeats for k, c in counted.items()}
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


def interleaved_costs(cfg: TrainConfig, keys, repeats: int) -> dict:
    """:func:`shard_costs` of every shard in ``keys``, ``repeats`` rounds of one timing each, the shards in turn
    within a round (a slow spell of a shared machine then falls on every shard alike), and the median per cost."""
    import statistics

    rounds = [{key: shard_costs(cfg, *key, 1) for key in keys} for _ in range(repeats)]
    out = {}
    for key in keys:
        first = rounds[0][key]
        out[key] = {kind: statistics.median(r[key][kind] for r in rounds) for kind in ("sample", "setup", "fvp", "search")}
        out[key].update(rounds=first["rounds"], bytes=first["bytes"])
    return out


def predict(costs, cfg_counts: dict, cg_iters: int, trials: int, latency: float, workers=WORKERS) -> dict:
    """T(W, q) and E(W) of the module docstring from measured ``costs[(q, n, m)]``, the best q for each W.
    ``cfg_counts``: {"tasks": N, "fisher_tasks": n_F, "splits": [q, ...]}."""
    N, n_f = cfg_counts["tasks"], cfg_counts["fisher_tasks"]
    out = {}
    for w in workers:
        best = None
        for q in cfg_counts["splits"]:
            if w > N * q or (w == 1 and q > 1):  # one worker: the plain run, whole tasks
                continue
            n, m = math.ceil(N * q / w), math.ceil(n_f * q / w)
            c = costs[(q, n, m)]
            joined = q > 1 and w > 1
            rounds = (c["rounds"]["sample"] + c["rounds"]["setup"] + cg_iters * c["rounds"]["fvp"]
                      + trials * c["rounds"]["search"] if joined else 0) + 2 + cg_iters + trials
            seconds = (c["sample"] + c["setup"] + cg_iters * c["fvp"] + trials * c["search"] + rounds * latency)
            traffic = (c["bytes"]["sample"] + c["bytes"]["setup"] + cg_iters * c["bytes"]["fvp"]
                       + trials * c["bytes"]["search"]) * w if joined else 0
            row = {"task_split": q, "shard_parts": n, "fisher_parts": m, "round_trips": rounds, "seconds": seconds,
                   "shares_bytes": traffic}
            if best is None or seconds < best["seconds"]:
                best = row
        if best is not None:
            out[w] = best
    for w, row in out.items():
        row["efficiency"] = out[1]["seconds"] / (w * row["seconds"])
    return out


def needed_shards(tasks: int, fisher: int, splits, workers) -> set:
    """Every (q, n, m) the model needs."""
    return {(q, math.ceil(tasks * q / w), math.ceil(fisher * q / w)) for q in splits for w in workers
            if w <= tasks * q and (w > 1 or q == 1)}


def run(args) -> int:
    cfg = load_config(TrainConfig, args.preset, [*args.overrides, "num_threads=1"])
    episodes = cfg.episodes_per_task
    splits = args.splits or [q for q in range(1, 11) if episodes % q == 0]
    if any(q < 1 or episodes % q for q in splits) or 1 not in splits:
        raise UserError(f"--splits must include 1 and be divisors of episodes_per_task ({episodes}), got {splits}")
    torch.set_num_threads(1)
    fisher_total = cfg.fisher_tasks or cfg.meta_batch_size
    costs = interleaved_costs(cfg, sorted(needed_shards(cfg.meta_batch_size, fisher_total, splits, args.workers)),
                              args.repeats)
    latency = round_trip_seconds()
    model = predict(costs, {"tasks": cfg.meta_batch_size, "fisher_tasks": fisher_total, "splits": splits},
                    cfg.cg_iters, args.line_search, latency, args.workers)
    print(json.dumps({"preset": args.preset, "overrides": list(args.overrides), "meta_batch_size": cfg.meta_batch_size,
                      "episodes_per_task": episodes, "fisher_tasks": fisher_total, "cg_iters": cfg.cg_iters,
                      "line_search_trials": args.line_search, "task_splits": splits, "round_trip_seconds": latency,
                      "shard_seconds": {f"q={q} n={n} m={m}": c for (q, n, m), c in costs.items()},
                      "model": {str(w): r for w, r in model.items()}}))
    return 0
