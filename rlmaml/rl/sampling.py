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
from .objectives import INNER_LOSSES, InnerLoss, TaskBatch, adapted_params_program, reinforce_loss
from .parts import Shard, run_alone, run_programs, shards
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
        first = parts[0]  # (batches and params may be empty: a meta-batch of episodes alone)
        return cls([t for p in parts for t in p.tasks],
                   [join_episodes([p.episodes[j] for p in parts]) for j in range(len(first.episodes))],
                   [TaskBatch.concatenate([p.batches[j] for p in parts]) for j in range(len(first.batches))],
                   [{n: torch.cat([p.params[j][n] for p in parts]) for n in first.params[j]}
                    for j in range(len(first.params))])

    @classmethod
    def join(cls, parts: Sequence[MetaBatch], join_episodes=Episodes.concatenate) -> MetaBatch:
        """The meta-batch of whole tasks from the meta-batches of shards whose rows are parts of tasks (each with
        its ``shard``): every phase's episodes, batches and parameters in task order, task t's parts laid end
        to end (part j's episodes are the task's episodes j·E/q …); ``parts`` keeps the shards' own batches."""
        laid = [part for p in parts for part in p.shard.parts]
        num_tasks = max(t for t, _ in laid) + 1
        if laid == [(t, 0) for t in range(num_tasks)]:  # whole tasks in order: the shards laid end to end
            batch = cls.concatenate(parts, join_episodes)
        else:
            rows = sorted((part, i, r) for i, p in enumerate(parts) for r, part in enumerate(p.shard.parts))
            batch = cls.concatenate([parts[i].row(r) for _, i, r in rows], join_episodes)
            batch = batch._tasks_from_parts(num_tasks)
        batch.parts = list(parts)
        return batch

    def row(self, r: int) -> MetaBatch:
        """Row r alone (a task, or a part of one)."""
        return MetaBatch(self.tasks[r:r + 1], [e.task(r) for e in self.episodes],
                         [b.rows([r]) for b in self.batches], [{n: x[r:r + 1] for n, x in p.items()} for p in self.params])

    def _tasks_from_parts(self, num_tasks: int) -> MetaBatch:
        """Rows that are the q parts of each task in order, (t, 0), (t, 1), …, folded into one row per task."""
        q = len(self.tasks) // num_tasks

        def fold_episodes(eps):
            if isinstance(eps, EpisodeStats):
                fold = lambda x: x.reshape(num_tasks, q * x.shape[1])
                return EpisodeStats(fold(eps.returns), fold(eps.lengths),
                                    None if eps.successes is None else fold(eps.successes))
            fold = lambda x: x.reshape(x.shape[0], num_tasks, q * x.shape[2], *x.shape[3:])
            return Episodes(fold(eps.observations), fold(eps.actions), fold(eps.rewards), fold(eps.mask),
                            {k: fold(v) for k, v in eps.infos.items()}, self.tasks[::q])

        def fold_batch(b: TaskBatch) -> TaskBatch:
            fold = lambda x: x.reshape(num_tasks, q * x.shape[1], *x.shape[2:])
            return TaskBatch(fold(b.observations), fold(b.actions), fold(b.mask), fold(b.advantages),
                             None if b.counts is None else b.counts[::q].contiguous())

        return MetaBatch(self.tasks[::q], [fold_episodes(e) for e in self.episodes],
                         [fold_batch(b) for b in self.batches],
                         [{n: x[::q].contiguous() for n, x in p.items()} for p in self.params])

    def trpo_terms(self, learner):
        """The TRPO meta-step's terms of this meta-batch: one :class:`~rlmaml.rl.algos.trpo.ShardTerms` per shard
        it was sampled in, summed in shard order (:class:`~rlmaml.rl.algos.trpo.LocalTerms`)."""
        from .algos.trpo import LocalTerms, fisher_parts

        if not self.parts:  # sampled whole, in one shard
            return LocalTerms([learner.shard_terms(self.train_batches, self.valid, len(self.tasks))])
        return LocalTerms([learner.shard_terms(p.train_batches, p.valid, len(self.tasks),
                                               fisher_parts(p.shard, learner.fisher_tasks, len(self.tasks)),
                                               p.shard.parts) for p in self.parts])

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
    a GPU, so the same seed gives the same episodes on every device. For a ``shard`` (its rows: tasks, or parts
    of tasks, :class:`~rlmaml.rl.parts.Shard`), the Gaussian noise ε of the whole batch is drawn and the shard's
    rows kept, a = μ + σ·ε_rows, so a shard acts as its rows of the whole batch would. The consecutive rows of
    one task's parts share θ_t: the policy runs on the tasks, not on the parts (one plain call when every row has
    the same θ, as before adaptation; else the tasks stacked, the shorter ones padded with copies of a row).
    """
    device = torch.device(device)
    rows = None if shard is None else torch.as_tensor(shard.noise_rows(), dtype=torch.long)
    groups = _task_groups(shard)
    if groups is not None and all(bool((p == p[:1]).all()) for p in params.values()):
        groups = [(0, shard.num_tasks)]  # one θ for every row
    if groups is not None:
        group_params = {n: p[[a for a, _ in groups]] for n, p in params.items()}  # [G, ...]
        one = {n: p[0] for n, p in group_params.items()}  # the θ of every row, when there is one
        longest = max(b - a for a, b in groups)
        padded = torch.as_tensor([[a + min(i, b - a - 1) for i in range(longest)] for a, b in groups])
        kept = torch.as_tensor([[i < b - a for i in range(longest)] for a, b in groups])

    def loc_and_scale(one: Mapping[str, Tensor], obs: torch.Tensor, stacked: bool):
        fast = getattr(policy, "loc_and_scale", None)  # Gaussian policies: no distribution object per step
        if fast is not None:
            return fast(one, obs, stacked=stacked)
        pi = policy.distribution(one, obs, stacked=stacked)
        if not isinstance(pi, Independent):
            raise UserError("a sharded sampler needs a Gaussian policy (continuous actions)")
        return pi.base_dist.loc, pi.base_dist.scale

    def distribution(obs: torch.Tensor):
        if groups is None:
            return loc_and_scale(params, obs, True)
        if len(groups) == 1:
            loc, scale = loc_and_scale(one, obs.reshape(-1, obs.shape[-1]), False)
            return loc.reshape(*obs.shape[:-1], -1), scale.reshape(*obs.shape[:-1], -1)
        stacked = obs[padded]  # [G, rows, E, obs]
        loc, scale = loc_and_scale(group_params, stacked.reshape(len(groups), -1, obs.shape[-1]), True)
        shape = (*stacked.shape[:-1], -1)
        return loc.reshape(shape)[kept], scale.reshape(shape)[kept]

    def sample_actions(obs: torch.Tensor) -> torch.Tensor:
        if shard is not None and shard.total != obs.shape[0]:
            loc, scale = (x.cpu() for x in distribution(obs.to(device)))
            noise = torch.empty(shard.total, *loc.shape[1:]).normal_()  # as torch.normal(μ, σ) of the whole batch
            return noise[rows] * scale + loc
        pi = policy.distribution(params, obs.to(device), stacked=True)
        if device.type == "cpu":
            return pi.sample()
        if isinstance(pi, Independent):
            return torch.normal(pi.base_dist.loc.cpu(), pi.base_dist.scale.cpu())
        return Categorical(logits=pi.logits.cpu(), validate_args=False).sample()
    return sample_actions


def _task_groups(shard: Shard | None) -> list[tuple[int, int]] | None:
    """[start, stop) of each run of consecutive rows of one task in a shard of parts (None: one row per task)."""
    if shard is None or shard.task_split == 1:
        return None
    groups, start = [], 0
    for r in range(1, len(shard.parts) + 1):
        if r == len(shard.parts) or shard.parts[r][0] != shard.parts[start][0]:
            groups.append((start, r))
            start = r
    return groups


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
        if shard is not None:  # the env's copies are these copies of the whole batch's
            env.copy_indices = shard.copy_indices(episodes_per_task)
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
        """The meta-batch of ``tasks`` (the tasks of this sampler's rows); a shard whose tasks have parts on other
        shards samples only through :meth:`sample_program` beside them."""
        if self.shard is not None and self.shard.joined:
            raise UserError("a shard whose tasks have parts on other shards samples through sample_program beside them")
        return run_alone(self.sample_program(params, tasks, seeds, step_sizes))

    def sample_program(self, params: Mapping[str, Tensor], tasks: Sequence[dict], seeds: Sequence[int],
                       step_sizes: Sequence[float]):
        """Shard program (:mod:`rlmaml.rl.parts`): the phases of this sampler's rows, ``tasks[p]`` the task of
        row p (its shard's parts, or whole tasks); each task's baseline, normalisation and inner gradient are
        summed over its parts. Returns the :class:`MetaBatch` of the rows (with ``shard``)."""
        k = len(step_sizes)
        if len(seeds) != k + 1:
            raise ValueError(f"{k} inner steps need {k + 1} rollout seeds, got {len(seeds)}")
        tasks = list(tasks)
        parts = list(self.shard.parts) if self.shard is not None else [(t, 0) for t in range(len(tasks))]
        part_tasks = [t for t, _ in parts]
        current = stack_params({n: p.detach().to(self.device) for n, p in params.items()}, len(tasks))
        phases = MetaBatch(tasks, [], [], [], shard=self.shard)
        for j in range(k + 1):
            eps = rollout(self.env, action_sampler(self.policy, current, self.device, self.shard), tasks,
                          self.episodes_per_task, self.horizon, seed=seeds[j])
            advantages, counts = yield from eps.advantages_program(self.gamma, self.gae_lambda, part_tasks)
            batch = TaskBatch.from_advantages(eps, advantages, counts, device=self.device)
            phases.episodes.append(eps)
            phases.batches.append(batch)
            phases.params.append(current)
            if j < k:
                current = yield from adapted_params_program(self.policy, current, batch, step_sizes[j],
                                                            self.inner_loss, parts)
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
        episodes = options.pop("episodes_per_task", None) or cfg.episodes_per_task
        self.shards = layout(cfg, num_tasks, num_shards, episodes)
        self.samplers = [LocalSampler.from_config(cfg, policy, device, shard=shard,
                                                  episodes_per_task=episodes // task_split(cfg, episodes), **options)
                         for shard in self.shards]

    def sample(self, params: Mapping[str, Tensor], tasks: Sequence[dict], seeds: Sequence[int],
               step_sizes: Sequence[float]) -> MetaBatch:
        tasks = list(tasks)
        parts = run_programs([sampler.sample_program(params, [tasks[t] for t, _ in sampler.shard.parts], seeds,
                                                     step_sizes) for sampler in self.samplers])
        if not self.record:  # only the statistics of each shard's episodes, as the distributed workers send them
            for part in parts:
                part.episodes = [EpisodeStats.of(e) for e in part.episodes]
        return MetaBatch.join(parts, Episodes.concatenate if self.record else EpisodeStats.concatenate)

    def close(self) -> None:
        for sampler in self.samplers:
            sampler.close()


def close_sampler(sampler) -> None:
    """``sampler.close()`` for samplers that hold resources (engines, workers); the protocol needs only ``sample``."""
    close = getattr(sampler, "close", None)
    if close is not None:
        close()


def task_split(cfg, episodes_per_task: int | None = None) -> int:
    """q: the parts each task is cut into (``task_split``), for meta-batches of ``episodes_per_task`` (default
    the config's) episodes per task; a one-line error when q does not divide them."""
    q = int(getattr(cfg, "task_split", 1))
    episodes = episodes_per_task or cfg.episodes_per_task
    if episodes % q:
        raise UserError(f"config key 'task_split': {q} does not divide the {episodes} episodes per task; allowed: a "
                        f"divisor of {episodes}")
    return q


def layout(cfg, num_tasks: int, num_shards: int, episodes_per_task: int | None = None) -> list[Shard]:
    """The shards of a meta-batch of ``num_tasks`` tasks for ``cfg`` (:func:`rlmaml.rl.parts.assign_parts`, its
    ``task_split`` and ``fisher_tasks``); at most one shard per part."""
    q = task_split(cfg, episodes_per_task)
    return shards(num_tasks, min(num_shards, num_tasks * q), q, getattr(cfg, "fisher_tasks", 0))


def local_sampler(cfg, policy: Policy, device: str | torch.device = "cpu", **options) -> Sampler:
    """``sampler=local``: one engine for the meta-batch, or ``num_workers`` shards of it in turn (or tasks cut
    into ``task_split`` parts)."""
    if getattr(cfg, "num_workers", 1) > 1 or task_split(cfg, options.get("episodes_per_task")) > 1:
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
