"""Samplers: the episodes of one meta-batch, θ → (θ_0 = θ, θ_1, …, θ_k) with the episodes of each.

For tasks T_1..T_N, rollout seeds s_0..s_k and inner step sizes α_0..α_{k−1}:

    D_0 ~ π_θ_0 (seed s_0),   θ_{j+1} = θ_j − α_j ∇ Σ_t L_t(θ_j; D_j),   D_{j+1} ~ π_θ_{j+1} (seed s_{j+1})

D_0..D_{k−1} are the inner (training) episodes and D_k the validation episodes the meta-objective is taken
on. Training uses α_j = fast_lr; evaluation its own schedule (:func:`rlmaml.rl.evaluation.step_sizes`).
A :class:`Sampler` is anything with that ``sample`` method; :class:`LocalSampler` runs it in this process on
one batched env, the policy evaluated once per time step for all ``tasks × episodes`` copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Categorical, Independent

from ..core.params import Params
from .episodes import Episodes
from .objectives import InnerLoss, TaskBatch, adapted_params_for_sampling, reinforce_loss
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


@runtime_checkable
class Sampler(Protocol):
    """(θ, tasks, seeds, step sizes) → the :class:`MetaBatch` of phases 0..k (k = ``len(step_sizes)``).

    ``seeds`` holds one rollout seed per phase (k + 1); the same arguments give the same episodes.
    """

    def sample(self, params: Mapping[str, Tensor], tasks: Sequence[dict], seeds: Sequence[int],
               step_sizes: Sequence[float]) -> MetaBatch:
        ...


def action_sampler(policy: Policy, params: Mapping[str, Tensor], device):
    """a ~ π_θ(·|s) on the [T, E, obs] batch (task-stacked params), returned on the CPU for the env.

    The noise is always drawn from the CPU generator (seeded per rollout), also when the policy runs on
    a GPU, so the same seed gives the same episodes on every device.
    """
    device = torch.device(device)

    def sample_actions(obs: torch.Tensor) -> torch.Tensor:
        pi = policy.distribution(params, obs.to(device), stacked=True)
        if device.type == "cpu":
            return pi.sample()
        if isinstance(pi, Independent):
            return torch.normal(pi.base_dist.loc.cpu(), pi.base_dist.scale.cpu())
        return Categorical(logits=pi.logits.cpu(), validate_args=False).sample()
    return sample_actions


class LocalSampler:
    """Samples a meta-batch in this process on one batched env of ``tasks × episodes_per_task`` copies.

    Advantages are GAE(γ = ``gamma``, λ = ``gae_lambda``) with the per-task linear baseline; the policy and the
    inner steps run on ``device`` (the env on the CPU).
    """

    def __init__(self, env, policy: Policy, *, episodes_per_task: int, horizon: int, gamma: float,
                 gae_lambda: float, device: str | torch.device = "cpu", inner_loss: InnerLoss = reinforce_loss):
        self.env, self.policy = env, policy
        self.episodes_per_task, self.horizon = episodes_per_task, horizon
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.device = torch.device(device)
        self.inner_loss = inner_loss

    def sample(self, params: Mapping[str, Tensor], tasks: Sequence[dict], seeds: Sequence[int],
               step_sizes: Sequence[float]) -> MetaBatch:
        k = len(step_sizes)
        if len(seeds) != k + 1:
            raise ValueError(f"{k} inner steps need {k + 1} rollout seeds, got {len(seeds)}")
        tasks = list(tasks)
        current = stack_params({n: p.detach().to(self.device) for n, p in params.items()}, len(tasks))
        phases = MetaBatch(tasks, [], [], [])
        for j in range(k + 1):
            eps = rollout(self.env, action_sampler(self.policy, current, self.device), tasks,
                          self.episodes_per_task, self.horizon, seed=seeds[j])
            batch = TaskBatch.from_episodes(eps, self.gamma, self.gae_lambda, device=self.device)
            phases.episodes.append(eps)
            phases.batches.append(batch)
            phases.params.append(current)
            if j < k:
                current = adapted_params_for_sampling(self.policy, current, batch, step_sizes[j], self.inner_loss)
        return phases


__all__ = ["LocalSampler", "MetaBatch", "Sampler", "action_sampler", "batch_seeds"]
