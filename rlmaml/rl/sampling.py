"""Samplers: the episodes of one meta-batch, θ → (θ_0 = θ, θ_1, …, θ_k) with the episodes of each.

For tasks T_1..T_N, rollout seeds s_0..s_k and inner step sizes α_0..α_{k−1}:

    D_0 ~ π_θ_0 (seed s_0),   θ_{j+1} = θ_j − α_j ∇ Σ_t L_t(θ_j; D_j),   D_{j+1} ~ π_θ_{j+1} (seed s_{j+1})

D_0..D_{k−1} are the inner (training) episodes and D_k the validation episodes the meta-objective is taken
on. Training uses α_j = fast_lr; evaluation its own schedule (:func:`rlmaml.rl.evaluation.step_sizes`).
A :class:`Sampler` is anything with that ``sample`` method; :class:`LocalSampler` runs it in this process on
one batched env, the policy evaluated once per time step for all ``tasks × episodes`` copies.

The config key ``sampler`` names the sampler in :data:`SAMPLERS` (``local`` by default); a new one is one
:func:`register_sampler` call (docs/extending/sampler.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Categorical, Independent

from ..core.params import Params
from ..errors import UserError
from ..plugins import lookup
from .components import make_env
from .episodes import Episodes, EpisodeStats
from .objectives import INNER_LOSSES, InnerLoss, TaskBatch, adapted_params_for_sampling, reinforce_loss
from .policies import Policy, stack_params
from .rollout import rollout


def batch_seeds(seed: int, batch: int, count: int) -> list[int]:
    """Independent seeds for batch ``batch`` of a run with ``seed`` (tasks, then one per rollout)."""
    return [int(s) for s in np.random.SeedSequence([seed, batch]).generate_state(count)]


@dataclass
class MetaBatch:
    """The k + 1 phases of one meta-batch: ``episodes[j]`` sampled with ``params[j]`` = θ_j (task-stacked,
    detached) and ``batches[j]`` their task-major :class:`TaskBatch` with advantages."""

    tasks: list[dict]
    episodes: list[Episodes]
    batches: list[TaskBatch]
    params: list[Params]
    #: the shards it was sampled in, each a MetaBatch of its tasks with its ``shard`` (empty: one shard)
    parts: list[MetaBatch] = field(default_factory=list)
    shard: Shard | None = None

    @classmethod
    def concatenate(cls, parts: Sequence[MetaBatch], join_episodes=Episodes.concatenate) -> MetaBatch:
        """The meta-batches of disjoint task sets (same number of phases) as one, in the order given: task t of
        the result is the t-th task of the parts laid end to end. ``join_episodes`` joins each phase's episodes
        (``EpisodeStats.concatenate`` keeps only their statistics)."""
        phases = range(len(parts[0].episodes))
        return cls([t for p in parts for t in p.tasks],
                   [join_episodes([p.episodes[j] for p in parts]) for j in phases],
                   [TaskBatch.concatenate([p.batches[j] for p in parts]) for j in phases],
                   [{n: torch.cat([p.params[j][n] for p in parts]) for n in parts[0].params[j]} for j in phases])

    def trpo_terms(self, learner):
        """The TRPO meta-step's terms of this meta-batch: one :class:`~rlmaml.rl.algos.trpo.ShardTerms` per shard
        it was sampled in, summed in shard order (:class:`~rlmaml.rl.algos.trpo.LocalTerms`)."""
        from .algos.trpo import LocalTerms, fisher_counts

        parts = self.parts or [self]
        counts = fisher_counts(learner.fisher_tasks, [p.valid.num_tasks for p in parts])
        return LocalTerms([learner.shard_terms(p.train_batches, p.valid, len(self.tasks), count)
                           for p, count in zip(parts, counts)])

    @property
    def train_batches(self) -> list[TaskBatch]:
        """D_0..D_{k−1}: the episodes of the inner steps."""
        return self.batches[:-1]

    @property
    def valid(self) -> TaskBatch:
        """D_k: the validation episodes, sampled with the adapted θ'."""
        return self.batches[-1]

    @property
    def num_steps(self) -> int:
        """Valid env steps over every phase."""
        return sum(e.num_steps for e in self.episodes)


class SamplerFault(RuntimeError):
    """A sampler lost a worker (killed, unreachable or hung) while sampling or computing a meta-batch's terms.
    The trainer redoes the meta-batch from the same seeds after ``sampler.recover()``."""


@runtime_checkable
class Sampler(Protocol):
    """(θ, tasks, seeds, step sizes) → the :class:`MetaBatch` of phases 0..k (k = ``len(step_sizes)``).

    ``seeds`` holds one rollout seed per phase (k + 1); the same arguments give the same episodes.
    """

    def sample(self, params: Mapping[str, Tensor], tasks: Sequence[dict], seeds: Sequence[int],
               step_sizes: Sequence[float]) -> MetaBatch:
        ...


def action_sampler(policy: Policy, params: Mapping[str, Tensor], device, shard: Shard | None = None):
    """a ~ π_θ(·|s) on the [T, E, obs] batch (task-stacked params), returned on the CPU for the env.

    The noise is always drawn from the CPU generator (seeded per rollout), also when the policy runs on
    a GPU, so the same seed gives the same episodes on every device. For a ``shard`` (tasks
    ``start .. start + T − 1`` of a meta-batch of ``total``), the Gaussian noise ε of the whole batch is drawn
    and the shard's rows kept, a = μ + σ·ε_rows, so a shard acts as its rows of the whole batch would.
    """
    device = torch.device(device)

    def sample_actions(obs: torch.Tensor) -> torch.Tensor:
        pi = policy.distribution(params, obs.to(device), stacked=True)
        if shard is not None and shard.total != obs.shape[0]:
            if not isinstance(pi, Independent):
                raise UserError("a sharded sampler needs a Gaussian policy (continuous actions)")
            loc, scale = pi.base_dist.loc.cpu(), pi.base_dist.scale.cpu()
            noise = torch.empty(shard.total, *loc.shape[1:]).normal_()  # as torch.normal(μ, σ) of the whole batch
            return noise[shard.start:shard.start + loc.shape[0]] * scale + loc
        if device.type == "cpu":
            return pi.sample()
        if isinstance(pi, Independent):
            return torch.normal(pi.base_dist.loc.cpu(), pi.base_dist.scale.cpu())
        return Categorical(logits=pi.logits.cpu(), validate_args=False).sample()
    return sample_actions


@dataclass(frozen=True)
class Shard:
    """Tasks ``start .. stop − 1`` of a meta-batch of ``total`` tasks."""

    start: int
    stop: int
    total: int

    @property
    def num_tasks(self) -> int:
        return self.stop - self.start


def shards(num_tasks: int, num_shards: int) -> list[Shard]:
    """``num_tasks`` split into ``num_shards`` contiguous shards, the first ``num_tasks % num_shards`` one task
    larger: sizes ⌈N/S⌉ then ⌊N/S⌋."""
    if num_shards < 1 or num_shards > num_tasks:
        raise UserError(f"cannot split {num_tasks} tasks into {num_shards} shards: need 1 <= shards <= tasks")
    base, extra = divmod(num_tasks, num_shards)
    bounds, start = [], 0
    for i in range(num_shards):
        stop = start + base + (i < extra)
        bounds.append(Shard(start, stop, num_tasks))
        start = stop
    return bounds


class LocalSampler:
    """Samples a meta-batch in this process on one batched env of ``tasks × episodes_per_task`` copies.

    Advantages are GAE(γ = ``gamma``, λ = ``gae_lambda``) with the per-task linear baseline; the policy and the
    inner steps run on ``device`` (the env on the CPU).
    """

    def __init__(self, env, policy: Policy, *, episodes_per_task: int, horizon: int, gamma: float,
                 gae_lambda: float, device: str | torch.device = "cpu", inner_loss: InnerLoss = reinforce_loss,
                 shard: Shard | None = None):
        self.env, self.policy = env, policy
        self.shard = shard
        if shard is not None:  # the env's copies are rows start·E … of the whole batch's
            env.copy_offset = shard.start * episodes_per_task
        self.episodes_per_task, self.horizon = episodes_per_task, horizon
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.device = torch.device(device)
        self.inner_loss = inner_loss

    def close(self) -> None:
        """Release the engine (its physics threads)."""
        self.env.close()

    @classmethod
    def from_config(cls, cfg, policy: Policy, device: str | torch.device = "cpu", *, num_tasks: int | None = None,
                    episodes_per_task: int | None = None, oracle: bool | None = None, shard: Shard | None = None,
                    **env_options) -> LocalSampler:
        """The sampler of ``cfg``'s meta-batches (``num_tasks × episodes_per_task`` copies, default the config's,
        or the tasks of ``shard``) on its own batched env; ``oracle`` and ``env_options`` go to
        :func:`rlmaml.rl.components.make_env`."""
        episodes_per_task = episodes_per_task or cfg.episodes_per_task
        num_tasks = shard.num_tasks if shard is not None else num_tasks
        env = make_env(cfg, num_tasks, episodes_per_task, oracle=oracle, **env_options)
        return cls(env, policy, episodes_per_task=episodes_per_task, horizon=cfg.horizon, gamma=cfg.gamma,
                   gae_lambda=cfg.gae_lambda, device=device,
                   inner_loss=lookup(INNER_LOSSES, cfg.inner_loss, "inner_loss"), shard=shard)

    def sample(self, params: Mapping[str, Tensor], tasks: Sequence[dict], seeds: Sequence[int],
               step_sizes: Sequence[float]) -> MetaBatch:
        k = len(step_sizes)
        if len(seeds) != k + 1:
            raise ValueError(f"{k} inner steps need {k + 1} rollout seeds, got {len(seeds)}")
        tasks = list(tasks)
        current = stack_params({n: p.detach().to(self.device) for n, p in params.items()}, len(tasks))
        phases = MetaBatch(tasks, [], [], [])
        for j in range(k + 1):
            eps = rollout(self.env, action_sampler(self.policy, current, self.device, self.shard), tasks,
                          self.episodes_per_task, self.horizon, seed=seeds[j])
            batch = TaskBatch.from_episodes(eps, self.gamma, self.gae_lambda, device=self.device)
            phases.episodes.append(eps)
            phases.batches.append(batch)
            phases.params.append(current)
            if j < k:
                current = adapted_params_for_sampling(self.policy, current, batch, step_sizes[j], self.inner_loss)
        return phases


SamplerFactory = Callable[..., Sampler]
"""``factory(cfg, policy, device, *, num_tasks, episodes_per_task, oracle, **env_options) -> Sampler``."""

SAMPLERS: dict[str, SamplerFactory] = {}


def register_sampler(name: str, factory: SamplerFactory) -> SamplerFactory:
    """Make ``factory`` the sampler of ``sampler=name`` (signature of :data:`SamplerFactory`)."""
    SAMPLERS[name] = factory
    return factory


class ShardedLocalSampler:
    """The meta-batch sampled shard by shard in this process (``sampler=local num_workers=S``): each shard on its
    own engine, acting as its rows of the whole batch would (:class:`Shard`), and the meta-update summed over the
    shards in order — the same arithmetic as S workers of the distributed sampler, so both give the same numbers."""

    def __init__(self, cfg, policy: Policy, device: str | torch.device = "cpu", *, num_tasks: int | None = None,
                 num_shards: int = 1, **options):
        num_tasks = num_tasks or cfg.meta_batch_size
        self.record = bool(options.get("record_state"))
        self.samplers = [LocalSampler.from_config(cfg, policy, device, shard=shard, **options)
                         for shard in shards(num_tasks, min(num_shards, num_tasks))]

    def sample(self, params: Mapping[str, Tensor], tasks: Sequence[dict], seeds: Sequence[int],
               step_sizes: Sequence[float]) -> MetaBatch:
        parts = []
        for sampler in self.samplers:
            part = sampler.sample(params, tasks[sampler.shard.start:sampler.shard.stop], seeds, step_sizes)
            part.shard = sampler.shard
            parts.append(part)
        # unless recorded, only the statistics of each shard's episodes, as the distributed workers send them
        batch = MetaBatch.concatenate(parts, Episodes.concatenate if self.record else EpisodeStats.concatenate)
        batch.parts = parts
        return batch


    def close(self) -> None:
        for sampler in self.samplers:
            sampler.close()


def close_sampler(sampler) -> None:
    """``sampler.close()`` for samplers that hold resources (engines, workers); the protocol needs only ``sample``."""
    close = getattr(sampler, "close", None)
    if close is not None:
        close()


def local_sampler(cfg, policy: Policy, device: str | torch.device = "cpu", **options) -> Sampler:
    """``sampler=local``: one engine for the meta-batch, or ``num_workers`` shards of it in turn."""
    if getattr(cfg, "num_workers", 1) > 1:
        return ShardedLocalSampler(cfg, policy, device, num_shards=cfg.num_workers, **options)
    return LocalSampler.from_config(cfg, policy, device, **options)


def ray_sampler(cfg, policy: Policy, device: str | torch.device = "cpu", **options) -> Sampler:
    """``sampler=ray``: the shards on Ray workers (:mod:`rlmaml.distributed`, imported only when used)."""
    return importlib.import_module("rlmaml.distributed").RaySampler.from_config(cfg, policy, device, **options)


register_sampler("local", local_sampler)
register_sampler("ray", ray_sampler)


def make_sampler(cfg, policy: Policy, device: str | torch.device = "cpu", **options) -> Sampler:
    """The sampler named by ``cfg.sampler``; ``options``: ``num_tasks``, ``episodes_per_task`` (default the
    config's meta-batch), ``oracle`` (default algorithm=oracle) and env options (e.g. ``record_state=True``)."""
    return lookup(SAMPLERS, cfg.sampler, "sampler")(cfg, policy, device, **options)


__all__ = [
    "SAMPLERS",
    "LocalSampler",
    "MetaBatch",
    "Sampler",
    "SamplerFactory",
    "Shard",
    "action_sampler",
    "batch_seeds",
    "make_sampler",
    "register_sampler",
    "shards",
]
