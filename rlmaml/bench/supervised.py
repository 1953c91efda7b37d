"""Meta-batches per second of supervised MAML vs a plain per-task loop (one JSON object).

``rlmaml bench supervised [--task sinusoid|omniglot] [--batches N] [key=value ...]``

Both sides run the same model, initial weights and pre-sampled meta-batches in one process:

* ``naive``: the straightforward loop — per task, ``copy.deepcopy`` the model, take the inner
  steps with ``torch.optim.SGD``, back-propagate the query loss of the copy and add its
  gradients to the meta-model, then one Adam step. Optimizer steps cut the graph, so this is
  first-order MAML.
* ``rlmaml``: :func:`rlmaml.supervised.experiment.meta_update` (functional parameters through
  ``rlmaml.core.adapt``; sinusoid runs the whole meta-batch with task-batched weights), with
  ``first_order=true`` for the like-for-like ratio, and also timed with second-order gradients.

``gradient_relative_difference`` = ‖g_rlmaml − g_naive‖ / ‖g_naive‖ for the first-order
meta-gradient of the first meta-batch from the same initial weights: both sides compute the
same update, so it is at rounding level.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch

from ..config import load_config, parse_overrides
from ..errors import UserError
from ..supervised.experiment import SupervisedConfig, TaskSource, make_learner, meta_update, task_loss


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", default=[], help="config overrides key=value")
    parser.add_argument("--task", choices=["sinusoid", "omniglot", "omniglot-20way"], default="sinusoid",
                        help="preset to benchmark (default: sinusoid)")
    parser.add_argument("--batches", type=int, default=20, help="timed meta-batches per side (default 20)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")


def naive_meta_step(model: torch.nn.Module, meta_optimizer: torch.optim.Optimizer, batch, cfg: SupervisedConfig) -> None:
    """First-order MAML the plain way: a deep copy per task, stepped by torch.optim.SGD."""
    loss = task_loss(cfg)
    meta_optimizer.zero_grad(set_to_none=True)
    num_tasks = len(batch[0])
    for xs, ys, xq, yq in zip(*batch):
        learner = copy.deepcopy(model)
        inner = torch.optim.SGD(learner.parameters(), lr=cfg.inner_step_size)
        for _ in range(cfg.inner_steps):
            inner.zero_grad()
            loss(learner(xs), ys).backward()
            inner.step()
        learner.zero_grad()
        (loss(learner(xq), yq) / num_tasks).backward()
        for p, q in zip(model.parameters(), learner.parameters()):
            p.grad = q.grad.clone() if p.grad is None else p.grad + q.grad
    meta_optimizer.step()


def _timed(step, batches) -> float:
    step(batches[0])  # warm-up (allocations, lazy initialisation)
    start = time.perf_counter()
    for batch in batches[1:]:
        step(batch)
    return (len(batches) - 1) / (time.perf_counter() - start)


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {**parse_overrides(args.overrides), "device": args.device}
    cfg = load_config(SupervisedConfig, args.task, overrides)
    if args.batches < 1:
        raise UserError(f"--batches must be >= 1, got {args.batches}")
    device = torch.device(cfg.device)
    source = TaskSource(cfg, device)
    rng = np.random.default_rng(cfg.seed)
    batches = [source.sample(rng, cfg.meta_batch_size) for _ in range(args.batches + 1)]

    def learner(first_order):
        torch.manual_seed(cfg.seed)
        c = load_config(SupervisedConfig, args.task, {**overrides, "first_order": first_order})
        return c, make_learner(c, device)

    fo_cfg, (model, params, alpha, _) = learner(True)
    meta_update(model, params, alpha, torch.optim.SGD(model.parameters(), lr=0.0), batches[0], fo_cfg)
    g_ours = torch.cat([p.grad.flatten() for p in model.parameters()])
    _, (naive_model, _, _, _) = learner(True)
    naive_meta_step(naive_model, torch.optim.SGD(naive_model.parameters(), lr=0.0), batches[0], fo_cfg)
    g_naive = torch.cat([p.grad.flatten() for p in naive_model.parameters()])
    gradient_difference = float((g_ours - g_naive).norm() / g_naive.norm())

    fo_cfg, (model, params, alpha, opt) = learner(True)
    ours = _timed(lambda b: meta_update(model, params, alpha, opt, b, fo_cfg), batches)
    _, (naive_model, _, _, naive_opt) = learner(True)
    naive = _timed(lambda b: naive_meta_step(naive_model, naive_opt, b, fo_cfg), batches)
    so_cfg, (model2, params2, alpha2, opt2) = learner(False)
    second = _timed(lambda b: meta_update(model2, params2, alpha2, opt2, b, so_cfg), batches)
    result = {
        "benchmark": "supervised", "task": args.task, "device": str(device), "threads": torch.get_num_threads(),
        "meta_batch_size": cfg.meta_batch_size, "inner_steps": cfg.inner_steps, "timed_batches": args.batches,
        "rlmaml_first_order_batches_per_s": round(ours, 3),
        "naive_first_order_batches_per_s": round(naive, 3),
        "ratio": round(ours / naive, 3),
        "rlmaml_second_order_batches_per_s": round(second, 3),
        "gradient_relative_difference": gradient_difference,
    }
    print(json.dumps(result))
    return 0

