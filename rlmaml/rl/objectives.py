"""The objectives of MAML for RL (Finn, Abbeel & Levine, 2017, §3.3): the inner loss that adapts θ to a task,
and the meta-objective that scores the adapted policies.

For a meta-batch of tasks T_1..T_N with policy parameters θ:

1. **Inner adaptation** (per task t, on episodes D_t sampled with π_θ), k steps of

       θ_{j+1,t} = θ_{j,t} − α ∇ L_t(θ_{j,t}),      θ_{0,t} = θ,   θ'_t = θ_{k,t}

   with an :data:`InnerLoss` L, by default the REINFORCE loss (:func:`reinforce_loss`)

       L_t(θ) = − (1/|D_t|) Σ_{steps} log π_θ(a|s) · A(s, a)        (masked mean)

   A are GAE advantages with a linear feature baseline fitted on D_t. Each further step samples fresh
   episodes with the adapted policy. All tasks are adapted at once: θ is expanded to a task-stacked copy
   ``[N, *shape]`` and the gradient of Σ_t L_t w.r.t. that copy is the per-task gradient
   (:func:`rlmaml.rl.policies.stack_params`).

2. **Meta-objective** on the validation episodes D'_t sampled with π_θ'_t (the TRPO surrogate)

       S(θ)  = − (1/N) Σ_t mean_{D'_t} [ π_θ'_t(θ)(a|s) / π_old(a|s) · A'(s, a) ]
       KL(θ) =   (1/N) Σ_t mean_{D'_t} KL( π_old(·|s) ‖ π_θ'_t(θ)(·|s) )

   where θ'_t(θ) is the adaptation of step 1 re-run from θ on the *same* D_t, and π_old is the adapted
   policy at the current θ (so the ratio is 1 and KL is 0 there).

The meta-optimizers (:mod:`rlmaml.rl.algos`) minimise S through :class:`MetaObjective`; another inner loss
(e.g. ProMP's low-variance curvature surrogate) is one more entry in :data:`INNER_LOSSES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, Independent, Normal, kl_divergence

from ..core.adapt import inner_update
from ..core.optim import gradient_jacobian_product
from ..core.params import Params, flatten, unflatten
from .policies import Policy, stack_params


# ----------------------------------------------------------------------------- data
@dataclass
class TaskBatch:
    """Task-major view of a set of Episodes: M = H·E steps per task.

    observations [T, M, obs], actions [T, M, act] (or [T, M] for discrete), mask [T, M],
    advantages [T, M] (computed once, constants for every gradient below).
    """

    observations: Tensor
    actions: Tensor
    mask: Tensor
    advantages: Tensor

    @property
    def num_tasks(self) -> int:
        return self.observations.shape[0]

    @classmethod
    def from_episodes(cls, episodes, gamma: float, gae_lambda: float,
                      device: torch.device | str | None = None) -> TaskBatch:
        """Advantages A = GAE(γ, λ) with the per-task linear feature baseline, normalised per task."""
        advantages = episodes.advantages(gamma, gae_lambda, normalize=True)

        def task_major(x: Tensor) -> Tensor:  # [H, T, E, ...] -> [T, H·E, ...]
            x = x.movedim(1, 0)
            x = x.reshape(x.shape[0], x.shape[1] * x.shape[2], *x.shape[3:]).contiguous()
            return x if device is None else x.to(device)

        return cls(task_major(episodes.observations), task_major(episodes.actions),
                   task_major(episodes.mask.float()), task_major(advantages.float()))

    @classmethod
    def concatenate(cls, parts: Sequence[TaskBatch]) -> TaskBatch:
        """Several task batches as one, joined along the task axis (same number of steps per task)."""
        return cls(*(torch.cat([getattr(p, f) for p in parts]) for f in ("observations", "actions", "mask", "advantages")))

    def first_tasks(self, n: int) -> TaskBatch:
        """The batch restricted to tasks 0..n−1."""
        return TaskBatch(self.observations[:n], self.actions[:n], self.mask[:n], self.advantages[:n])

    def to(self, device) -> TaskBatch:
        return TaskBatch(*(x.to(device) for x in (self.observations, self.actions, self.mask, self.advantages)))


def masked_task_mean(x: Tensor, mask: Tensor) -> Tensor:
    """mean over the valid steps of each task: Σ_m mask·x / Σ_m mask  → [T]."""
    return (x * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)


def log_probs(policy: Policy, params: Mapping[str, Tensor], batch: TaskBatch) -> tuple[Tensor, Distribution]:
    """log π_θt(a|s) for every step [T, M] and the distribution itself (task-stacked θ)."""
    pi = policy.distribution(params, batch.observations, stacked=True)
    return pi.log_prob(batch.actions), pi


# ----------------------------------------------------------------------------- 1. inner adaptation
InnerLoss = Callable[[Policy, Mapping[str, Tensor], TaskBatch], Tensor]
"""L(policy, task-stacked θ, batch) -> one loss per task ``[T]``; θ_{j+1} = θ_j − α ∇ Σ_t L_t(θ_j)."""


def reinforce_loss(policy: Policy, params: Mapping[str, Tensor], batch: TaskBatch) -> Tensor:
    """L_t(θ_t) = −mean_{masked steps} log π_θt(a|s) · A, one value per task [T]."""
    logp, _ = log_probs(policy, params, batch)
    return -masked_task_mean(logp * batch.advantages, batch.mask)


INNER_LOSSES: dict[str, InnerLoss] = {"reinforce": reinforce_loss}
"""The inner losses by config name (``inner_loss``)."""


def adapt_tasks(policy: Policy, stacked_params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch],
                fast_lr: float, first_order: bool, inner_loss: InnerLoss = reinforce_loss) -> Params:
    """θ'_t for every task from task-stacked θ: one inner step per element of ``train_batches`` (step j uses
    the episodes sampled with θ_j). ``first_order`` treats the inner gradients as constants."""
    fast_params = dict(stacked_params)
    for batch in train_batches:
        fast_params = inner_update(lambda p, b=batch: inner_loss(policy, p, b).sum(),
                                   fast_params, fast_lr, first_order=first_order)
    return fast_params


def adapted_params_for_sampling(policy: Policy, stacked_params: Mapping[str, Tensor], train_batch: TaskBatch,
                                fast_lr: float, inner_loss: InnerLoss = reinforce_loss) -> Params:
    """θ_{j+1} from task-stacked θ_j on freshly sampled episodes, detached (used only to sample the next
    episodes)."""
    leaves = {n: p.detach().requires_grad_() for n, p in stacked_params.items()}
    with torch.enable_grad():
        fast = adapt_tasks(policy, leaves, [train_batch], fast_lr, first_order=True, inner_loss=inner_loss)
    return {n: p.detach() for n, p in fast.items()}


# ----------------------------------------------------------------------------- 2. meta-objective
def surrogate_loss(logp: Tensor, old_logp: Tensor, batch: TaskBatch, num_tasks: int | None = None) -> Tensor:
    """S = −(1/N) Σ_t mean_{masked} exp(log π − log π_old) · A, the sum over the batch's tasks; N = ``num_tasks``
    (default: the batch's, so S is their mean; a shard of a larger meta-batch gives its share of S)."""
    ratio = torch.exp(logp - old_logp)
    return -masked_task_mean(ratio * batch.advantages, batch.mask).sum() / (num_tasks or batch.num_tasks)


def mean_kl(old_pi: Distribution, pi: Distribution, mask: Tensor, num_tasks: int | None = None) -> Tensor:
    """(1/N) Σ_t mean_{masked} KL(π_old ‖ π), the sum over the tasks of ``mask``; N = ``num_tasks`` (default:
    theirs)."""
    return masked_task_mean(kl_divergence(old_pi, pi), mask).sum() / (num_tasks or mask.shape[0])


def detach_distribution(pi: Distribution) -> Distribution:
    """π_old: the same distribution with its parameters cut from the graph."""
    if isinstance(pi, Independent) and isinstance(pi.base_dist, Normal):
        return Independent(Normal(pi.base_dist.loc.detach(), pi.base_dist.scale.detach(), validate_args=False),
                           pi.reinterpreted_batch_ndims, validate_args=False)
    if isinstance(pi, Categorical):
        return Categorical(logits=pi.logits.detach(), validate_args=False)
    raise TypeError(f"cannot detach a {type(pi).__name__}")


class AdaptationChain:
    """The inner steps θ_0 = θ (task-stacked), θ_{j+1} = θ_j − α ∇L_j(θ_j), kept for products with J = ∂θ_k/∂θ.

    J = Π_j (I − α H_j), H_j = ∇²L_j(θ_j) (block-diagonal over tasks, symmetric). Vectors in θ-space are
    flat over the plain θ; in θ'-space flat over the task-stacked tensors.
    """

    def __init__(self, params: Mapping[str, Tensor], num_tasks: int, fast_lr: float, hessians: list):
        self.params, self.num_tasks, self.fast_lr, self.hessians = params, num_tasks, fast_lr, hessians

    def jvp(self, v: Tensor) -> Tensor:
        """J v: v copied to every task, then u ← u − α H_j u for j = 0 … k−1."""
        u = flatten(stack_params(unflatten(v.detach(), self.params), self.num_tasks))
        for hessian in self.hessians:
            u = u - self.fast_lr * hessian(u)
        return u

    def vjp(self, w: Tensor) -> Tensor:
        """Jᵀ w: w ← w − α H_j w for j = k−1 … 0, then summed over tasks (the adjoint of the copy)."""
        for hessian in reversed(self.hessians):
            w = w - self.fast_lr * hessian(w)
        stacked = unflatten(w, stack_params(self.params, self.num_tasks))
        return flatten([x.sum(0) for x in stacked.values()])


def adaptation_chain(policy: Policy, params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch],
                     fast_lr: float, num_tasks: int, first_order: bool,
                     inner_loss: InnerLoss = reinforce_loss) -> tuple[AdaptationChain, Params]:
    """Run the inner steps from plain θ with every θ_j a fresh leaf: (the chain for J-products, θ_k as leaves).

    ``first_order`` makes J = I (the inner gradients are constants), as in :func:`adapt_tasks`.
    """
    fast = {n: p.detach() for n, p in stack_params(params, num_tasks).items()}
    hessians = []
    for batch in train_batches:
        leaves = {n: p.requires_grad_() for n, p in fast.items()}
        loss = inner_loss(policy, leaves, batch).sum()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"inner loss is not finite ({loss.item()}); lower the step size")
        grads = torch.autograd.grad(loss, list(leaves.values()), create_graph=not first_order)
        if not first_order:
            hessians.append(gradient_jacobian_product(grads, leaves))
        fast = {n: p.detach() - fast_lr * g.detach() for (n, p), g in zip(leaves.items(), grads)}
    return AdaptationChain(params, num_tasks, fast_lr, hessians), {n: p.detach().requires_grad_() for n, p in fast.items()}


@dataclass
class MetaObjective:
    """θ ↦ the adapted policies' log-probabilities on the validation episodes, and (S, KL) at a candidate θ:
    what every meta-optimizer needs of the inner loop (α = ``fast_lr``, k = the number of training batches)."""

    policy: Policy
    fast_lr: float
    first_order: bool = False
    inner_loss: InnerLoss = reinforce_loss

    def adapted_log_probs(self, params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch], valid: TaskBatch,
                          first_order: bool | None = None) -> tuple[Tensor, Distribution]:
        """θ'_t(θ) on the training episodes from plain θ, then log π_θ'(a|s) on the validation episodes."""
        first_order = self.first_order if first_order is None else first_order
        fast_params = adapt_tasks(self.policy, stack_params(params, valid.num_tasks), train_batches, self.fast_lr,
                                  first_order, self.inner_loss)
        return log_probs(self.policy, fast_params, valid)

    def chain(self, params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch],
              num_tasks: int) -> tuple[AdaptationChain, Params]:
        """:func:`adaptation_chain` with this objective's α, inner loss and order."""
        return adaptation_chain(self.policy, params, train_batches, self.fast_lr, num_tasks, self.first_order,
                                self.inner_loss)

    def surrogate_and_kl(self, params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch], valid: TaskBatch,
                         old_logp: Tensor, old_pi: Distribution, num_tasks: int | None = None) -> tuple[float, float]:
        """(S, KL) at candidate θ, re-running the adaptation on the same training episodes (NaNs when the
        adaptation or the distribution is not finite); of a shard of a meta-batch of ``num_tasks``, its shares."""
        leaves = {n: p.detach().requires_grad_() for n, p in params.items()}
        try:
            with torch.enable_grad():
                logp, pi = self.adapted_log_probs(leaves, train_batches, valid, first_order=True)
            with torch.no_grad():
                return (surrogate_loss(logp, old_logp, valid, num_tasks).item(),
                        mean_kl(old_pi, pi, valid.mask, num_tasks).item())
        except (FloatingPointError, ValueError):  # non-finite inner loss / invalid distribution parameters
            return float("nan"), float("nan")


__all__ = [
    "INNER_LOSSES",
    "AdaptationChain",
    "InnerLoss",
    "MetaObjective",
    "TaskBatch",
    "adapt_tasks",
    "adaptation_chain",
    "adapted_params_for_sampling",
    "detach_distribution",
    "log_probs",
    "masked_task_mean",
    "mean_kl",
    "reinforce_loss",
    "surrogate_loss",
]
