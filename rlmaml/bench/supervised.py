"""Meta-batches per second of supervised MAML: the batched engine, the per-task loop and learn2learn (one JSON object).

``rlmaml bench supervised [--task omniglot|omniglot-20way|omniglot-mamlpp|sinusoid] [--batches N] [--orders second,first]
[--implementations batched,loop,learn2learn] [key=value ...]``

Every implementation runs the same model, initial weights (``seed``) and pre-sampled meta-batches in one
process, each with its own Adam meta-optimizer:

* ``batched``: :func:`rlmaml.supervised.experiment.meta_update` with ``engine=batched`` (the tasks of the
  meta-batch through each layer together, ``task_chunk`` at a time: grouped convolutions over the
  task-stacked weights; ``task_chunk`` in the JSON is the group size used);
* ``loop``: the same with ``engine=loop`` (one task at a time, its graph freed after its backward);
* ``learn2learn``: ``learn2learn.algorithms.MAML(model, lr=α, first_order=…)``, per task ``clone()`` and
  ``adapt()`` for each inner step, the query loss / B back-propagated, then one Adam step; timed when
  learn2learn is importable (``learn2learn`` itself, or, when its optional dependencies gym/torchvision are
  missing, its ``algorithms.maml`` and ``utils`` modules alone), otherwise left out with the reason.

The implementations alternate meta-batch by meta-batch (the first of each round rotating), so load on a
shared machine falls on all of them alike. ``batches_per_s`` = 1 / the median seconds per meta-batch; each
ratio ``a_over_b`` is the median over rounds of t_b / t_a, from adjacent measurements.
``gradient_relative_difference`` = ‖g − g_loop‖ / ‖g_loop‖ for the meta-gradient of the first meta-batch from
the same initial weights: every implementation computes the same update, so it is at rounding level. With
several second-order inner steps that rounding (oneDNN's float32 convolutions) is amplified: for the
20-way preset (5 steps) either engine's float32 meta-gradient can be 1e-4 to 5e-2 off the float64 one,
where the engines agree to 1e-15 (docs/supervised.md, tests/test_supervised_engine.py).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import json
import os
import re
import sys
import time
import types

import numpy as np
import torch

from ..config import load_config, parse_overrides
from ..errors import UserError
from ..supervised.experiment import (
    SupervisedConfig,
    TaskSource,
    build_model,
    make_learner,
    meta_update,
    task_chunk,
    task_loss,
)

IMPLEMENTATIONS = ("batched", "loop", "learn2learn")
ORDERS = {"second": False, "first": True}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", default=[], help="config overrides key=value")
    parser.add_argument("--task", choices=["sinusoid", "omniglot", "omniglot-20way", "omniglot-mamlpp"], default="omniglot",
                        help="preset to benchmark (default: omniglot, 5-way 1-shot)")
    parser.add_argument("--batches", type=int, default=10, help="timed meta-batches per implementation (default 10)")
    parser.add_argument("--orders", default="second,first", help="comma-separated: second, first (default both)")
    parser.add_argument("--implementations", default=",".join(IMPLEMENTATIONS),
                        help="comma-separated subset of batched, loop, learn2learn (default all)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")


@functools.cache
def load_learn2learn_maml():
    """(learn2learn's MAML class, version) or (None, reason); looked up once per process."""
    try:
        import learn2learn

        return learn2learn.algorithms.MAML, learn2learn.__version__
    except ImportError as exc:
        spec = importlib.util.find_spec("learn2learn")
        if spec is None or not spec.submodule_search_locations:
            return None, f"learn2learn is not installed ({exc})"
        reason = exc
    # learn2learn's __init__ imports gym and torchvision; MAML needs neither
    for name in [n for n in sys.modules if n == "learn2learn" or n.startswith("learn2learn.")]:
        del sys.modules[name]
    root = next(iter(spec.submodule_search_locations))
    for name, path in (("learn2learn", root), ("learn2learn.algorithms", os.path.join(root, "algorithms"))):
        package = types.ModuleType(name)
        package.__path__ = [path]
        sys.modules[name] = package
    try:
        maml = importlib.import_module("learn2learn.algorithms.maml")
        with open(os.path.join(root, "_version.py")) as f:
            version = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", f.read())
    except (ImportError, OSError) as exc:
        return None, f"learn2learn's MAML does not import ({exc}; the package: {reason})"
    return maml.MAML, f"{version.group(1) if version else '?'} (algorithms.maml alone; the package: {reason})"


def learn2learn_step(maml, optimizer: torch.optim.Optimizer, batch, cfg: SupervisedConfig) -> dict[str, float]:
    """One meta-update through learn2learn: per task clone(), adapt() × k on the support loss, the query loss / B
    back-propagated into the meta-model, then one optimizer step."""
    loss = task_loss(cfg)
    optimizer.zero_grad(set_to_none=True)
    num_tasks, total = len(batch[0]), 0.0
    for xs, ys, xq, yq in zip(*batch):
        learner = maml.clone()
        for _ in range(cfg.inner_steps):
            learner.adapt(loss(learner(xs), ys))
        query = loss(learner(xq), yq) / num_tasks
        query.backward()
        total += float(query.detach())
    optimizer.step()
    return {"query_loss": total}


def _implementation(name: str, cfg: SupervisedConfig, device, maml_class):
    """(step(batch), meta-parameters in θ's order, zero-lr gradient optimizer) for one implementation."""
    torch.manual_seed(cfg.seed)
    if name == "learn2learn":
        model = build_model(cfg).to(device)
        maml = maml_class(model, lr=cfg.inner_step_size, first_order=cfg.first_order)
        optimizer = torch.optim.Adam(maml.parameters(), lr=cfg.meta_lr)
        return (lambda batch, opt=None: learn2learn_step(maml, opt or optimizer, batch, cfg)), list(model.parameters())
    c = load_config(SupervisedConfig, None, {**cfg.__dict__, "engine": name})
    model, params, step_sizes, optimizer = make_learner(c, device)
    return (lambda batch, opt=None: meta_update(model, params, step_sizes, opt or optimizer, batch, c)), \
        list(params.values())


def _gradient(name, cfg, device, maml_class, batch) -> torch.Tensor:
    step, tensors = _implementation(name, cfg, device, maml_class)
    step(batch, torch.optim.SGD(tensors, lr=0.0))
    return torch.cat([t.grad.flatten() for t in tensors])


def measure(names: list[str], cfg: SupervisedConfig, device, batches, maml_class) -> dict:
    """Alternating timings of ``names`` over ``batches`` (the first a warm-up) for ``cfg``'s derivative order."""
    g_loop = _gradient("loop", cfg, device, maml_class, batches[0])
    differences = {n: float((_gradient(n, cfg, device, maml_class, batches[0]) - g_loop).norm() / g_loop.norm())
                   for n in names if n != "loop"}
    steps = {n: _implementation(n, cfg, device, maml_class)[0] for n in names}
    for n in names:
        steps[n](batches[0])  # warm-up (allocations, lazy initialisation)
    seconds = {n: [] for n in names}
    for r, batch in enumerate(batches[1:]):
        for n in names[r % len(names):] + names[: r % len(names)]:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            tic = time.perf_counter()
            steps[n](batch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds[n].append(time.perf_counter() - tic)
    out = {"batches_per_s": {n: round(1.0 / float(np.median(s)), 4) for n, s in seconds.items()},
           "seconds_per_batch": {n: [round(t, 4) for t in s] for n, s in seconds.items()}}
    for a, b in (("batched", "loop"), ("batched", "learn2learn"), ("loop", "learn2learn")):
        if a in seconds and b in seconds:
            ratios = np.array(seconds[b]) / np.array(seconds[a])
            out[f"{a}_over_{b}"] = round(float(np.median(ratios)), 3)
            out[f"{a}_over_{b}_range"] = [round(float(ratios.min()), 3), round(float(ratios.max()), 3)]
    out["gradient_relative_difference"] = differences
    return out


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.batches < 1:
        raise UserError(f"--batches must be >= 1, got {args.batches}")
    orders = [o for o in args.orders.split(",") if o]
    names = [n for n in args.implementations.split(",") if n]
    for o in orders:
        if o not in ORDERS:
            raise UserError(f"--orders: {o!r} is not one of {', '.join(ORDERS)}")
    for n in names:
        if n not in IMPLEMENTATIONS:
            raise UserError(f"--implementations: {n!r} is not one of {', '.join(IMPLEMENTATIONS)}")
    if "loop" not in names:
        raise UserError("--implementations must include loop (the reference of the ratios and gradients)")
    overrides = {**parse_overrides(args.overrides), "device": args.device}
    cfg = load_config(SupervisedConfig, args.task, overrides)
    device = torch.device(cfg.device)
    maml_class, learn2learn = load_learn2learn_maml() if "learn2learn" in names else (None, "not requested")
    if maml_class is None:
        names = [n for n in names if n != "learn2learn"]
    rng = np.random.default_rng(cfg.seed)
    source = TaskSource(cfg, device)
    batches = [source.sample(rng, cfg.meta_batch_size) for _ in range(args.batches + 1)]
    load_before = os.getloadavg()[0]
    result = {
        "benchmark": "supervised", "task": args.task, "device": str(device), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "learn2learn": learn2learn if maml_class is not None else None,
        "meta_batch_size": cfg.meta_batch_size, "inner_steps": cfg.inner_steps, "timed_batches": args.batches,
        "seed": cfg.seed, "task_chunk": task_chunk(cfg, cfg.meta_batch_size),
    }
    if maml_class is None:
        result["learn2learn_left_out"] = learn2learn
    if cfg.classification:
        result.update(num_ways=cfg.num_ways, num_shots=cfg.num_shots, num_query=cfg.num_query,
                      num_filters=cfg.num_filters)
    for order in orders:
        c = load_config(SupervisedConfig, None, {**cfg.__dict__, "first_order": ORDERS[order]})
        result[f"{order}_order"] = measure(names, c, device, batches, maml_class)
    result["load_average_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(result))
    return 0
