"""The paper's comparison methods at evaluation time, on the same held-out tasks as MAML.

Finn et al. (2017, §5.3) compare the MAML initialisation θ_MAML with

* ``pretrained``: one policy trained with TRPO on the mixture of tasks (``rlmaml train … algorithm=pretrained``),
  fine-tuned at test time exactly like MAML;
* ``random``: a fresh initialisation θ_0 with the MAML run's architecture, drawn from the run's seed the way
  training draws its initial weights, fine-tuned the same way;
* ``oracle``: a policy that observes the task parameters (``algorithm=oracle``); it is not adapted and is shown
  as a horizontal reference.

Every method is evaluated on the SAME held-out tasks with the SAME seed and the MAML run's adaptation
settings (inner step sizes α_j, episodes per task, horizon, γ, λ): for k = 0..K inner steps,

    R_k = 1/T Σ_t  1/E Σ_e  Σ_h r_{h,t,e}   under π_{θ_k,t},   θ_{j+1,t} = θ_{j,t} − α_j ∇ L_REINFORCE(θ_{j,t}),

with α_0 = fast_lr and α_j = s·fast_lr after (s = ``later_step_scale``, see :mod:`rlmaml.rl.evaluate`),

reported as the mean over tasks with a 95% confidence half-width ``1.96 · s / √T`` (normal approximation,
``s`` the sample standard deviation over tasks). The result goes under ``methods`` in ``eval.json``.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..checkpoint import CHECKPOINT_NAME
from ..errors import UserError


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """``--compare DIR …`` (baseline runs), ``--render N``, ``--render-out DIR``, ``--fps``."""
    group = parser.add_argument_group("comparison methods and videos")
    group.add_argument("--compare", nargs="+", default=[], metavar="DIR",
                       help="runs of the comparison methods (rlmaml train … algorithm=pretrained|oracle), "
                            "evaluated on the same tasks; a random initialisation is always added")
    group.add_argument("--no-random", action="store_true",
                       help="leave out the random-initialisation baseline")
    group.add_argument("--render", type=int, default=0, metavar="N",
                       help="render the first N held-out tasks before adaptation and after each inner step")
    group.add_argument("--render-out", default=None, metavar="DIR",
                       help="where videos go (default: RUN_DIR/videos)")
    group.add_argument("--fps", type=float, default=None,
                       help="video frame rate (default: real time, 1/dt of the run's env; 20 for navigation)")


# ------------------------------------------------------------------------------------------------ runs
def _evaluate_api():
    from . import evaluate

    return evaluate


def require_checkpoint(run_dir: str | Path, what: str = "evaluation") -> Path:
    """``run_dir/checkpoint.pt`` or a one-line error telling how to get one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {str(run_dir)!r} does not exist")
    path = run_dir / CHECKPOINT_NAME
    if not path.is_file():
        raise UserError(f"{what} needs a trained policy but {str(run_dir)!r} has no {CHECKPOINT_NAME}; "
                        "train first (rlmaml train PRESET --out DIR) or pass a run directory")
    return path


def trained_batches(run_dir: str | Path) -> int | None:
    """How many training batches the run's checkpoint has completed (None when not recorded)."""
    from ..checkpoint import load_checkpoint

    batch = load_checkpoint(run_dir).get("batch")
    return None if batch is None else int(batch)


def method_name(config: Any, run_dir: str | Path, taken: Sequence[str]) -> str:
    """The run's ``algorithm`` (``maml``/``pretrained``/``oracle``), made unique with the directory name."""
    name = str(getattr(config, "algorithm", None) or "maml")
    if name in taken:
        name = f"{name}:{Path(run_dir).name}"
    return name


def random_init(config: Any, like_policy: torch.nn.Module):
    """θ_0: a fresh policy with the run's architecture, initialised from the run's seed."""
    from .policies import action_scale_of, build_policy

    with torch.random.fork_rng(devices=[]):  # leaves the caller's random stream untouched
        torch.manual_seed(int(config.seed))
        policy = build_policy(like_policy.obs_dim, like_policy.out_dim, list(config.hidden_sizes),
                              config.nonlinearity, getattr(config, "init_log_std", 0.0),
                              discrete=not hasattr(like_policy, "log_std"), action_scale=action_scale_of(like_policy))
    policy = policy.to(next(like_policy.parameters()).device)
    return policy, {n: p.detach().clone() for n, p in policy.named_parameters()}


def recorded_adaptation_returns(policy, params, config, tasks: Sequence[dict], grad_steps: int, seed: int,
                                device: str | torch.device = "cpu", **options):
    """:func:`rlmaml.rl.evaluate.adaptation_returns` with ``record_state=True``: the MuJoCo Episodes carry
    ``infos["qpos"]``/``["qvel"]`` for rendering. Same tasks, rollout seeds, adaptation and returns as the
    evaluation (recording states touches neither the dynamics nor any random stream); ``options`` are the
    evaluator's (``oracle``, ``episodes_per_task``, ``later_step_scale``)."""
    return _evaluate_api().adaptation_returns(policy, params, config, list(tasks), grad_steps, seed, device,
                                              record_state=True, **options)


def episode_length_stats(phases: Sequence[Any], horizon: int) -> dict[str, list[float]]:
    """Per phase: ``episode_length``, the mean number of steps per episode (Σ_h mask), and ``ended_early``, the
    fraction of episodes that terminated before ``horizon``."""
    lengths = [eps.mask.sum(dim=0).double() for eps in phases]  # [T, E] per phase
    return {"episode_length": [n.mean().item() for n in lengths],
            "ended_early": [(n < horizon).double().mean().item() for n in lengths]}


def evaluate_methods(maml_run_dir: str | Path, compare_dirs: Sequence[str | Path] = (),
                     tasks: Sequence[dict] | None = None, grad_steps: int = 3, seed: int = 0,
                     device: str | torch.device = "cpu", *, num_tasks: int = 40, include_random: bool = True,
                     episodes_per_task: int | None = None, record: Sequence[str] = (),
                     progress: bool = False, later_step_scale: float | None = None) -> dict[str, Any]:
    """Evaluate the run in ``maml_run_dir`` and the comparison methods on the same held-out tasks.

    ``tasks``: the held-out tasks (default: :func:`rlmaml.rl.evaluate.held_out_tasks` with ``num_tasks`` and
    ``seed``). Every method is adapted with the evaluated run's settings (α = ``fast_lr``, episodes per task,
    horizon, γ, λ) for 0..``grad_steps`` steps; the oracle is evaluated once, without adaptation.
    Returns ``{"methods": {name: {"mean", "ci95", "per_task", "episode_length", "ended_early", "run_dir",
    "trained_batches", "grad_steps"}},
    "episodes": {name: [Episodes per phase]}, "tasks": [...]}``; ``episode_length`` is the mean number of steps
    per episode in each phase and ``ended_early`` the fraction of episodes that terminated before the horizon
    (an Ant that fell or jumped out of its healthy height range). ``episodes`` holds the recordings (with
    MuJoCo states) of the methods named in ``record`` (e.g. ``["maml"]`` to render them)."""
    evaluate = _evaluate_api()
    if isinstance(grad_steps, bool) or not isinstance(grad_steps, int) or grad_steps < 0:
        raise UserError(f"--grad-steps must be a non-negative integer, got {grad_steps!r}")
    require_checkpoint(maml_run_dir)
    for d in compare_dirs:
        require_checkpoint(d, "--compare")
    scale = evaluate.LATER_STEP_SCALE if later_step_scale is None else later_step_scale
    config, policy, params = evaluate.load_run(maml_run_dir, device)
    evaluate.step_sizes(config.fast_lr, grad_steps, scale)  # a bad scale fails before any work
    if tasks is None:
        tasks = evaluate.held_out_tasks(config, num_tasks, seed)
    tasks = list(tasks)
    methods: dict[str, Any] = {}
    episodes: dict[str, list] = {}
    bar = tqdm(total=1 + len(compare_dirs) + int(include_random), desc="evaluate methods", unit="method",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)

    def run_method(name, run_dir, policy, params, steps, oracle=False):
        bar.set_postfix_str(name)
        fn = recorded_adaptation_returns if name in record else evaluate.adaptation_returns
        returns, phases = fn(policy, params, config, tasks, steps, seed, device, oracle=oracle,
                             episodes_per_task=episodes_per_task, later_step_scale=scale)
        methods[name] = {**evaluate.summarize(returns), "per_task": returns.tolist(),
                         **episode_length_stats(phases, config.horizon),
                         "run_dir": None if run_dir is None else str(run_dir),
                         "trained_batches": 0 if run_dir is None else trained_batches(run_dir),
                         "grad_steps": list(range(steps + 1))}
        if name in record:
            episodes[name] = phases
        bar.update(1)

    from .config import ENV_KEYS

    others = [(run_dir, *evaluate.load_run(run_dir, device)) for run_dir in compare_dirs]
    for run_dir, other_config, _, _ in others:  # a mismatch fails before any evaluation work
        if other_config.env != config.env:
            raise UserError(f"--compare {str(run_dir)!r} was trained on {other_config.env!r} but the evaluated run "
                            f"on {config.env!r}; compare runs of the same env")
        for key in ENV_KEYS:
            if getattr(other_config, key) != getattr(config, key):
                raise UserError(f"--compare {str(run_dir)!r} was trained with {key}={getattr(other_config, key)} but "
                                f"the evaluated run with {key}={getattr(config, key)}; compare runs of the same env "
                                "settings")
    run_method(method_name(config, maml_run_dir, []), maml_run_dir, policy, params, grad_steps,
               oracle=config.algorithm == "oracle")
    for run_dir, other_config, other_policy, other_params in others:
        oracle = other_config.algorithm == "oracle"
        run_method(method_name(other_config, run_dir, list(methods)), run_dir, other_policy, other_params,
                   0 if oracle else grad_steps, oracle=oracle)
    if include_random and "random" not in methods:
        random_policy, random_params = random_init(config, policy)
        run_method("random", None, random_policy, random_params, grad_steps)
    bar.close()
    return {"methods": methods, "episodes": episodes, "tasks": tasks}


# ------------------------------------------------------------------------------------------- rendering
def render_from_evaluation(run_dir: str | Path, env_id: str, phases: Sequence[Any], tasks: Sequence[dict],
                           num_render: int, out_dir: str | Path | None = None, fps: float = 20,
                           width: int = 480, height: int = 320, progress: bool = False) -> list[Path]:
    """Videos of the first ``num_render`` tasks from the Episodes the evaluation recorded (one per phase:
    before adaptation, after 1 step, …), written to ``out_dir`` (default ``run_dir/videos``)."""
    from .render import render_adaptation

    if isinstance(num_render, bool) or not isinstance(num_render, int) or num_render < 1:
        raise UserError(f"--render must be a positive number of tasks, got {num_render!r}")
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "videos"
    return render_adaptation(env_id, phases, tasks, out_dir, num_tasks=num_render, fps=fps,
                             width=width, height=height, progress=progress)


def real_time_fps(config) -> float:
    """1/dt of the config's MuJoCo env (20 at Gymnasium's frame_skip 5, 100 at frame_skip 1, 50 with timestep 0.02);
    20 otherwise."""
    from rlmaml.envs import MUJOCO_ENV_IDS, make_batched

    from .config import env_kwargs

    if config.env not in MUJOCO_ENV_IDS:
        return 20.0
    env = make_batched(config.env, 1, num_threads=1, **env_kwargs(config))
    dt = env.dt
    env.close()
    return 1.0 / dt


def check_render_request(run_dir: str | Path, num_render: int, fps: float | None = None) -> None:
    """Fail early (before any evaluation work) when ``--render`` cannot be honoured."""
    if num_render < 0:
        raise UserError(f"--render must be a non-negative number of tasks, got {num_render}")
    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise UserError(f"--fps must be a positive number, got {fps}")
    if num_render:
        require_checkpoint(run_dir, "--render")


# ------------------------------------------------------------------------------------------------- CLI
def output_paths(run_dir: str | Path, out: str | None, render_out: str | None) -> tuple[Path, Path | None]:
    """(eval.json path, video directory): ``--out FILE.json`` names the JSON; any other ``--out`` is a
    directory that gets ``eval.json`` and ``videos/``; ``--render-out`` overrides the video directory."""
    if out is None:
        json_path = Path(run_dir) / "eval.json"
    elif out.endswith(".json"):
        json_path = Path(out)
    else:
        json_path = Path(out) / "eval.json"
    if render_out is not None:
        return json_path, Path(render_out)
    return json_path, (json_path.parent / "videos" if out is not None else None)


def run_with_comparisons(args) -> int:
    """``rlmaml evaluate RUN_DIR [--compare DIR …] [--render N]``: eval.json with every method on the same
    held-out tasks (layout of :func:`rlmaml.rl.evaluate.run` plus the comparison methods), then videos."""
    import json

    import numpy as np

    evaluate = _evaluate_api()
    if args.episodes_per_task is not None and args.episodes_per_task <= 0:
        raise UserError(f"--episodes-per-task must be a positive integer, got {args.episodes_per_task}")
    check_render_request(args.run_dir, args.render, args.fps)
    require_checkpoint(args.run_dir)
    for d in args.compare:
        require_checkpoint(d, "--compare")
    config, _, _ = evaluate.load_run(args.run_dir, args.device)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    tasks = evaluate.held_out_tasks(config, args.num_tasks, args.seed)
    comparison = evaluate_methods(args.run_dir, args.compare, tasks, args.grad_steps, args.seed, args.device,
                                  include_random=not args.no_random, episodes_per_task=args.episodes_per_task,
                                  record=[config.algorithm] if args.render else [], progress=True,
                                  later_step_scale=args.later_step_scale)
    result = {
        "env": config.env,
        "num_tasks": args.num_tasks,
        "grad_steps": list(range(args.grad_steps + 1)),
        "seed": args.seed,
        "episodes_per_task": args.episodes_per_task or config.episodes_per_task,
        "fast_lr": config.fast_lr,
        "later_step_scale": args.later_step_scale,
        "step_sizes": evaluate.step_sizes(config.fast_lr, args.grad_steps, args.later_step_scale),
        "methods": comparison["methods"],
        "tasks": [{k: np.asarray(v).tolist() for k, v in t.items()} for t in tasks],
    }
    out, video_dir = output_paths(args.run_dir, args.out, args.render_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"inner step sizes: {', '.join(f'{a:g}' for a in result['step_sizes'])}")
    for name, summary in comparison["methods"].items():
        table = "  ".join(f"{j}: {m:.2f} ± {c:.2f}" for j, (m, c) in enumerate(zip(summary["mean"], summary["ci95"])))
        print(f"{name:>12} on {args.num_tasks} tasks of {config.env}  {table}")
        if any(summary["ended_early"]):
            early = "  ".join(f"{j}: {100 * f:.1f}%" for j, f in enumerate(summary["ended_early"]))
            print(f"{'':>12} episodes that ended before the horizon  {early}")
    print(f"-> {out}")
    if args.render:
        fps = args.fps if args.fps is not None else real_time_fps(config)
        for path in render_from_evaluation(args.run_dir, config.env, comparison["episodes"][config.algorithm],
                                           tasks, args.render, video_dir, fps, progress=True):
            print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rlmaml.rl.compare`` = ``rlmaml evaluate`` with the comparison and video options."""
    import sys

    evaluate = _evaluate_api()
    parser = argparse.ArgumentParser(prog="python -m rlmaml.rl.compare",
                                     description="evaluate a run and the comparison methods on the same tasks")
    evaluate.add_arguments(parser)  # includes add_compare_arguments
    args = parser.parse_args(argv)
    try:
        return run_with_comparisons(args)
    except UserError as exc:
        print(f"rlmaml: error: {exc}", file=sys.stderr)
        return 2


__all__ = [
    "add_compare_arguments",
    "check_render_request",
    "episode_length_stats",
    "evaluate_methods",
    "main",
    "method_name",
    "output_paths",
    "random_init",
    "real_time_fps",
    "recorded_adaptation_returns",
    "render_from_evaluation",
    "require_checkpoint",
    "run_with_comparisons",
]


if __name__ == "__main__":
    raise SystemExit(main())
