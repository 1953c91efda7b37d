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
from .parts import run_alone, summed_per_task
from .policies import Policy, stack_params


# ----------------------------------------------------------------------------- data
@dataclass
class TaskBatch:
    """Task-major view of a set of Episodes: M = H·E steps per task.

    observations [T, M, obs], actions [T, M, act] (or [T, M] for discrete), mask [T, M],
    advantages [T, M] (computed once, constants for every gradient below), counts [T]: the valid steps of each
    row's task, Σ mask clamped at 1, the denominator of every per-task mean (for a row that is one part of a
    task, :mod:`rlmaml.rl.parts`, the whole task's; None: the row's own Σ mask).
    """

    observations: Tensor
    actions: Tensor
    mask: Tensor
    advantages: Tensor
    counts: Tensor | None = None

    @property
    def num_tasks(self) -> int:
        return self.observations.shape[0]

    @classmethod
    def from_episodes(cls, episodes, gamma: float, gae_lambda: float,
                      device: torch.device | str | None = None) -> TaskBatch:
        """Advantages A = GAE(γ, λ) with the per-task linear feature baseline, normalised per task."""
        return cls.from_advantages(episodes, episodes.advantages(gamma, gae_lambda, normalize=True), None, device)

    @classmethod
    def from_advantages(cls, episodes, advantages: Tensor, counts: Tensor | None,
                        device: torch.device | str | None = None) -> TaskBatch:
        """The task-major batch of ``episodes`` ``[H, T, E]`` with their ``advantages`` and ``counts``."""
        def task_major(x: Tensor) -> Tensor:  # [H, T, E, ...] -> [T, H·E, ...]
            x = x.movedim(1, 0)
            x = x.reshape(x.shape[0], x.shape[1] * x.shape[2], *x.shape[3:]).contiguous()
            return x if device is None else x.to(device)

        if counts is not None:
            counts = counts.reshape(-1).float()
            counts = counts if device is None else counts.to(device)
        return cls(task_major(episodes.observations), task_major(episodes.actions),
                   task_major(episodes.mask.float()), task_major(advantages.float()), counts)

    @classmethod
    def concatenate(cls, parts: Sequence[TaskBatch]) -> TaskBatch:
        """Several task batches as one, joined along the task axis (same number of steps per task)."""
        fields = [torch.cat([getattr(p, f) for p in parts]) for f in ("observations", "actions", "mask", "advantages")]
        counts = None if any(p.counts is None for p in parts) else torch.cat([p.counts for p in parts])
        return cls(*fields, counts)

    def first_tasks(self, n: int) -> TaskBatch:
        """The batch restricted to tasks 0..n−1."""
        return TaskBatch(self.observations[:n], self.actions[:n], self.mask[:n], self.advantages[:n],
                         None if self.counts is None else self.counts[:n])

    def rows(self, index: Sequence[int]) -> TaskBatch:
        """The batch restricted to the rows ``index``."""
        index = torch.as_tensor(list(index), dtype=torch.long, device=self.mask.device)
        return TaskBatch(*(x.index_select(0, index) for x in (self.observations, self.actions, self.mask,
                                                               self.advantages)),
                         None if self.counts is None else self.counts.index_select(0, index))

    def to(self, device) -> TaskBatch:
        return TaskBatch(*(x.to(device) for x in (self.observations, self.actions, self.mask, self.advantages)),
                         None if self.counts is None else self.counts.to(device))

    def steps_per_task(self) -> Tensor:
        """The denominators of the per-task means: ``counts``, or Σ mask of each row clamped at 1."""
        return self.mask.sum(-1).clamp_min(1.0) if self.counts is None else self.counts


def masked_task_mean(x: Tensor, mask: Tensor, counts: Tensor | None = None) -> Tensor:
    """mean over the valid steps of each task: Σ_m mask·x / Σ_m mask  → [T] (``counts``: the Σ mask of each row's
    whole task, when rows are parts of tasks; :meth:`TaskBatch.steps_per_task`)."""
    return (x * mask).sum(-1) / (mask.sum(-1).clamp_min(1.0) if counts is None else counts)


def log_probs(policy: Policy, params: Mapping[str, Tensor], batch: TaskBatch) -> tuple[Tensor, Distribution]:
    """log π_θt(a|s) for every step [T, M] and the distribution itself (task-stacked θ)."""
    pi = policy.distribution(params, batch.observations, stacked=True)
    return pi.log_prob(batch.actions), pi


# ----------------------------------------------------------------------------- 1. inner adaptation
InnerLoss = Callable[[Policy, Mapping[str, Tensor], TaskBatch], Tensor]
"""L(policy, task-stacked θ, batch) -> one loss per task ``[T]``; θ_{j+1} = θ_j − α ∇ Σ_t L_t(θ_j). A sum over
the batch's steps divided by ``batch.counts`` (:func:`masked_task_mean`), so that the rows of a task split into
parts (``task_split``) add up to the task's loss."""


def reinforce_loss(policy: Policy, params: Mapping[str, Tensor], batch: TaskBatch) -> Tensor:
    """L_t(θ_t) = −mean_{masked steps} log π_θt(a|s) · A, one value per task [T]."""
    logp, _ = log_probs(policy, params, batch)
    return -masked_task_mean(logp * batch.advantages, batch.mask, batch.counts)


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


def whole_tasks(num_rows: int) -> list[tuple[int, int]]:
    """The parts of a batch whose rows are whole tasks: row t is part (t, 0)."""
    return [(t, 0) for t in range(num_rows)]


def summed_flat(parts: Sequence[tuple[int, int]], flat: Tensor, like: Mapping[str, Tensor]):
    """``yield from`` in a shard program: a flat vector over task-stacked tensors ``like`` (``[P, ...]`` each)
    with each row replaced by its task's total over every shard (:func:`rlmaml.rl.parts.summed_per_task`)."""
    if not parts:
        yield {}
        return flat
    stacked = unflatten(flat, like)
    rows = torch.cat([x.reshape(x.shape[0], -1) for x in stacked.values()], dim=1)
    (rows,) = yield from summed_per_task([t for t, _ in parts], rows)
    out, offset = [], 0
    for x in stacked.values():
        n = x[0].numel()
        out.append(rows[:, offset:offset + n].reshape(-1))
        offset += n
    return torch.cat(out) if out else flat


def _summed_tensors(parts: Sequence[tuple[int, int]], tensors: Sequence[Tensor]):
    """``yield from``: each tensor ``[P, ...]``'s rows replaced by their task's total over every shard."""
    if not parts:
        yield {}
        return tuple(tensors)
    return (yield from summed_per_task([t for t, _ in parts], *tensors))


def adapted_params_for_sampling(policy: Policy, stacked_params: Mapping[str, Tensor], train_batch: TaskBatch,
                                fast_lr: float, inner_loss: InnerLoss = reinforce_loss) -> Params:
    """θ_{j+1} from task-stacked θ_j on freshly sampled episodes of whole tasks, detached (used only to sample the
    next episodes)."""
    return run_alone(adapted_params_program(policy, stacked_params, train_batch, fast_lr, inner_loss))


def adapted_params_program(policy: Policy, stacked_params: Mapping[str, Tensor], train_batch: TaskBatch,
                           fast_lr: float, inner_loss: InnerLoss = reinforce_loss,
                           parts: Sequence[tuple[int, int]] | None = None):
    """Shard program (:mod:`rlmaml.rl.parts`): θ_{j+1} from task-stacked θ_j on freshly sampled episodes,
    detached (used only to sample the next episodes); ∇L_t summed over the task's parts."""
    parts = whole_tasks(train_batch.num_tasks) if parts is None else parts
    leaves = {n: p.detach().requires_grad_() for n, p in stacked_params.items()}
    with torch.enable_grad():
        loss = inner_loss(policy, leaves, train_batch).sum()
        if not torch.isfinite(loss).all():
            raise FloatingPointError(f"inner loss is not finite ({loss.item()}); lower the step size")
        grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(leaves.values(), grads)]
    grads = yield from _summed_tensors(parts, grads)
    return {n: (p - fast_lr * g).detach() for (n, p), g in zip(leaves.items(), grads)}


# ----------------------------------------------------------------------------- 2. meta-objective
def surrogate_loss(logp: Tensor, old_logp: Tensor, batch: TaskBatch, num_tasks: int | None = None) -> Tensor:
    """S = −(1/N) Σ_t mean_{masked} exp(log π − log π_old) · A, the sum over the batch's tasks; N = ``num_tasks``
    (default: the batch's, so S is their mean; a shard of a larger meta-batch gives its share of S)."""
    ratio = torch.exp(logp - old_logp)
    return -masked_task_mean(ratio * batch.advantages, batch.mask, batch.counts).sum() / (num_tasks or batch.num_tasks)


def mean_kl(old_pi: Distribution, pi: Distribution, mask: Tensor, num_tasks: int | None = None,
            counts: Tensor | None = None) -> Tensor:
    """(1/N) Σ_t mean_{masked} KL(π_old ‖ π), the sum over the tasks of ``mask``; N = ``num_tasks`` (default:
    theirs); ``counts`` as in :func:`masked_task_mean`."""
    return masked_task_mean(kl_divergence(old_pi, pi), mask, counts).sum() / (num_tasks or mask.shape[0])


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
    flat over the plain θ; in θ'-space flat over the task-stacked tensors. The rows are ``parts`` of tasks
    (:mod:`rlmaml.rl.parts`): each row's H_j w is its part's share, summed over the task's parts, so
    :meth:`jvp` and :meth:`vjp` are shard programs; :meth:`vjp`'s copy adjoint counts each task once, at its
    part j = 0.
    """

    def __init__(self, params: Mapping[str, Tensor], num_tasks: int, fast_lr: float, hessians: list,
                 parts: Sequence[tuple[int, int]] | None = None, gradients: list | None = None):
        self.params, self.num_tasks, self.fast_lr, self.hessians = params, num_tasks, fast_lr, hessians
        self.gradients = gradients or []  # each step's ∇L_j per row, summed over the task's parts
        self.parts = whole_tasks(num_tasks) if parts is None else list(parts)
        self._like = stack_params(params, num_tasks)

    def jvp(self, v: Tensor) -> Tensor:
        """J v (:meth:`jvp_program` of a chain whose rows are whole tasks)."""
        return run_alone(self.jvp_program(v))

    def vjp(self, w: Tensor) -> Tensor:
        """Jᵀ w (:meth:`vjp_program` of a chain whose rows are whole tasks)."""
        return run_alone(self.vjp_program(w))

    def jvp_program(self, v: Tensor):
        """J v: v copied to every task, then u ← u − α H_j u for j = 0 … k−1."""
        u = flatten(stack_params(unflatten(v.detach(), self.params), self.num_tasks))
        for hessian in self.hessians:
            hu = yield from summed_flat(self.parts, hessian(u), self._like)
            u = u - self.fast_lr * hu
        return u

    def vjp_program(self, w: Tensor):
        """Jᵀ w: w ← w − α H_j w for j = k−1 … 1, then the shard's share of Σ_t (w_t − α H_0 w_t), the sum over
        tasks being the adjoint of the copy.

        The last product needs no per-task sum of its own: Σ_t (w_t − α Σ_{p∈t} H_0,p w_t) = Σ_p (w_t·[j_p = 0]
        − α H_0,p w_t), so each row adds its part's −α H_0,p w_t and its task's w_t once, at part j = 0, and the
        caller's sum over the shards' answers completes it. With whole tasks (every row a part 0) this is
        Σ_t (w_t − α H_0 w_t), as without parts.
        """
        hessians = self.hessians[::-1]
        for hessian in hessians[:-1]:
            hw = yield from summed_flat(self.parts, hessian(w), self._like)
            w = w - self.fast_lr * hw
        hw = hessians[-1](w) if hessians else None  # each row's share H_0,p w_t of its task's w_t
        owners = [j == 0 for _, j in self.parts]
        if not all(owners):  # the rows of parts j > 0 bring only their −α H_0,p w_t
            keep = torch.as_tensor(owners, device=w.device)
            w = flatten([torch.where(keep.view(-1, *[1] * (x.dim() - 1)), x, torch.zeros_like(x))
                         for x in unflatten(w, self._like).values()])
        if hw is not None:
            w = w - self.fast_lr * hw
        return flatten([x.sum(0) for x in unflatten(w, self._like).values()])


def adaptation_chain(policy: Policy, params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch],
                     fast_lr: float, num_tasks: int, first_order: bool,
                     inner_loss: InnerLoss = reinforce_loss) -> tuple[AdaptationChain, Params]:
    """:func:`adaptation_chain_program` of rows that are whole tasks."""
    return run_alone(adaptation_chain_program(policy, params, train_batches, fast_lr, num_tasks, first_order,
                                              inner_loss))


def adaptation_chain_program(policy: Policy, params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch],
                             fast_lr: float, num_tasks: int, first_order: bool,
                             inner_loss: InnerLoss = reinforce_loss, parts: Sequence[tuple[int, int]] | None = None,
                             gradients: Sequence[Sequence[Tensor]] | None = None):
    """Shard program: run the inner steps from plain θ with every θ_j a fresh leaf: returns (the chain for
    J-products, θ_k as leaves); ``num_tasks`` rows, ``parts`` of tasks (default whole tasks). The chain keeps
    each step's inner gradients ∇L_j, summed over each task's parts (``chain.gradients``).

    ``first_order`` makes J = I (the inner gradients are constants), as in :func:`adapt_tasks`. ``gradients``
    gives those sums when they are known, for a chain over the first rows of another chain on the same θ and
    episodes (the subsampled Fisher's): its sums are the same, so the program yields nothing.
    """
    parts = whole_tasks(num_tasks) if parts is None else list(parts)
    fast = {n: p.detach() for n, p in stack_params(params, num_tasks).items()}
    hessians, summed = [], []
    for j, batch in enumerate(train_batches):
        leaves = {n: p.requires_grad_() for n, p in fast.items()}
        if gradients is None or not first_order:
            loss = inner_loss(policy, leaves, batch).sum()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"inner loss is not finite ({loss.item()}); lower the step size")
            grads = torch.autograd.grad(loss, list(leaves.values()), create_graph=not first_order)
            if not first_order:
                hessians.append(gradient_jacobian_product(grads, leaves))
        if gradients is None:
            grads = yield from _summed_tensors(parts, [g.detach() for g in grads])
        else:
            grads = tuple(gradients[j])
        summed.append(grads)
        fast = {n: p.detach() - fast_lr * g for (n, p), g in zip(leaves.items(), grads)}
    return AdaptationChain(params, num_tasks, fast_lr, hessians, parts, summed), {n: p.detach().requires_grad_() for n, p in fast.items()}


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
        """θ'_t(θ) on the training episodes from plain θ, then log π_θ'(a|s) on the validation episodes (rows
        that are whole tasks)."""
        first_order = self.first_order if first_order is None else first_order
        fast_params = adapt_tasks(self.policy, stack_params(params, valid.num_tasks), train_batches, self.fast_lr,
                                  first_order, self.inner_loss)
        return log_probs(self.policy, fast_params, valid)

    def chain(self, params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch], num_tasks: int,
              parts: Sequence[tuple[int, int]] | None = None, gradients: Sequence[Sequence[Tensor]] | None = None):
        """Shard program: :func:`adaptation_chain_program` with this objective's α, inner loss and order."""
        return adaptation_chain_program(self.policy, params, train_batches, self.fast_lr, num_tasks,
                                        self.first_order, self.inner_loss, parts, gradients)

    def surrogate_and_kl(self, params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch], valid: TaskBatch,
                         old_logp: Tensor, old_pi: Distribution, num_tasks: int | None = None) -> tuple[float, float]:
        """(S, KL) at candidate θ (:meth:`surrogate_and_kl_program` of rows that are whole tasks)."""
        return run_alone(self.surrogate_and_kl_program(params, train_batches, valid, old_logp, old_pi, num_tasks))

    def surrogate_and_kl_program(self, params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch],
                                 valid: TaskBatch, old_logp: Tensor, old_pi: Distribution,
                                 num_tasks: int | None = None, parts: Sequence[tuple[int, int]] | None = None):
        """Shard program: (S, KL) at candidate θ, re-running the adaptation (first order) on the same training
        episodes (NaNs when the adaptation or the distribution is not finite); of a shard of a meta-batch of
        ``num_tasks``, its shares."""
        parts = whole_tasks(valid.num_tasks) if parts is None else list(parts)
        leaves = {n: p.detach().requires_grad_() for n, p in params.items()}
        failed = False
        with torch.enable_grad():
            fast = dict(stack_params(leaves, valid.num_tasks))
        for batch in train_batches:
            grads = [torch.zeros_like(p) for p in fast.values()]
            if not failed:
                try:
                    with torch.enable_grad():
                        loss = self.inner_loss(self.policy, fast, batch).sum()
                        if not torch.isfinite(loss).all():
                            raise FloatingPointError("inner loss is not finite")
                        grads = [torch.zeros_like(p) if g is None else g.detach() for p, g in
                                 zip(fast.values(), torch.autograd.grad(loss, list(fast.values()), allow_unused=True))]
                except (FloatingPointError, ValueError):  # non-finite inner loss / invalid distribution parameters
                    failed = True
            grads = yield from _summed_tensors(parts, grads)
            fast = {n: p - self.fast_lr * g for (n, p), g in zip(fast.items(), grads)}
        if failed:
            return float("nan"), float("nan")
        try:
            with torch.no_grad():
                logp, pi = log_probs(self.policy, fast, valid)
                return (surrogate_loss(logp, old_logp, valid, num_tasks).item(),
                        mean_kl(old_pi, pi, valid.mask, num_tasks, valid.counts).item())
        except (FloatingPointError, ValueError):
            return float("nan"), float("nan")


__all__ = [
    "INNER_LOSSES",
    "AdaptationChain",
    "InnerLoss",
    "MetaObjective",
    "TaskBatch",
    "adapt_tasks",
    "adaptation_chain",
    "adaptation_chain_program",
    "adapted_params_for_sampling",
    "adapted_params_program",
    "detach_distribution",
    "log_probs",
    "masked_task_mean",
    "mean_kl",
    "reinforce_loss",
    "summed_flat",
    "surrogate_loss",
    "whole_tasks",
]
