"""``rlmaml evaluate``: returns after 0..k inner gradient steps on held-out tasks.

For each held-out task t (drawn from a task RNG seeded only by ``--seed``, so every
method sees the same tasks) and each phase j = 0..k:

    R_j(t) = mean over E episodes of Σ_h r_h   under π_θ_j,    θ_{j+1} = θ_j − α_j ∇L_t(θ_j)

with the REINFORCE loss L_t of training (GAE advantages, linear baseline) and the step sizes of the
original MAML-RL evaluation: α_0 = α (= fast_lr, the step the policy was meta-trained for) and
α_j = s·α for every later step, s = ``--later-step-scale`` (default 0.5, as that code's test scripts,
which gave the first step ``init_learning_rate`` = α and the rest ``learning_rate`` = α/2); s = 1 keeps α.
eval.json reports mean_t R_j(t), the 95% confidence half-width 1.96·std_t/√N and the step sizes.

Public API (used by ``--compare``/``--render`` style extensions):

* :func:`load_run` ``(run_dir) -> (config, policy, params)``
* :func:`adaptation_returns` ``(policy, params, config, tasks, grad_steps, seed, device, oracle,
  episodes_per_task, record_state) -> (returns, episodes)``
* :func:`summarize` ``(returns) -> {"mean": [...], "ci95": [...]}``
* :func:`held_out_tasks` ``(config, num_tasks, seed) -> list[dict]``
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint
from ..config import build_config, read_yaml_source
from ..errors import UserError
from .maml_trpo import TaskBatch, adapted_params_for_sampling
from .policies import build_policy, saved_action_scale, stack_params
from .train import TrainConfig, action_sampler, batch_seeds, env_kwargs

EVAL_SEED_OFFSET = 7_919  # keeps evaluation rollout seeds apart from training seeds (seed, batch)
LATER_STEP_SCALE = 0.5  # α_j = s·α for j ≥ 1: the original MAML-RL evaluation protocol


def step_sizes(fast_lr: float, grad_steps: int, later_step_scale: float = LATER_STEP_SCALE) -> list[float]:
    """[α, s·α, …, s·α]: the step size of each of the ``grad_steps`` evaluation inner steps."""
    if not (later_step_scale > 0 and math.isfinite(later_step_scale)):
        raise UserError(f"--later-step-scale must be a positive number, got {later_step_scale}")
    return [float(fast_lr) * (1.0 if j == 0 else float(later_step_scale)) for j in range(grad_steps)]


def load_run(run_dir: str | Path, device: str | torch.device = "cpu"):
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


def held_out_tasks(config: TrainConfig, num_tasks: int, seed: int) -> list[dict]:
    """``num_tasks`` tasks of the config's env family drawn from a task RNG seeded by ``seed`` only."""
    from rlmaml.envs import make_batched

    if num_tasks <= 0:
        raise UserError(f"--num-tasks must be a positive integer, got {num_tasks}")
    return make_batched(config.env, 1, max_episode_steps=config.horizon,
                        **env_kwargs(config)).sample_tasks(num_tasks, seed=seed)


def adaptation_returns(policy, params, config: TrainConfig, tasks: list[dict], grad_steps: int, seed: int,
                       device: str | torch.device = "cpu", oracle: bool = False,
                       episodes_per_task: int | None = None, record_state: bool = False,
                       later_step_scale: float = LATER_STEP_SCALE):
    """Returns after 0..``grad_steps`` inner REINFORCE steps from θ = ``params`` on every task, with
    step sizes :func:`step_sizes` (``config.fast_lr`` first, ``later_step_scale`` times it afterwards).

    Returns ``(returns, episodes)``: ``returns`` is a float tensor ``[grad_steps + 1, num_tasks]``
    (mean undiscounted return over ``episodes_per_task`` episodes, default the config's), and
    ``episodes[j]`` the :class:`~rlmaml.rl.episodes.Episodes` sampled in phase j. Rollout seeds depend
    only on ``seed`` and j, so different policies are evaluated on identical tasks and env resets.
    ``oracle=True`` builds the env with the task parameters appended to the observation;
    ``record_state=True`` makes MuJoCo envs record ``qpos``/``qvel`` in the episode infos (for rendering).
    """
    from rlmaml.envs import make_batched

    from .rollout import rollout

    if grad_steps < 0:
        raise UserError(f"--grad-steps must be a non-negative integer, got {grad_steps}")
    device = torch.device(device)
    alphas = step_sizes(config.fast_lr, grad_steps, later_step_scale)
    episodes_per_task = episodes_per_task or config.episodes_per_task
    env = make_batched(config.env, len(tasks) * episodes_per_task, device="cpu",
                       num_threads=config.num_threads or None, oracle=oracle, max_episode_steps=config.horizon,
                       **env_kwargs(config), **({"record_state": True} if record_state else {}))
    seeds = batch_seeds(seed + EVAL_SEED_OFFSET, 0, grad_steps + 1)
    current = stack_params({n: p.detach().to(device) for n, p in params.items()}, len(tasks))
    returns, phases = [], []
    for j in range(grad_steps + 1):
        eps = rollout(env, action_sampler(policy, current, device), tasks, episodes_per_task, config.horizon,
                      seed=seeds[j])
        phases.append(eps)
        returns.append(eps.returns.mean(dim=1))
        if j < grad_steps:
            batch = TaskBatch.from_episodes(eps, config.gamma, config.gae_lambda, device=device)
            current = adapted_params_for_sampling(policy, current, batch, alphas[j])
    return torch.stack(returns).cpu(), phases


def summarize(returns: torch.Tensor) -> dict:
    """{"mean": [mean over tasks per phase], "ci95": [1.96·std/√N per phase]} for returns ``[k+1, N]``."""
    r = returns.double()
    n = r.shape[1]
    std = r.std(dim=1, unbiased=True) if n > 1 else torch.zeros(r.shape[0], dtype=r.dtype)
    return {"mean": r.mean(dim=1).tolist(), "ci95": (1.96 * std / math.sqrt(n)).tolist()}


def evaluate_run(run_dir, tasks, grad_steps: int, seed: int, device="cpu", episodes_per_task=None) -> dict:
    """Summary dict of one run on ``tasks`` (method name = the run's ``algorithm``)."""
    config, policy, params = load_run(run_dir, device)
    returns, _ = adaptation_returns(policy, params, config, tasks, grad_steps, seed, device,
                                    oracle=config.algorithm == "oracle", episodes_per_task=episodes_per_task)
    batches = int(load_checkpoint(run_dir)["batch"])
    return {**summarize(returns), "per_task": returns.tolist(), "run_dir": str(run_dir), "checkpoint_batch": batches}


# ----------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `rlmaml train`")
    parser.add_argument("--num-tasks", type=int, default=40, help="held-out tasks (default 40)")
    parser.add_argument("--grad-steps", type=int, default=3, help="evaluate after 0..K inner steps (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the held-out tasks and rollouts (default 0)")
    parser.add_argument("--episodes-per-task", type=int, default=None, help="default: the run's episodes_per_task")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (policy and adaptation)")
    parser.add_argument("--later-step-scale", type=float, default=LATER_STEP_SCALE,
                        help="step size of inner steps 2, 3, … as a multiple of the run's fast_lr (default 0.5, "
                             "the original MAML-RL evaluation; 1 = the same step size throughout)")
    parser.add_argument("--out", default=None,
                        help="output JSON file, or a directory for eval.json and videos (default RUN_DIR/eval.json)")
    from .compare import add_compare_arguments

    add_compare_arguments(parser)


def run(args) -> int:
    """Every method (this run, ``--compare`` runs, a random initialisation) on the same held-out tasks."""
    from .compare import run_with_comparisons

    return run_with_comparisons(args)
