"""Evaluation of meta-trained policies on held-out tasks, with the paper's comparison methods.

For each held-out task t (drawn from a task RNG seeded only by ``seed``, so every method sees the same tasks)
and each phase j = 0..K:

    R_j(t) = mean over E episodes of Σ_h r_h   under π_θ_j,    θ_{j+1} = θ_j − α_j ∇L_t(θ_j)

with the inner loss L_t of training (GAE advantages, linear baseline) and the step sizes of the original MAML-RL
evaluation: α_0 = α (= fast_lr, the step the policy was meta-trained for) and α_j = s·α for every later step,
s = ``later_step_scale`` (default 0.5, as that code's test scripts, which gave the first step
``init_learning_rate`` = α and the rest ``learning_rate`` = α/2); s = 1 keeps α. Each method reports
mean_t R_j(t) with the 95% confidence half-width 1.96·std_t/√N (:func:`rlmaml.stats.mean_ci95`).

The methods (Finn et al., 2017, §5.3), all on the same tasks and rollout seeds with the evaluated run's
adaptation settings (α_j, episodes per task, horizon, γ, λ):

* the evaluated run (``maml``, or its ``algorithm``);
* ``pretrained``: one policy trained with TRPO on the mixture of tasks (``algorithm=pretrained``), fine-tuned
  at test time exactly like MAML;
* ``random``: a fresh initialisation θ_0 with the run's architecture, drawn from the run's seed the way
  training draws its initial weights, fine-tuned the same way;
* ``oracle``: a policy that observes the task parameters (``algorithm=oracle``); not adapted.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..checkpoint import CHECKPOINT_NAME, load_checkpoint
from ..config import build_config, read_yaml_source
from ..envs.registry import family
from ..errors import UserError
from ..stats import mean_ci95
from .components import make_env
from .config import ENV_KEYS, TrainConfig
from .policies import Policy, action_scale_of, build_policy, saved_action_scale
from .sampling import batch_seeds, close_sampler, make_sampler

EVAL_SEED_OFFSET = 7_919  # keeps evaluation rollout seeds apart from training seeds (seed, batch)
LATER_STEP_SCALE = 0.5  # α_j = s·α for j ≥ 1: the original MAML-RL evaluation protocol


def step_sizes(fast_lr: float, grad_steps: int, later_step_scale: float = LATER_STEP_SCALE) -> list[float]:
    """[α, s·α, …, s·α]: the step size of each of the ``grad_steps`` evaluation inner steps."""
    if not (later_step_scale > 0 and math.isfinite(later_step_scale)):
        raise UserError(f"--later-step-scale must be a positive number, got {later_step_scale}")
    return [float(fast_lr) * (1.0 if j == 0 else float(later_step_scale)) for j in range(grad_steps)]


# ----------------------------------------------------------------------------- runs
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


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[TrainConfig, Policy, dict]:
    """(config, policy, params) of a training run directory: config.yaml + checkpoint.pt.

    ``params`` is a dict of detached tensors on ``device``; a directory without a checkpoint
    raises a one-line :class:`rlmaml.checkpoint.CheckpointError`.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {str(run_dir)!r} does not exist")
    state = load_checkpoint(run_dir, map_location=device)
    if (run_dir / "config.yaml").is_file():
        config = build_config(TrainConfig, read_yaml_source(run_dir / "config.yaml"))
    else:
        config = build_config(TrainConfig, dict(state["config"]))
    policy = build_policy(state["obs_dim"], state["act_dim"], config.hidden_sizes, config.nonlinearity,
                          config.init_log_std, action_scale=saved_action_scale(state)).to(device)
    params = {n: p.detach().to(device) for n, p in state["learner"]["params"].items()}
    return config, policy, params


def trained_batches(run_dir: str | Path) -> int | None:
    """How many training batches the run's checkpoint has completed (None when not recorded)."""
    batch = load_checkpoint(run_dir).get("batch")
    return None if batch is None else int(batch)


def held_out_tasks(config: TrainConfig, num_tasks: int, seed: int) -> list[dict]:
    """``num_tasks`` tasks of the config's env family drawn from a task RNG seeded by ``seed`` only: the family's
    meta-test tasks where its record has ``held_out`` (Meta-World's test split), else its training distribution."""
    if num_tasks <= 0:
        raise UserError(f"--num-tasks must be a positive integer, got {num_tasks}")
    held_out = family(config.env).held_out
    if held_out is not None:
        return held_out(num_tasks, seed)
    return make_env(config, 1, 1, oracle=False).sample_tasks(num_tasks, seed=seed)


# ----------------------------------------------------------------------------- adaptation
def adaptation_returns(policy: Policy, params, config: TrainConfig, tasks: list[dict], grad_steps: int, seed: int,
                       device: str | torch.device = "cpu", oracle: bool = False,
                       episodes_per_task: int | None = None, record_state: bool = False,
                       later_step_scale: float = LATER_STEP_SCALE):
    """Returns after 0..``grad_steps`` inner steps from θ = ``params`` on every task, with step sizes
    :func:`step_sizes` (``config.fast_lr`` first, ``later_step_scale`` times it afterwards).

    Returns ``(returns, episodes)``: ``returns`` is a float tensor ``[grad_steps + 1, num_tasks]`` (mean
    undiscounted return over ``episodes_per_task`` episodes, default the config's), and ``episodes[j]`` the
    :class:`~rlmaml.rl.episodes.Episodes` sampled in phase j. Rollout seeds depend only on ``seed`` and j, so
    different policies are evaluated on identical tasks and env resets. ``oracle=True`` builds the env with the
    task parameters appended to the observation; ``record_state=True`` makes MuJoCo envs record ``qpos``/``qvel``
    in the episode infos (for rendering; it touches neither the dynamics nor any random stream).
    """
    if grad_steps < 0:
        raise UserError(f"--grad-steps must be a non-negative integer, got {grad_steps}")
    alphas = step_sizes(config.fast_lr, grad_steps, later_step_scale)
    episodes_per_task = episodes_per_task or config.episodes_per_task
    sampler = make_sampler(config, policy, device, num_tasks=len(tasks), episodes_per_task=episodes_per_task,
                           oracle=oracle, **({"record_state": True} if record_state else {}))
    try:
        phases = sampler.sample(params, tasks, batch_seeds(seed + EVAL_SEED_OFFSET, 0, grad_steps + 1), alphas)
    finally:
        close_sampler(sampler)
    returns = torch.stack([eps.returns.mean(dim=1) for eps in phases.episodes])
    return returns.cpu(), phases.episodes


def summarize(returns: torch.Tensor) -> dict:
    """{"mean": [mean over tasks per phase], "ci95": [1.96·std/√N per phase]} for returns ``[k+1, N]``
    (the half-width is 0 for a single task)."""
    mean, half = mean_ci95(returns.double().numpy(), axis=1)
    return {"mean": np.atleast_1d(mean).tolist(), "ci95": np.nan_to_num(np.atleast_1d(half), nan=0.0).tolist()}


def success_stats(phases: Sequence[Any], tasks: Sequence[dict]) -> dict[str, Any]:
    """For envs that report ``info["success"]``: per phase the success rate over tasks (mean over each task's
    episodes, then mean and 95% half-width over tasks) and, when the tasks name their ``class`` (Meta-World's
    ML10/ML45), the rate of each class; empty otherwise."""
    if phases[0].successes is None:
        return {}
    per_task = torch.stack([eps.successes.mean(dim=1) for eps in phases])  # [k+1, T]
    out = {"success": {**summarize(per_task), "per_task": per_task.tolist()}}
    classes = [t.get("class") for t in tasks]
    if all(c is not None for c in classes):
        out["success_by_class"] = {c: per_task[:, [i for i, x in enumerate(classes) if x == c]].mean(dim=1).tolist()
                                   for c in dict.fromkeys(classes)}
    return out


def episode_length_stats(phases: Sequence[Any], horizon: int) -> dict[str, list[float]]:
    """Per phase: ``episode_length``, the mean number of steps per episode (Σ_h mask), and ``ended_early``, the
    fraction of episodes that terminated before ``horizon``."""
    lengths = [eps.lengths.double() for eps in phases]  # [T, E] per phase
    return {"episode_length": [n.mean().item() for n in lengths],
            "ended_early": [(n < horizon).double().mean().item() for n in lengths]}


# ----------------------------------------------------------------------------- comparison methods
def method_name(config: Any, run_dir: str | Path, taken: Sequence[str]) -> str:
    """The run's ``algorithm`` (``maml``/``pretrained``/``oracle``), made unique with the directory name."""
    name = str(getattr(config, "algorithm", None) or "maml")
    if name in taken:
        name = f"{name}:{Path(run_dir).name}"
    return name


def random_init(config: Any, like_policy: torch.nn.Module):
    """θ_0: a fresh policy with the run's architecture, initialised from the run's seed."""
    with torch.random.fork_rng(devices=[]):  # leaves the caller's random stream untouched
        torch.manual_seed(int(config.seed))
        policy = build_policy(like_policy.obs_dim, like_policy.out_dim, list(config.hidden_sizes),
                              config.nonlinearity, getattr(config, "init_log_std", 0.0),
                              discrete=not hasattr(like_policy, "log_std"), action_scale=action_scale_of(like_policy))
    policy = policy.to(next(like_policy.parameters()).device)
    return policy, {n: p.detach().clone() for n, p in policy.named_parameters()}


def recorded_adaptation_returns(policy, params, config, tasks: Sequence[dict], grad_steps: int, seed: int,
                                device: str | torch.device = "cpu", **options):
    """:func:`adaptation_returns` with ``record_state=True``: the MuJoCo Episodes carry ``infos["qpos"]``/
    ``["qvel"]`` for rendering. Same tasks, rollout seeds, adaptation and returns as the evaluation;
    ``options`` are the evaluator's (``oracle``, ``episodes_per_task``, ``later_step_scale``)."""
    return adaptation_returns(policy, params, config, list(tasks), grad_steps, seed, device, record_state=True,
                              **options)


def _check_comparable(config: TrainConfig, others) -> None:
    """A comparison run of another env or env setting fails before any evaluation work."""
    for run_dir, other_config, _, _ in others:
        if other_config.env != config.env:
            raise UserError(f"--compare {str(run_dir)!r} was trained on {other_config.env!r} but the evaluated run "
                            f"on {config.env!r}; compare runs of the same env")
        for key in ENV_KEYS:
            if getattr(other_config, key) != getattr(config, key):
                raise UserError(f"--compare {str(run_dir)!r} was trained with {key}={getattr(other_config, key)} but "
                                f"the evaluated run with {key}={getattr(config, key)}; compare runs of the same env "
                                "settings")


def evaluate_methods(maml_run_dir: str | Path, compare_dirs: Sequence[str | Path] = (),
                     tasks: Sequence[dict] | None = None, grad_steps: int = 3, seed: int = 0,
                     device: str | torch.device = "cpu", *, num_tasks: int = 40, include_random: bool = True,
                     episodes_per_task: int | None = None, record: Sequence[str] = (),
                     progress: bool = False, later_step_scale: float | None = None) -> dict[str, Any]:
    """Evaluate the run in ``maml_run_dir`` and the comparison methods on the same held-out tasks.

    ``tasks``: the held-out tasks (default: :func:`held_out_tasks` with ``num_tasks`` and ``seed``). Every
    method is adapted with the evaluated run's settings (α = ``fast_lr``, episodes per task, horizon, γ, λ) for
    0..``grad_steps`` steps; the oracle is evaluated once, without adaptation.
    Returns ``{"methods": {name: {"mean", "ci95", "per_task", "episode_length", "ended_early", "run_dir",
    "trained_batches", "grad_steps"} (with "success" and "success_by_class" of :func:`success_stats` for envs
    that report success)}, "episodes": {name: [Episodes per phase]}, "tasks": [...]}``;
    ``episode_length`` is the mean number of steps per episode in each phase and ``ended_early`` the fraction
    of episodes that terminated before the horizon (an Ant that fell or jumped out of its healthy height
    range). ``episodes`` holds the recordings (with MuJoCo states) of the methods named in ``record``.
    """
    if isinstance(grad_steps, bool) or not isinstance(grad_steps, int) or grad_steps < 0:
        raise UserError(f"--grad-steps must be a non-negative integer, got {grad_steps!r}")
    require_checkpoint(maml_run_dir)
    for d in compare_dirs:
        require_checkpoint(d, "--compare")
    scale = LATER_STEP_SCALE if later_step_scale is None else later_step_scale
    config, policy, params = load_run(maml_run_dir, device)
    step_sizes(config.fast_lr, grad_steps, scale)  # a bad scale fails before any work
    tasks = list(held_out_tasks(config, num_tasks, seed) if tasks is None else tasks)
    methods: dict[str, Any] = {}
    episodes: dict[str, list] = {}
    bar = tqdm(total=1 + len(compare_dirs) + int(include_random), desc="evaluate methods", unit="method",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)

    def run_method(name, run_dir, policy, params, steps, oracle=False):
        bar.set_postfix_str(name)
        returns, phases = adaptation_returns(policy, params, config, tasks, steps, seed, device, oracle=oracle,
                                             episodes_per_task=episodes_per_task, record_state=name in record,
                                             later_step_scale=scale)
        methods[name] = {**summarize(returns), "per_task": returns.tolist(),
                         **episode_length_stats(phases, config.horizon), **success_stats(phases, tasks),
                         "run_dir": None if run_dir is None else str(run_dir),
                         "trained_batches": 0 if run_dir is None else trained_batches(run_dir),
                         "grad_steps": list(range(steps + 1))}
        if name in record:
            episodes[name] = phases
        bar.update(1)

    others = [(run_dir, *load_run(run_dir, device)) for run_dir in compare_dirs]
    _check_comparable(config, others)
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


def evaluation_report(config: TrainConfig, comparison: dict[str, Any], *, num_tasks: int, grad_steps: int,
                      seed: int, episodes_per_task: int | None, later_step_scale: float) -> dict[str, Any]:
    """The eval.json document: the protocol (env, tasks, steps, seed, step sizes) and every method's numbers."""
    return {
        "env": config.env,
        "num_tasks": num_tasks,
        "grad_steps": list(range(grad_steps + 1)),
        "seed": seed,
        "episodes_per_task": episodes_per_task or config.episodes_per_task,
        "fast_lr": config.fast_lr,
        "later_step_scale": later_step_scale,
        "step_sizes": step_sizes(config.fast_lr, grad_steps, later_step_scale),
        "methods": comparison["methods"],
        "tasks": [{k: np.asarray(v).tolist() for k, v in t.items()} for t in comparison["tasks"]],
    }


# ----------------------------------------------------------------------------- videos
def real_time_fps(config: TrainConfig) -> float:
    """1/dt of the config's env when it has a control interval (the MuJoCo families: 20 at Gymnasium's frame_skip
    5, 100 at frame_skip 1, 50 with timestep 0.02); 20 otherwise."""
    env = make_env(config, 1, 1, oracle=False)
    dt = getattr(env, "dt", None)
    env.close()
    return 1.0 / dt if dt else 20.0


def check_render_request(run_dir: str | Path, num_render: int, fps: float | None = None) -> None:
    """Fail early (before any evaluation work) when ``--render`` cannot be honoured."""
    if num_render < 0:
        raise UserError(f"--render must be a non-negative number of tasks, got {num_render}")
    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise UserError(f"--fps must be a positive number, got {fps}")
    if num_render:
        require_checkpoint(run_dir, "--render")


def render_from_evaluation(run_dir: str | Path, env_id: str, phases: Sequence[Any], tasks: Sequence[dict],
                           num_render: int, out_dir: str | Path | None = None, fps: float = 20,
                           width: int = 480, height: int = 320, progress: bool = False) -> list[Path]:
    """Videos of the first ``num_render`` tasks from the Episodes the evaluation recorded (one per phase:
    before adaptation, after 1 step, …), written to ``out_dir`` (default ``run_dir/videos``)."""
    from ..viz.video import render_adaptation

    if isinstance(num_render, bool) or not isinstance(num_render, int) or num_render < 1:
        raise UserError(f"--render must be a positive number of tasks, got {num_render!r}")
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "videos"
    return render_adaptation(env_id, phases, tasks, out_dir, num_tasks=num_render, fps=fps,
                             width=width, height=height, progress=progress)


__all__ = [
    "EVAL_SEED_OFFSET",
    "LATER_STEP_SCALE",
    "adaptation_returns",
    "check_render_request",
    "episode_length_stats",
    "evaluate_methods",
    "evaluation_report",
    "held_out_tasks",
    "load_run",
    "method_name",
    "random_init",
    "real_time_fps",
    "recorded_adaptation_returns",
    "render_from_evaluation",
    "require_checkpoint",
    "step_sizes",
    "success_stats",
    "summarize",
]
