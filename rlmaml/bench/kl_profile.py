"""Actual KL along a TRPO meta-step against its quadratic model, at a trained run's checkpoint.

TRPO scales the natural-gradient direction s so that the quadratic model ½ sᵀ(F + λI)s equals ``max_kl``, then
backtracks (ratio 0.8) until the surrogate improves and the measured mean KL(π_old ‖ π_θ') ≤ ``max_kl``. This
script samples a few meta-batches with the checkpoint's θ, computes the step exactly as training does, and
prints the measured KL and surrogate at fractions t of it. If the Fisher-vector product is right, KL(t) / (t²·
max_kl) → 1 as t → 0; its value at t = 1 is how far the full step overshoots; the last column is the number of
line-search evaluations training would make. ``--fisher-tasks`` overrides the run's ``fisher_tasks`` (0 = all
tasks), to compare the subsampled Fisher with the full one on the same batches. ``--smooth-relu BETA`` evaluates
the same weights with ReLU replaced by the smooth softplus(β·x)/β (within log 2/β of ReLU everywhere): the
Fisher model is exact only for a twice-differentiable adaptation, and a ReLU network's inner gradient jumps
wherever a unit's pre-activation changes sign.

usage: rlmaml bench kl-profile RUN_DIR [--batches 3] [--fisher-tasks N] [--seed 12345] [--smooth-relu 50] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json

import torch

from ..core import flatten, unflatten
from ..core.optim import backtracking_line_search
from ..errors import UserError
from ..rl.algos import TRPO, make_meta_optimizer
from ..rl.components import make_env
from ..rl.evaluation import load_run
from ..rl.policies import NONLINEARITIES
from ..rl.sampling import batch_seeds, make_sampler

FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 0.8, 1.0)


def profile(learner: TRPO, train_batches, valid) -> dict:
    """KL(t)/(t²·max_kl) and the surrogate gain at the fractions t of one TRPO step, and the line search's
    number of evaluations, at the learner's θ (left unchanged)."""
    max_kl = learner.max_kl
    metrics = {}
    terms = learner.terms(train_batches, valid)
    full_step = learner.natural_step(terms, metrics)
    loss = metrics["surrogate_before"]
    theta = learner.params
    flat_theta = flatten(theta).detach()

    @functools.cache  # the line search below retries t = 1 and 0.8, already measured for the table
    def at(t: float) -> tuple[float, float]:
        return terms.surrogate_and_kl(unflatten(flat_theta - t * full_step, theta))

    rows = {t: at(t) for t in FRACTIONS}
    _, evaluations, _, _ = backtracking_line_search(at, max_kl, loss, learner.ls_max_steps,  # as in training
                                                      learner.ls_backtrack_ratio)
    return {"surrogate_before": loss,
            "kl_over_model": {t: kl / (t * t * max_kl) for t, (_, kl) in rows.items()},
            "surrogate_gain": {t: loss - s for t, (s, _) in rows.items()},
            "line_search_evaluations": evaluations}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `rlmaml train` (TRPO)")
    parser.add_argument("--batches", type=int, default=3, help="meta-batches to profile (default 3)")
    parser.add_argument("--fisher-tasks", type=int, default=None, help="override the run's fisher_tasks")
    parser.add_argument("--seed", type=int, default=12345, help="seeds the tasks and episodes (default 12345)")
    parser.add_argument("--smooth-relu", type=float, default=None, metavar="BETA",
                        help="replace ReLU by softplus(BETA·x)/BETA in the loaded policy")
    parser.add_argument("--json", action="store_true", help="one JSON object per batch instead of the table")


def run(args) -> int:
    if args.batches <= 0:
        raise UserError(f"--batches must be a positive integer, got {args.batches}")
    if args.fisher_tasks is not None and args.fisher_tasks < 0:
        raise UserError(f"--fisher-tasks must be 0 (all tasks) or a positive integer, got {args.fisher_tasks}")
    torch.manual_seed(args.seed)
    cfg, policy, params = load_run(args.run_dir)
    if cfg.meta_optimizer != "trpo":
        raise UserError(f"{args.run_dir}: meta_optimizer={cfg.meta_optimizer!r}; the KL profile is of TRPO steps")
    if args.smooth_relu is not None:
        if cfg.nonlinearity != "relu" or args.smooth_relu <= 0:
            raise UserError(f"--smooth-relu needs a ReLU run and a positive BETA, got nonlinearity={cfg.nonlinearity!r}, "
                            f"BETA={args.smooth_relu}")
        beta = args.smooth_relu
        NONLINEARITIES["smooth_relu"] = lambda x: torch.nn.functional.softplus(x, beta=beta)
        for module in policy.modules():
            if getattr(module, "nonlinearity", None) == "relu":
                module.nonlinearity = "smooth_relu"
    if args.fisher_tasks is not None:
        cfg.fisher_tasks = args.fisher_tasks
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    env = make_env(cfg, 1, 1)  # the task distribution and the spaces (the sampler has its own env)
    learner = make_meta_optimizer(cfg, policy, {n: p.clone() for n, p in params.items()})
    sampler = make_sampler(cfg, policy)
    k = cfg.inner_steps
    header = ("| batch | " + " | ".join(f"KL/model t={t:g}" for t in FRACTIONS)
              + " | surrogate gain t=0.1 / t=1 (×10⁻³) | line-search evaluations |")
    if not args.json:
        smooth = "" if args.smooth_relu is None else f", ReLU evaluated as softplus(β·x)/β with β = {args.smooth_relu:g}"
        print(f"{args.run_dir}: fisher_tasks={cfg.fisher_tasks} of {cfg.meta_batch_size}, max_kl={cfg.max_kl}, "
              f"nonlinearity={cfg.nonlinearity}{smooth}\n")
        print(header)
        print("|---" * (len(FRACTIONS) + 3) + "|")
    for b in range(args.batches):
        seeds = batch_seeds(args.seed, b, k + 2)
        tasks = env.sample_tasks(cfg.meta_batch_size, seed=seeds[0])
        phases = sampler.sample(learner.params, tasks, seeds[1:], [cfg.fast_lr] * k)
        result = profile(learner, phases.train_batches, phases.valid)
        if args.json:
            print(json.dumps({"batch": b, **result}))
        else:
            gain = result["surrogate_gain"]
            print(f"| {b} | " + " | ".join(f"{v:.2f}" for v in result["kl_over_model"].values())
                  + f" | {1e3 * gain[0.1]:.2f} / {1e3 * gain[1.0]:.2f} | {result['line_search_evaluations']} |")
    return 0
