"""The env and the policy of a meta-RL run, built from its :class:`~rlmaml.rl.config.TrainConfig` (the sampler
and the meta-optimizer come from their registries: :func:`rlmaml.rl.sampling.make_sampler`,
:func:`rlmaml.rl.algos.make_meta_optimizer`). Training and evaluation build them here, so both agree."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..config import ConfigError
from .policies import Policy, build_policy

if TYPE_CHECKING:
    from .config import TrainConfig


def make_env(cfg: TrainConfig, num_tasks: int | None = None, episodes_per_task: int | None = None, *,
             oracle: bool | None = None, **options):
    """The batched env for ``num_tasks × episodes_per_task`` copies (default: the config's meta-batch), with
    the task appended to the observation for ``oracle`` (default: algorithm=oracle); ``options`` go to the
    engine (e.g. ``record_state=True``)."""
    from rlmaml.envs import make_batched

    num_envs = (num_tasks or cfg.meta_batch_size) * (episodes_per_task or cfg.episodes_per_task)
    oracle = cfg.algorithm == "oracle" if oracle is None else oracle
    return make_batched(cfg.env, num_envs, device="cpu", num_threads=cfg.num_threads or None, oracle=oracle,
                        max_episode_steps=cfg.horizon, **cfg.env_kwargs(), **options)


def action_scale(cfg: TrainConfig, env) -> list[float]:
    """c: the half-widths of the env's (symmetric) action box with ``normalize_actions``, else ones."""
    low, high = getattr(env, "action_low", None), getattr(env, "action_high", None)
    if not cfg.normalize_actions or low is None or not np.all(np.isfinite(high - low)):
        return [1.0] * env.action_dim
    if not np.allclose(low, -high):
        raise ConfigError(f"config key 'normalize_actions': needs a symmetric action box, {cfg.env} has "
                          f"[{low.tolist()}, {high.tolist()}]; set normalize_actions=false")
    return ((high - low) / 2).tolist()


def make_policy(cfg: TrainConfig, env) -> Policy:
    """θ_0: the config's Gaussian MLP policy for ``env``, acting in units of its action box (normalize_actions)."""
    return build_policy(env.observation_dim, env.action_dim, cfg.hidden_sizes, cfg.nonlinearity, cfg.init_log_std,
                        action_scale=action_scale(cfg, env))


__all__ = ["action_scale", "make_env", "make_policy"]
