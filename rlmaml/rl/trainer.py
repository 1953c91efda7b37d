"""Meta-training with MAML for RL (Finn, Abbeel & Levine, 2017, Algorithm 3). Each meta-batch b:

1. draw ``meta_batch_size`` tasks T_i ~ p(T);
2. sample K = ``episodes_per_task`` episodes per task with π_θ, adapt θ → θ'_i (k inner steps of α,
   re-sampling after each step), sample validation episodes with π_θ'_i (the :class:`~rlmaml.rl.sampling.Sampler`);
3. one meta-update of θ on Σ_i L(θ'_i) (the meta-optimizer of :mod:`rlmaml.rl.algos`).

All randomness of batch b (tasks, env resets, action noise) is seeded from ``(seed, b)``, so a run resumed
from a checkpoint continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from ..checkpoint import CHECKPOINT_NAME, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ..config import config_to_dict
from ..errors import UserError
from ..logging import RunLogger
from ..runtime import prepare_run
from .algos import make_meta_optimizer
from .components import make_env, make_policy
from .config import TrainConfig
from .policies import action_scale_of, saved_action_scale
from .sampling import MetaBatch, SamplerFault, batch_seeds, close_sampler, make_sampler

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3  # tries of one meta-batch whose sampler lost a worker


def batch_metrics(phases: MetaBatch, update: dict, env_steps: int) -> dict:
    """The metrics.jsonl record of one meta-batch: returns before/after adaptation (and per inner step when
    k > 1), the success rates before/after for envs that report ``info["success"]``, and the meta-update's
    numbers."""
    k = len(phases.episodes) - 1
    first, last = phases.episodes[0], phases.episodes[-1]
    success = {} if first.successes is None else {"success_before": first.successes.mean().item(),
                                                   "success_after": last.successes.mean().item()}
    return {
        "env_steps": env_steps,
        "returns_before": first.returns.mean().item(),
        "returns_after": last.returns.mean().item(),
        **{f"returns_step_{j}": e.returns.mean().item() for j, e in enumerate(phases.episodes) if k > 1},
        **success,
        "kl": update["kl"],
        "surrogate_before": update["surrogate_before"],
        "surrogate_after": update["surrogate_after"],
        "line_search_steps": update["line_search_steps"],
        "step_accepted": update["step_accepted"],
        "grad_norm": update.get("grad_norm", float("nan")),
    }


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Run (or continue) meta-training into ``out_dir``; returns the checkpoint path.

    A ``KeyboardInterrupt`` (Ctrl-C, or a signal under :func:`rlmaml.run.stop_on_signals`) checkpoints the last
    fully logged batch and re-raises; an unfinished batch is redone from the same seeds on resume. A meta-batch
    whose sampler lost a worker (:class:`~rlmaml.rl.sampling.SamplerFault`) is redone from the same seeds after
    ``sampler.recover()``, so the run ends as an undisturbed one would.
    """
    out_dir, device = prepare_run(out_dir, cfg.num_threads, cfg.device, cfg.seed)
    np.random.seed(cfg.seed)
    env = make_env(cfg, 1, 1)  # one copy: the task distribution and the spaces (the sampler has its own)
    policy = make_policy(cfg, env).to(device)
    learner = make_meta_optimizer(cfg, policy, dict(policy.named_parameters()))
    sampler = make_sampler(cfg, policy, device)
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
    (out_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))

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
                for attempt in range(1, MAX_ATTEMPTS + 1):
                    try:
                        if attempt > 1:
                            sampler.recover()
                        t0 = time.perf_counter()
                        phases = sampler.sample(learner.params, tasks, seeds[1:], [cfg.fast_lr] * k)
                        t1 = time.perf_counter()
                        update = learner.update(phases)
                        t2 = time.perf_counter()
                        break
                    except SamplerFault as exc:  # the same seeds on new workers give the same meta-batch
                        learner.load_state_dict(snapshot)
                        if attempt == MAX_ATTEMPTS:
                            raise UserError(f"meta-batch {batch}: {exc}; gave up after {attempt} attempts") from None
                        log.warning("meta-batch %d: %s; redoing it from the same seeds on new workers", batch, exc)
                env_steps += phases.num_steps
                record = {**batch_metrics(phases, update, env_steps), "sample_seconds": t1 - t0,
                          "update_seconds": t2 - t1}
                logger.log(batch, record, postfix={"before": record["returns_before"],
                                                  "after": record["returns_after"]})
                completed = batch + 1
                if (batch + 1) % cfg.checkpoint_every == 0:
                    checkpoint(batch + 1)
        except (KeyboardInterrupt, UserError):  # keep every fully logged batch; an unfinished one is redone on resume
            logger.flush()
            if completed < cfg.num_batches and completed == batch:
                learner.load_state_dict(snapshot)
            checkpoint(completed)
            raise
        finally:
            close_sampler(sampler)
    return checkpoint(cfg.num_batches)


__all__ = ["batch_metrics", "train"]
