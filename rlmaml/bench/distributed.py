"""Meta-batches on one process against Ray workers at equal total cores; prints one JSON object.

For a preset, each engine trains ``--batches`` meta-batches after one warm-up batch, from the same θ_0 and seeds:

* ``local``: ``sampler=local`` with ``num_threads`` = the cores;
* ``ray-W`` for each W of ``--workers``: ``sampler=ray num_workers=W worker_cpus=cores/W`` on a private cluster.

Per engine, the medians per meta-batch of ``sample_seconds``, ``update_seconds`` and ``total_seconds``; for Ray
the bytes the driver sent to and received from the workers (the tensors of every call and answer) and the round
trips of one TRPO step; ``overhead`` = Ray's total over local's. The engines run one after another in this
process, so a busy machine slows them alike only if its load is steady; the JSON records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from ..config import load_config
from ..errors import UserError
from ..rl.algos import make_meta_optimizer
from ..rl.components import make_env, make_policy
from ..rl.config import TrainConfig
from ..rl.sampling import batch_seeds, close_sampler, make_sampler


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="halfcheetah-vel", help="RL preset (default halfcheetah-vel)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts (default 1 2)")
    parser.add_argument("--batches", type=int, default=2, help="timed meta-batches per engine (default 2)")
    parser.add_argument("--cores", type=int, default=None, help="total cores of every engine (default: all)")
    parser.add_argument("overrides", nargs="*", default=[], help="config overrides key=value")


def _engine(cfg: TrainConfig, batches: int) -> dict:
    torch.manual_seed(cfg.seed)
    env = make_env(cfg, 1, 1)
    policy = make_policy(cfg, env)
    learner = make_meta_optimizer(cfg, policy, dict(policy.named_parameters()))
    sampler = make_sampler(cfg, policy)
    k = cfg.inner_steps
    rows = []
    try:
        for b in range(batches + 1):
            seeds = batch_seeds(cfg.seed, b, k + 2)
            tasks = env.sample_tasks(cfg.meta_batch_size, seed=seeds[0])
            traffic = getattr(sampler, "traffic", None)
            before = dict(traffic) if traffic is not None else None
            t0 = time.perf_counter()
            phases = sampler.sample(learner.params, tasks, seeds[1:], [cfg.fast_lr] * k)
            t1 = time.perf_counter()
            terms = phases.trpo_terms(learner)
            metrics = learner.step_terms(terms)
            t2 = time.perf_counter()
            row = {"sample_seconds": t1 - t0, "update_seconds": t2 - t1, "total_seconds": t2 - t0,
                   "step_accepted": bool(metrics["step_accepted"])}
            if before is not None:
                row.update(bytes_sent=traffic["sent"] - before["sent"] + terms.traffic["sent"],
                           bytes_received=traffic["received"] - before["received"] + terms.traffic["received"],
                           round_trips_per_step=terms.round_trips)
            if b > 0:  # the first meta-batch warms up allocators and kernels
                rows.append(row)
    finally:
        close_sampler(sampler)
    return {key: statistics.median(r[key] for r in rows) for key in rows[0] if key != "step_accepted"} | {
        "steps_accepted": sum(r["step_accepted"] for r in rows)}


def run(args) -> int:
    if args.batches <= 0 or any(w <= 0 for w in args.workers):
        raise UserError("--batches and --workers must be positive integers")
    cores = args.cores or os.cpu_count() or 1
    from ..distributed import require_ray, start_local_cluster

    require_ray()
    base = list(args.overrides)
    start_local_cluster(cores)
    load = os.getloadavg()[0]
    local_cfg = load_config(TrainConfig, args.preset, [*base, "sampler=local", f"num_threads={cores}"])
    results = {"local": _engine(local_cfg, args.batches)}
    for workers in args.workers:
        cfg = load_config(TrainConfig, args.preset, [*base, "sampler=ray", f"num_workers={workers}",
                                                      f"worker_cpus={cores / workers:g}", f"num_threads={cores}"])
        results[f"ray-{workers}"] = _engine(cfg, args.batches)
    for name, result in results.items():
        if name != "local":
            result["overhead"] = result["total_seconds"] / results["local"]["total_seconds"]
    print(json.dumps({"preset": args.preset, "overrides": base, "cores": cores, "batches": args.batches,
                      "load_average_before": load, "load_average_after": os.getloadavg()[0],
                      "engines": results}))
    return 0


if __name__ == "__main__":  # ``python -m rlmaml.bench.distributed`` == ``rlmaml bench distributed``
    raise SystemExit("run it as: rlmaml bench distributed")
