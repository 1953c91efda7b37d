"""Time-major container of batched episodes: ``[H, T, E, ...]`` for horizon ``H``, ``T`` tasks and
``E`` episodes per task, with the validity mask and the advantage computation used by policy gradients."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .baseline import LinearFeatureBaseline
from .parts import summed_per_task
from .returns import discounted_returns, gae, normalize


@dataclass
class Episodes:
    """observations ``[H,T,E,obs]``, actions ``[H,T,E,act]``, rewards ``[H,T,E]``, mask ``[H,T,E]``
    (1 up to and including the terminating step, 0 after), infos ``dict[str, [H,T,E,...]]``."""

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor
    infos: dict[str, torch.Tensor] = field(default_factory=dict)
    tasks: list[dict] | None = None

    @property
    def horizon(self) -> int:
        return self.rewards.shape[0]

    @property
    def num_tasks(self) -> int:
        return self.rewards.shape[1]

    @property
    def episodes_per_task(self) -> int:
        return self.rewards.shape[2]

    @property
    def returns(self) -> torch.Tensor:
        """Undiscounted return of each episode, ``Σ_t m_t r_t``: ``[T, E]``."""
        return (self.rewards * self.mask).sum(dim=0)

    @property
    def successes(self) -> torch.Tensor | None:
        """Whether each episode succeeded, for envs that report ``info["success"]`` on every step: an episode
        succeeds if any of its valid steps does, ``max_h m_h·success_h > 0``: ``[T, E]`` floats (None without
        success reports)."""
        success = self.infos.get("success")
        if success is None:
            return None
        return ((success.float() * self.mask).amax(dim=0) > 0).float()

    @property
    def num_steps(self) -> int:
        """Number of valid (masked-in) environment steps."""
        return int(self.mask.sum().item())

    @property
    def lengths(self) -> torch.Tensor:
        """Episode lengths ``[T, E]``."""
        return self.mask.sum(dim=0)

    def discounted_returns(self, gamma: float) -> torch.Tensor:
        return discounted_returns(self.rewards, self.mask, gamma)

    def values(self, gamma: float, baseline: LinearFeatureBaseline | None = None) -> torch.Tensor:
        """Linear-feature baseline fitted per task to the discounted returns, evaluated on every step."""
        baseline = baseline or LinearFeatureBaseline()
        return baseline.fit_predict(self.observations, self.discounted_returns(gamma), self.mask) * self.mask

    def advantages(self, gamma: float, gae_lambda: float, normalize: bool = True,
                   baseline: LinearFeatureBaseline | None = None) -> torch.Tensor:
        """GAE(γ, λ) against the per-task linear baseline; normalised per task over masked steps: ``[H,T,E]``."""
        values = self.values(gamma, baseline)
        adv = gae(self.rewards, values, self.mask, gamma, gae_lambda)
        if normalize:
            adv = _normalize(adv, self.mask, dims=(0, 2))
        return adv

    def advantages_program(self, gamma: float, gae_lambda: float, part_tasks, baseline=None, eps: float = 1e-8):
        """Shard program (:mod:`rlmaml.rl.parts`): :meth:`advantages` (normalised) of episodes whose task axis
        holds parts of tasks (``part_tasks[p]``: the task of part p): the baseline's normal equations and the
        normalisation's Σ m, Σ m·A and Σ m·(A − μ)² summed over each task's parts. Returns (A ``[H, P, E]``,
        each part's task's Σ m clamped at 1 ``[P]``)."""
        baseline = baseline or LinearFeatureBaseline()
        phi_w, y_w = baseline._weighted(self.observations, self.discounted_returns(gamma), self.mask)
        gram, rhs = yield from summed_per_task(part_tasks, *baseline.normal_equations(phi_w, y_w))
        values = baseline.fitted_values(phi_w, baseline.solve(gram, rhs), self.observations, self.mask) * self.mask
        adv = gae(self.rewards, values, self.mask, gamma, gae_lambda)
        mask = self.mask  # the normalisation of returns.normalize over (H, E), with the task's sums
        count, total = yield from summed_per_task(part_tasks, mask.sum(dim=(0, 2), keepdim=True),
                                                  (adv * mask).sum(dim=(0, 2), keepdim=True), axis=1)
        count = count.clamp_min(1.0)
        mean = total / count
        (squares,) = yield from summed_per_task(part_tasks, (((adv - mean) * mask) ** 2).sum(dim=(0, 2), keepdim=True),
                                                axis=1)
        var = squares / count
        return (adv - mean) / (var.sqrt() + eps) * mask, count.reshape(-1)

    def task(self, index: int) -> Episodes:
        """The episodes of one task, keeping the task axis (``T = 1``)."""
        sl = slice(index, index + 1)
        return Episodes(self.observations[:, sl], self.actions[:, sl], self.rewards[:, sl], self.mask[:, sl],
                        {k: v[:, sl] for k, v in self.infos.items()},
                        None if self.tasks is None else self.tasks[sl])

    @classmethod
    def concatenate(cls, parts: list[Episodes]) -> Episodes:
        """The episodes of several task sets as one: every tensor joined along the task axis (same horizon and
        episodes per task)."""
        def cat(xs):
            return torch.cat(list(xs), dim=1)

        infos = {k: cat(p.infos[k] for p in parts) for k in parts[0].infos}
        tasks = None if any(p.tasks is None for p in parts) else [t for p in parts for t in p.tasks]
        return cls(cat(p.observations for p in parts), cat(p.actions for p in parts), cat(p.rewards for p in parts),
                   cat(p.mask for p in parts), infos, tasks)

    def to(self, device) -> Episodes:
        return Episodes(self.observations.to(device), self.actions.to(device), self.rewards.to(device),
                        self.mask.to(device), {k: v.to(device) for k, v in self.infos.items()}, self.tasks)


_normalize = normalize


@dataclass
class EpisodeStats:
    """What training and evaluation read of a phase's episodes, small enough to travel: per task and episode
    the return ``Σ_h m_h r_h``, the length ``Σ_h m_h`` and (for envs that report it) the success, ``[T, E]``."""

    returns: torch.Tensor
    lengths: torch.Tensor
    successes: torch.Tensor | None = None

    @classmethod
    def of(cls, episodes: Episodes) -> EpisodeStats:
        return cls(episodes.returns, episodes.lengths, episodes.successes)

    def task(self, index: int) -> EpisodeStats:
        """The statistics of one task, keeping the task axis (``T = 1``)."""
        sl = slice(index, index + 1)
        return EpisodeStats(self.returns[sl], self.lengths[sl], None if self.successes is None else self.successes[sl])

    @property
    def num_steps(self) -> int:
        """Number of valid (masked-in) environment steps."""
        return int(self.lengths.sum().item())

    @classmethod
    def concatenate(cls, parts: list[EpisodeStats | Episodes]) -> EpisodeStats:
        """The statistics of several task sets (statistics, or the episodes themselves) as one, joined along the
        task axis."""
        parts = [p if isinstance(p, EpisodeStats) else cls.of(p) for p in parts]
        successes = None if parts[0].successes is None else torch.cat([p.successes for p in parts])
        return cls(torch.cat([p.returns for p in parts]), torch.cat([p.lengths for p in parts]), successes)

