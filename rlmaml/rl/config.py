"""The configuration of ``rlmaml train``: :class:`TrainConfig`, one field per key of the YAML presets and
``key=value`` overrides, validated with one-line errors that name the key and what it allows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from ..config import ConfigError, require

DEFAULT_PRESET = "navigation"


# Config keys that set the MuJoCo env's control interval dt = timestep · frame_skip (0 = the env's own).
ENV_TIMING_KEYS = ("frame_skip", "timestep")
# Config keys passed on to the env's constructor when they differ from their default (runs compared side by
# side must agree on them).
ENV_KEYS = (*ENV_TIMING_KEYS, "ant_model", "ant_obs")


@dataclass
class TrainConfig:
    """Every key of ``rlmaml train`` (YAML presets and ``key=value`` overrides set these)."""

    env: str = "rlmaml/Navigation2D-v0"  # a task family; or a Gymnasium id with the task protocol
    algorithm: Literal["maml", "pretrained", "oracle"] = "maml"  # maml; pretrained, oracle: comparisons
    num_batches: int = 200  # meta-batches (meta-iterations) to train
    meta_batch_size: int = 20  # N: tasks per meta-batch
    episodes_per_task: int = 20  # K: episodes sampled per task in every phase
    horizon: int = 100  # H: steps per episode
    fast_lr: float = 0.1  # α: inner step size, θ' = θ − α∇L(θ)
    num_inner_steps: int = 1  # k: inner steps (0 for pretrained/oracle)
    first_order: bool = False  # FOMAML: drop the Hessian terms of the adaptation
    inner_loss: str = "reinforce"  # L: objectives.INNER_LOSSES (or module:name)
    meta_optimizer: str = "trpo"  # algos.META_OPTIMIZERS: trpo, adam (or module:name)
    sampler: str = "local"  # sampling.SAMPLERS: local (or module:name)
    num_workers: int = 1  # S: shards of every meta-batch (sampler=local: in turn here; ray: one worker each)
    task_split: int = 1  # q: parts per task (divides episodes_per_task), so that shards can be finer than a task
    worker_cpus: float = 1.0  # CPUs (and torch threads) of each Ray worker
    ray_address: str = "local"  # local: a private cluster on this machine; auto or host:port: join one
    worker_timeout: float = 600.0  # seconds a Ray worker may take to answer before it is replaced
    ray_network: Literal["private", "host"] = "private"  # ray_address=local: loopback only, or every interface
    meta_lr: float = 1e-3  # β: learning rate of the adam meta-optimizer
    max_kl: float = 0.01  # δ: TRPO trust region, mean KL(π_old ‖ π) ≤ δ
    cg_iters: int = 10  # conjugate-gradient iterations for s = F⁻¹g
    cg_damping: float = 1e-5  # λ: damping, CG solves (F + λI) s = g
    fisher_tasks: int = 0  # tasks the Fisher is estimated on (0 = every task)
    ls_max_steps: int = 15  # backtracking line-search trials
    ls_backtrack_ratio: float = 0.8  # ρ: the step shrinks to ρ^j Δ at trial j
    gamma: float = 0.99  # γ: discount
    gae_lambda: float = 1.0  # λ of GAE (1 = Monte-Carlo returns minus the baseline)
    hidden_sizes: list[int] = field(default_factory=lambda: [100, 100])  # the policy MLP's hidden layers
    nonlinearity: Literal["relu", "tanh", "softplus"] = "relu"  # the policy MLP's activation
    init_log_std: float = 0.0  # initial log σ of the Gaussian policy (in action-box units)
    normalize_actions: bool = True  # act in units of the action box's half-width (as rllab's normalize)
    frame_skip: int = 0  # physics steps per env step, MuJoCo families (0 = Gymnasium v5's 5)
    timestep: float = 0.0  # physics step in seconds, MuJoCo families (0 = the model's own)
    ant_model: Literal["gymnasium", "rllab"] = "gymnasium"  # v5's Ant, or the original experiments'
    ant_obs: Literal["gymnasium", "rllab"] = "gymnasium"  # v5's, or rllab's (with the torso's x, y)
    checkpoint_every: int = 10  # meta-batches between atomic checkpoints (and one on exit)
    seed: int = 0  # seeds θ_0 and, with the batch index, every task, reset and action noise
    device: str = "cpu"  # cpu or cuda[:N]: policy, adaptation, meta-update (envs step on the CPU)
    num_threads: int = 0  # torch and physics threads (0 = torch's default)

    def validate(self) -> None:
        family = _env_family(self.env)
        for key in ("num_batches", "meta_batch_size", "episodes_per_task", "horizon", "cg_iters", "ls_max_steps",
                    "checkpoint_every", "num_workers", "task_split"):
            require(getattr(self, key) > 0, key, "a positive integer", getattr(self, key))
        require(self.episodes_per_task % self.task_split == 0, "task_split",
                f"a divisor of episodes_per_task ({self.episodes_per_task})", self.task_split)
        require(self.num_workers <= self.meta_batch_size * self.task_split, "num_workers",
                f"at most meta_batch_size × task_split ({self.meta_batch_size * self.task_split}): every worker "
                "holds at least one part of a task", self.num_workers)
        require(0 <= self.fisher_tasks <= self.meta_batch_size, "fisher_tasks",
                f"an integer from 0 (every task) to meta_batch_size ({self.meta_batch_size})", self.fisher_tasks)
        require(self.num_inner_steps >= 0, "num_inner_steps", "a non-negative integer", self.num_inner_steps)
        require(self.algorithm != "maml" or self.num_inner_steps >= 1, "num_inner_steps",
                ">= 1 for algorithm maml (pretrained/oracle use 0)", self.num_inner_steps)
        from ..plugins import lookup
        from .algos import META_OPTIMIZERS
        from .objectives import INNER_LOSSES
        from .sampling import SAMPLERS

        for key, registry in (("inner_loss", INNER_LOSSES), ("meta_optimizer", META_OPTIMIZERS), ("sampler", SAMPLERS)):
            lookup(registry, getattr(self, key), key)
        require(self.sampler != "ray" or self.meta_optimizer == "trpo", "meta_optimizer",
                "trpo with sampler=ray (the episodes stay on the workers; only TRPO's task-parallel terms travel)",
                self.meta_optimizer)
        require(self.worker_cpus > 0, "worker_cpus", "a positive number of CPUs", self.worker_cpus)
        require(self.worker_timeout > 0, "worker_timeout", "a positive number of seconds", self.worker_timeout)
        require(bool(self.ray_address), "ray_address", "local, auto or host:port", self.ray_address)
        require(self.fast_lr > 0, "fast_lr", "> 0", self.fast_lr)
        require(self.meta_lr > 0, "meta_lr", "> 0", self.meta_lr)
        require(self.max_kl > 0, "max_kl", "> 0", self.max_kl)
        require(self.cg_damping >= 0, "cg_damping", ">= 0", self.cg_damping)
        require(0 < self.ls_backtrack_ratio < 1, "ls_backtrack_ratio", "in (0, 1)", self.ls_backtrack_ratio)
        require(0 < self.gamma <= 1, "gamma", "in (0, 1]", self.gamma)
        require(0 <= self.gae_lambda <= 1, "gae_lambda", "in [0, 1]", self.gae_lambda)
        require(len(self.hidden_sizes) > 0 and all(h > 0 for h in self.hidden_sizes), "hidden_sizes",
                "a non-empty list of positive integers", self.hidden_sizes)
        require(np.isfinite(self.init_log_std), "init_log_std", "a finite number", self.init_log_std)
        require(self.frame_skip >= 0, "frame_skip", "a non-negative integer (0 = the env's default)", self.frame_skip)
        require(0 <= self.timestep < math.inf, "timestep", "a non-negative number of seconds (0 = the model's own)",
                self.timestep)
        _check_env_options(self, family)
        require(self.seed >= 0, "seed", "a non-negative integer", self.seed)
        require(self.num_threads >= 0, "num_threads", "a non-negative integer (0 = torch default)", self.num_threads)
        require(self.device == "cpu" or self.device.startswith("cuda"), "device", "cpu or cuda[:N]", self.device)
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"config key 'device': {self.device!r} requested but CUDA is not available; use cpu")

    def env_kwargs(self) -> dict:
        """Constructor arguments of the config's env beyond the horizon: ``frame_skip``, ``timestep`` (MuJoCo),
        ``ant_model`` and ``ant_obs`` (Ant) when they differ from their defaults."""
        default = TrainConfig()
        return {key: getattr(self, key) for key in ENV_KEYS if getattr(self, key) != getattr(default, key)}

    @property
    def inner_steps(self) -> int:
        """k: inner steps actually taken (0 for the pretrained and oracle baselines)."""
        return self.num_inner_steps if self.algorithm == "maml" else 0



def _env_family(env: str):
    """The task-family record of ``env`` (:func:`rlmaml.envs.registry.family`: a registered family, or a
    Gymnasium env with the task protocol, ``module:EnvId`` importing its module), as a ConfigError otherwise."""
    from rlmaml.envs import family
    from rlmaml.errors import UserError

    try:
        return family(env)
    except UserError as exc:
        raise ConfigError(f"config key 'env': {exc}") from None


def _check_env_options(cfg: TrainConfig, family) -> None:
    """Each of :data:`ENV_KEYS` takes a value its option allows (``EnvOption.allowed``), and keeps its default
    unless the config's family takes the option (the registry's record says which do)."""
    from rlmaml.envs.registry import families_taking

    for key in ENV_KEYS:
        value, default = getattr(cfg, key), TrainConfig.__dataclass_fields__[key].default
        takers = families_taking(key)
        option = family.option(key) or next((f.option(key) for f in takers), None)
        if option is not None and option.allowed is not None:
            require(value in option.allowed, key, " or ".join(map(str, option.allowed)), value)
        if family.option(key) is None and value != default:
            what = "/".join(str(v) for v in option.allowed if v != default) if option and option.allowed else "it"
            where = f"{option.applies_to}: {', '.join(f.env_id for f in takers)}" if option else "no registered family"
            require(False, key, f"{default} for {cfg.env} ({what} applies to {where})", value)
