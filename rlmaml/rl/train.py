"""``rlmaml train``: meta-train a policy with MAML-TRPO (default: 2D navigation).

Each meta-batch b:

1. draw ``meta_batch_size`` tasks;
2. sample ``episodes_per_task`` episodes per task with π_θ, adapt θ → θ'_t (k REINFORCE steps,
   re-sampling after each step), sample validation episodes with π_θ'_t;
3. one meta-update of θ (:class:`rlmaml.rl.maml_trpo.MetaLearner`).

All randomness of batch b (tasks, env resets, action noise) is seeded from ``(seed, b)``,
so a run resumed from a checkpoint continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.distributions import Categorical, Independent

from ..checkpoint import CHECKPOINT_NAME, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ..config import (
    ConfigError,
    build_config,
    config_to_dict,
    load_config,
    parse_overrides,
    read_yaml_source,
)
from ..errors import UserError
from ..logging import RunLogger
from ..runtime import prepare_run
from .config import DEFAULT_PRESET, TrainConfig, env_kwargs
from .maml_trpo import MetaLearner, TaskBatch, adapted_params_for_sampling
from .policies import action_scale_of, build_policy, saved_action_scale, stack_params

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- building blocks
def make_env(cfg: TrainConfig, num_tasks: int | None = None, episodes_per_task: int | None = None):
    """The batched env for ``num_tasks × episodes_per_task`` copies (oracle obs for algorithm=oracle)."""
    from rlmaml.envs import make_batched

    num_envs = (num_tasks or cfg.meta_batch_size) * (episodes_per_task or cfg.episodes_per_task)
    return make_batched(cfg.env, num_envs, device="cpu", num_threads=cfg.num_threads or None,
                        oracle=cfg.algorithm == "oracle", max_episode_steps=cfg.horizon, **env_kwargs(cfg))


def action_scale(cfg: TrainConfig, env) -> list[float]:
    """c: the half-widths of the env's (symmetric) action box with ``normalize_actions``, else ones."""
    low, high = getattr(env, "action_low", None), getattr(env, "action_high", None)
    if not cfg.normalize_actions or low is None or not np.all(np.isfinite(high - low)):
        return [1.0] * env.action_dim
    if not np.allclose(low, -high):
        raise ConfigError(f"config key 'normalize_actions': needs a symmetric action box, {cfg.env} has "
                          f"[{low.tolist()}, {high.tolist()}]; set normalize_actions=false")
    return ((high - low) / 2).tolist()


def make_policy(cfg: TrainConfig, env):
    return build_policy(env.observation_dim, env.action_dim, cfg.hidden_sizes, cfg.nonlinearity, cfg.init_log_std,
                        action_scale=action_scale(cfg, env))


def make_learner(cfg: TrainConfig, policy, params) -> MetaLearner:
    return MetaLearner(policy, params, fast_lr=cfg.fast_lr, first_order=cfg.first_order,
                       meta_optimizer=cfg.meta_optimizer, max_kl=cfg.max_kl, cg_iters=cfg.cg_iters,
                       cg_damping=cfg.cg_damping, ls_max_steps=cfg.ls_max_steps,
                       ls_backtrack_ratio=cfg.ls_backtrack_ratio, meta_lr=cfg.meta_lr,
                       fisher_tasks=cfg.fisher_tasks)


def batch_seeds(seed: int, batch: int, count: int) -> list[int]:
    """Independent seeds for batch ``batch`` of a run with ``seed`` (tasks, then one per rollout)."""
    return [int(s) for s in np.random.SeedSequence([seed, batch]).generate_state(count)]


def action_sampler(policy, params, device):
    """a ~ π_θ(·|s) on the [T, E, obs] batch (task-stacked params), returned on the CPU for the env.

    The noise is always drawn from the CPU generator (seeded per rollout), also when the policy runs on
    a GPU, so the same seed gives the same episodes on every device.
    """
    device = torch.device(device)

    def sample_actions(obs: torch.Tensor) -> torch.Tensor:
        pi = policy.distribution(params, obs.to(device))
        if device.type == "cpu":
            return pi.sample()
        if isinstance(pi, Independent):
            return torch.normal(pi.base_dist.loc.cpu(), pi.base_dist.scale.cpu())
        return Categorical(logits=pi.logits.cpu(), validate_args=False).sample()
    return sample_actions


def sample_meta_batch(env, policy, params, tasks, cfg: TrainConfig, seeds: list[int], device):
    """Episodes of θ, θ_1, …, θ_k: returns (list of k+1 Episodes, list of k+1 TaskBatches).

    The last element is the validation (post-adaptation) set; θ_{j+1} adapts θ_j on Episodes j.
    """
    from .rollout import rollout

    k = cfg.inner_steps
    current = stack_params({n: p.detach() for n, p in params.items()}, len(tasks))
    episodes, batches = [], []
    for j in range(k + 1):
        eps = rollout(env, action_sampler(policy, current, device), tasks, cfg.episodes_per_task,
                      cfg.horizon, seed=seeds[j])
        batch = TaskBatch.from_episodes(eps, cfg.gamma, cfg.gae_lambda, device=device)
        episodes.append(eps)
        batches.append(batch)
        if j < k:
            current = adapted_params_for_sampling(policy, current, batch, cfg.fast_lr)
    return episodes, batches


# ----------------------------------------------------------------------------- the trainer
def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def install_stop_signals() -> None:
    """SIGTERM (and SIGINT, also when a background shell ignored it) stop training like Ctrl-C:
    the last fully logged batch is checkpointed before exiting."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)


def run_name(source: str | None) -> str:
    stem = Path(source).stem if source else DEFAULT_PRESET
    return f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Run (or continue) meta-training into ``out_dir``; returns the checkpoint path."""
    out_dir, device = prepare_run(out_dir, cfg.num_threads, cfg.device, cfg.seed)
    np.random.seed(cfg.seed)
    env = make_env(cfg)
    policy = make_policy(cfg, env).to(device)
    learner = make_learner(cfg, policy, dict(policy.named_parameters()))
    start, env_steps = 0, 0
    if resume:
        state = load_checkpoint(out_dir, map_location=device)
        learner.load_state_dict(state["learner"])
        if hasattr(policy, "action_scale"):  # the checkpoint's c wins: θ was trained in its units
            saved = torch.as_tensor(saved_action_scale(state), dtype=policy.action_scale.dtype)
            if not torch.allclose(saved.expand_as(policy.action_scale).to(policy.action_scale.device),
                                  policy.action_scale):
                print(f"{out_dir}: the checkpoint acts with action scale {saved.tolist()}, not the "
                      f"{policy.action_scale.tolist()} that normalize_actions={cfg.normalize_actions} gives; "
                      "continuing in the checkpoint's units", file=sys.stderr)
            policy.action_scale.copy_(saved)
        start, env_steps = int(state["batch"]), int(state["env_steps"])
        set_rng_state(state["rng"])
        if start >= cfg.num_batches:  # nothing to do: leave the run's files untouched
            print(f"{out_dir}: already {start} of num_batches={cfg.num_batches} meta-batches; nothing to train",
                  file=sys.stderr)
            return out_dir / CHECKPOINT_NAME
    cfg_path = out_dir / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))

    def checkpoint(next_batch: int) -> Path:
        return save_checkpoint({"batch": next_batch, "env_steps": env_steps, "learner": learner.state_dict(),
                                "config": config_to_dict(cfg), "rng": rng_state(),
                                "obs_dim": env.observation_dim, "act_dim": env.action_dim,
                                "action_scale": action_scale_of(policy)}, out_dir / CHECKPOINT_NAME)

    k = cfg.inner_steps
    completed = start
    with RunLogger(out_dir, total=cfg.num_batches, step_key="batch", resume_from=start, progress=progress,
                   desc=f"train {cfg.algorithm} {cfg.env.split('/')[-1]}") as logger:
        try:
            for batch in range(start, cfg.num_batches):
                snapshot = learner.state_dict()
                seeds = batch_seeds(cfg.seed, batch, k + 2)
                tasks = env.sample_tasks(cfg.meta_batch_size, seed=seeds[0])
                t0 = time.perf_counter()
                episodes, batches = sample_meta_batch(env, policy, learner.params, tasks, cfg, seeds[1:], device)
                t1 = time.perf_counter()
                metrics = learner.step(batches[:k], batches[k])
                t2 = time.perf_counter()
                env_steps += sum(e.num_steps for e in episodes)
                record = {
                    "env_steps": env_steps,
                    "returns_before": episodes[0].returns.mean().item(),
                    "returns_after": episodes[-1].returns.mean().item(),
                    **{f"returns_step_{j}": e.returns.mean().item() for j, e in enumerate(episodes) if k > 1},
                    "kl": metrics["kl"],
                    "surrogate_before": metrics["surrogate_before"],
                    "surrogate_after": metrics["surrogate_after"],
                    "line_search_steps": metrics["line_search_steps"],
                    "step_accepted": metrics["step_accepted"],
                    "grad_norm": metrics.get("grad_norm", float("nan")),
                    "sample_seconds": t1 - t0,
                    "update_seconds": t2 - t1,
                }
                logger.log(batch, record, postfix={"before": record["returns_before"],
                                                  "after": record["returns_after"]})
                completed = batch + 1
                if (batch + 1) % cfg.checkpoint_every == 0:
                    checkpoint(batch + 1)
        except KeyboardInterrupt:  # keep every fully logged batch; an unfinished one is redone on resume
            logger.flush()
            if completed < cfg.num_batches and completed == batch:
                learner.load_state_dict(snapshot)
            checkpoint(completed)
            raise
    return checkpoint(cfg.num_batches)


# ----------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("args", nargs="*", metavar="[PRESET|CONFIG.yaml] [key=value ...]",
                        help="a preset name or YAML file (default: navigation), then key=value overrides")
    parser.add_argument("--out", default=None, help="run directory (default runs/<preset>-<timestamp>)")
    parser.add_argument("--device", default=None, help="cpu or cuda (policy and meta-update; envs run on the CPU)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (overrides the config)")
    parser.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR from its checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def load_train_config(args) -> tuple[TrainConfig, str | None]:
    sources = [a for a in args.args if "=" not in a]
    if len(sources) > 1:
        raise ConfigError(f"expected at most one preset or config file, got {', '.join(sources)}")
    overrides = parse_overrides([a for a in args.args if "=" in a])
    if args.device is not None:
        overrides["device"] = args.device
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.resume is not None:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise UserError(f"--resume {str(run_dir)!r}: no config.yaml there; not a run directory")
        values = read_yaml_source(run_dir / "config.yaml")
        if sources:
            values.update(read_yaml_source(sources[0]))
        values.update(overrides)
        return build_config(TrainConfig, values), None
    source = sources[0] if sources else DEFAULT_PRESET
    return load_config(TrainConfig, source, overrides), source


def run(args) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg, source = load_train_config(args)
    if args.resume is not None:
        out = Path(args.resume)
        if not (out / CHECKPOINT_NAME).is_file():
            raise UserError(f"--resume {str(out)!r}: no {CHECKPOINT_NAME} there; nothing to resume")
    else:
        out = Path(args.out) if args.out else Path("runs") / run_name(source)
    install_stop_signals()
    path = train(cfg, out, resume=args.resume is not None, progress=not args.no_progress)
    print(f"run directory: {out}  (checkpoint {path.name})")
    return 0


__all__ = [
    "TrainConfig",
    "action_sampler",
    "add_arguments",
    "batch_seeds",
    "env_kwargs",
    "make_env",
    "make_learner",
    "make_policy",
    "run",
    "sample_meta_batch",
    "train",
]
