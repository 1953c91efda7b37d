"""MAML-TRPO (Finn, Abbeel & Levine, 2017, §3.3 / §5.3): meta-reinforcement learning.

For a meta-batch of tasks T_1..T_N, with policy parameters θ:

1. Inner adaptation (per task t, on episodes D_t sampled with π_θ), k REINFORCE steps

       L_t(θ)  = − (1/|D_t|) Σ_{steps} log π_θ(a|s) · A(s, a)        (masked mean)
       θ'_t    = θ − α ∇_θ L_t(θ)                                     (α = fast_lr)

   A are GAE advantages with a linear feature baseline fitted on D_t. Each further
   step samples fresh episodes with the adapted policy. All tasks are adapted at
   once: θ is expanded to a task-stacked copy ``[N, *shape]`` and the gradient of
   Σ_t L_t w.r.t. that copy is the per-task gradient (see ``policies.stack_params``).

2. Meta-objective on the validation episodes D'_t sampled with π_θ'_t (TRPO surrogate)

       S(θ)  = − (1/N) Σ_t mean_{D'_t} [ π_θ'_t(θ)(a|s) / π_old(a|s) · A'(s, a) ]
       KL(θ) =   (1/N) Σ_t mean_{D'_t} KL( π_old(·|s) ‖ π_θ'_t(θ)(·|s) )

   where θ'_t(θ) is the adaptation of step 1 re-run from θ on the *same* D_t, and
   π_old is the adapted policy at the current θ (so the ratio is 1 and KL is 0 there).

3. Natural-gradient step: with g = ∇_θ S and F = ∇²_θ KL (the Fisher of the
   meta-policy, taken *through* the adaptation; second-order unless first_order)

       s    = CG(F + λI, g)                     (cg_iters iterations, λ = cg_damping)
       Δ    = sqrt(2 δ / sᵀ F s) · s            (δ = max_kl)
       θ   ← θ − ρ^j Δ   for the first j = 0, 1, … with S(θ − ρ^j Δ) < S(θ) and KL ≤ δ

   otherwise θ is unchanged. Any non-finite quantity rejects the step (θ unchanged,
   a warning is logged). ``meta_optimizer="adam"`` replaces step 3 by one Adam step
   on ∇_θ S for comparison.

   F and g are computed in factored form, with no third-order graph. Write J = ∂θ'/∂θ =
   Π_j (I − α H_j) (H_j = ∇²L_j(θ_j), the Hessian of step j's inner loss at θ_j; J = I when
   first_order). By the chain rule g = Jᵀ ∇_θ' S, and

       F = Jᵀ F' J + Σ (∂KL/∂θ') ∇²θ'    with F' = ∇²_θ' KL,

   where ∂KL/∂θ' = 0 at the current θ (KL(π_old ‖ π) is minimal at π = π_old), so F v = Jᵀ F' J v
   exactly: J v and Jᵀ w are chains of inner Hessian-vector products and F' u one Hessian-vector product
   of the KL at θ'. Each Fisher-vector product costs 2k + 1 second-order products instead of one
   third-order one (``rlmaml bench meta-step`` times both: about 25% fewer FLOPs per product).

   With ``fisher_tasks`` = n < N, F (in CG and in sᵀFs) is the Hessian of the KL of the first n tasks only
   (tasks are i.i.d., so it is an unbiased estimate of F), the TRPO habit of a subsampled Fisher that cuts
   the cost of every product by about N/n; g, S and the line search's KL ≤ δ test still use all N tasks.

``num_inner_steps=0`` gives plain TRPO on the mixture of tasks (the "pretrained"
and "oracle" comparison policies of the paper).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution, Independent, Normal, kl_divergence

from ..core.adapt import inner_update
from ..core.optim import (
    backtracking_line_search,
    conjugate_gradient,
    gradient_jacobian_product,
    hessian_vector_product,
)
from ..core.params import Params, flatten, unflatten
from .policies import stack_params

log = logging.getLogger(__name__)


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

    def first_tasks(self, n: int) -> TaskBatch:
        """The batch restricted to tasks 0..n−1."""
        return TaskBatch(self.observations[:n], self.actions[:n], self.mask[:n], self.advantages[:n])

    def to(self, device) -> TaskBatch:
        return TaskBatch(*(x.to(device) for x in (self.observations, self.actions, self.mask, self.advantages)))


def masked_task_mean(x: Tensor, mask: Tensor) -> Tensor:
    """mean over the valid steps of each task: Σ_m mask·x / Σ_m mask  → [T]."""
    return (x * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)


def log_probs(policy, params: Mapping[str, Tensor], batch: TaskBatch) -> tuple[Tensor, Distribution]:
    """log π_θ(a|s) for every step [T, M] and the distribution itself."""
    pi = policy.distribution(params, batch.observations)
    return pi.log_prob(batch.actions), pi


# ----------------------------------------------------------------------------- 1. inner adaptation
def reinforce_loss(policy, params: Mapping[str, Tensor], batch: TaskBatch) -> Tensor:
    """L_t(θ_t) = −mean_{masked steps} log π_θt(a|s) · A, one value per task [T]."""
    logp, _ = log_probs(policy, params, batch)
    return -masked_task_mean(logp * batch.advantages, batch.mask)


def adapt_tasks(policy, params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch], fast_lr: float,
                first_order: bool) -> Params:
    """θ'_t for every task: one REINFORCE step per element of ``train_batches`` (step j uses the
    episodes sampled with θ_j). ``params`` is plain θ (stacked here) or already task-stacked."""
    fast_params = dict(params)
    if params_are_plain(fast_params):
        if not train_batches:
            raise ValueError("plain parameters need at least one training batch to know the number of tasks")
        fast_params = stack_params(fast_params, train_batches[0].num_tasks)
    for batch in train_batches:
        fast_params = inner_update(lambda p, b=batch: reinforce_loss(policy, p, b).sum(),
                                   fast_params, fast_lr, first_order=first_order)
    return fast_params


def params_are_plain(params: Mapping[str, Tensor]) -> bool:
    return params["layers.0.weight"].dim() == 2


def adapted_params_for_sampling(policy, params: Mapping[str, Tensor], train_batch: TaskBatch,
                                fast_lr: float) -> Params:
    """θ_{j+1} from θ_j on freshly sampled episodes, detached (used only to sample the next episodes)."""
    leaves = {n: p.detach().requires_grad_() for n, p in params.items()}
    with torch.enable_grad():
        fast = adapt_tasks(policy, leaves, [train_batch], fast_lr, first_order=True)
    return {n: p.detach() for n, p in fast.items()}


# ----------------------------------------------------------------------------- 2. meta-objective
def surrogate_loss(logp: Tensor, old_logp: Tensor, batch: TaskBatch) -> Tensor:
    """S = −(1/N) Σ_t mean_{masked} exp(log π − log π_old) · A."""
    ratio = torch.exp(logp - old_logp)
    return -masked_task_mean(ratio * batch.advantages, batch.mask).mean()


def mean_kl(old_pi: Distribution, pi: Distribution, mask: Tensor) -> Tensor:
    """(1/N) Σ_t mean_{masked} KL(π_old ‖ π)."""
    return masked_task_mean(kl_divergence(old_pi, pi), mask).mean()


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


def adaptation_chain(policy, params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch], fast_lr: float,
                     num_tasks: int, first_order: bool) -> tuple[AdaptationChain, Params]:
    """Run the inner steps from θ with every θ_j a fresh leaf: (the chain for J-products, θ_k as leaves).

    ``first_order`` makes J = I (the inner gradients are constants), as in :func:`adapt_tasks`.
    """
    fast = {n: p.detach() for n, p in stack_params(params, num_tasks).items()}
    hessians = []
    for batch in train_batches:
        leaves = {n: p.requires_grad_() for n, p in fast.items()}
        loss = reinforce_loss(policy, leaves, batch).sum()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"inner loss is not finite ({loss.item()}); lower the step size")
        grads = torch.autograd.grad(loss, list(leaves.values()), create_graph=not first_order)
        if not first_order:
            hessians.append(gradient_jacobian_product(grads, leaves))
        fast = {n: p.detach() - fast_lr * g.detach() for (n, p), g in zip(leaves.items(), grads)}
    return AdaptationChain(params, num_tasks, fast_lr, hessians), {n: p.detach().requires_grad_() for n, p in fast.items()}


# ----------------------------------------------------------------------------- 3. meta-update
class StepRejected(Exception):
    """A meta-update that cannot be taken (non-finite loss, gradient or step); θ stays unchanged."""


def _finite(*xs) -> bool:
    return all(bool(torch.isfinite(torch.as_tensor(x)).all()) for x in xs)


class MetaLearner:
    """Owns θ and performs MAML meta-updates (TRPO or Adam) from sampled task batches.

    θ is a dict of leaf tensors (``self.params``) changed in place only by an accepted step.
    """

    def __init__(self, policy, params: Mapping[str, Tensor], *, fast_lr: float = 0.1, first_order: bool = False,
                 meta_optimizer: str = "trpo", max_kl: float = 0.01, cg_iters: int = 10, cg_damping: float = 1e-5,
                 ls_max_steps: int = 15, ls_backtrack_ratio: float = 0.8, meta_lr: float = 1e-3,
                 fisher_tasks: int = 0):
        if meta_optimizer not in ("trpo", "adam"):
            raise ValueError(f"meta_optimizer {meta_optimizer!r} is not allowed; allowed: trpo, adam")
        self.policy = policy
        self.params: Params = {n: p.detach().clone().requires_grad_() for n, p in params.items()}
        self.fast_lr, self.first_order = fast_lr, first_order
        self.meta_optimizer = meta_optimizer
        self.max_kl, self.cg_iters, self.cg_damping = max_kl, cg_iters, cg_damping
        self.ls_max_steps, self.ls_backtrack_ratio = ls_max_steps, ls_backtrack_ratio
        if fisher_tasks < 0:
            raise ValueError(f"fisher_tasks must be >= 0 (0 = every task), got {fisher_tasks}")
        self.fisher_tasks = int(fisher_tasks)
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=meta_lr) if meta_optimizer == "adam" else None

    # -- state for checkpoints
    def state_dict(self) -> dict:
        state = {"params": {n: p.detach().cpu().clone() for n, p in self.params.items()}}
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(state["params"][n])
        if self.optimizer is not None and "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])

    # -- the objective
    def objective(self, params: Mapping[str, Tensor], train_batches: Sequence[TaskBatch], valid: TaskBatch,
                  first_order: bool):
        """θ'_t(θ) on the training episodes, then log π_θ'(a|s) on the validation episodes."""
        stacked = stack_params(params, valid.num_tasks) if params_are_plain(params) else dict(params)
        fast_params = adapt_tasks(self.policy, stacked, train_batches, self.fast_lr, first_order)
        return log_probs(self.policy, fast_params, valid)

    def evaluate_candidate(self, params: Mapping[str, Tensor], train_batches, valid, old_logp, old_pi):
        """(S, KL) at candidate θ, re-running the adaptation on the same training episodes."""
        leaves = {n: p.detach().requires_grad_() for n, p in params.items()}
        try:
            with torch.enable_grad():
                logp, pi = self.objective(leaves, train_batches, valid, first_order=True)
            with torch.no_grad():
                return surrogate_loss(logp, old_logp, valid).item(), mean_kl(old_pi, pi, valid.mask).item()
        except (FloatingPointError, ValueError):  # non-finite inner loss / invalid distribution parameters
            return float("nan"), float("nan")

    def natural_gradient_setup(self, train_batches: Sequence[TaskBatch], valid: TaskBatch):
        """At the current θ: (S(θ), g = ∇_θ S, v ↦ (F + λI) v, log π_old, π_old), in factored form.

        g = Jᵀ ∇_θ' S and F v = Jᵀ F' J v (module docstring); J v, Jᵀ w run through the inner steps'
        Hessians on the chain of :func:`adaptation_chain`. With ``fisher_tasks`` = n < N, F is that of
        the first n tasks (a second, smaller chain).
        """
        theta = self.params
        first_order = self.first_order
        chain, fast_leaves = adaptation_chain(self.policy, theta, train_batches, self.fast_lr, valid.num_tasks,
                                              first_order)
        logp, pi = log_probs(self.policy, fast_leaves, valid)
        old_logp, old_pi = logp.detach(), detach_distribution(pi)
        loss = surrogate_loss(logp, old_logp, valid)
        if 0 < self.fisher_tasks < valid.num_tasks:
            grad_fast = torch.autograd.grad(loss, list(fast_leaves.values()))
            n = self.fisher_tasks
            fisher_valid = valid.first_tasks(n)
            fisher_chain, fisher_leaves = adaptation_chain(self.policy, theta, [b.first_tasks(n) for b in train_batches],
                                                           self.fast_lr, n, first_order)
            _, fisher_pi = log_probs(self.policy, fisher_leaves, fisher_valid)
            kl = mean_kl(detach_distribution(fisher_pi), fisher_pi, fisher_valid.mask)
        else:
            grad_fast = torch.autograd.grad(loss, list(fast_leaves.values()), retain_graph=True)
            fisher_chain, fisher_leaves = chain, fast_leaves
            kl = mean_kl(old_pi, pi, valid.mask)
        g = chain.vjp(flatten(grad_fast))
        kl_hessian = hessian_vector_product(lambda: kl, fisher_leaves)
        damping = self.cg_damping

        def fisher_vector_product(v: Tensor) -> Tensor:
            return fisher_chain.vjp(kl_hessian(fisher_chain.jvp(v))) + damping * v

        return loss.detach(), g, fisher_vector_product, old_logp, old_pi

    def natural_step(self, train_batches: Sequence[TaskBatch], valid: TaskBatch, metrics: dict | None = None):
        """The full TRPO step at the current θ: (Δ, log π_old, π_old), Δ flat.

            s = CG(F + λI, g),    Δ = sqrt(2 δ / sᵀ(F + λI)s) · s

        so that the quadratic model ½ΔᵀFΔ of the KL equals δ = max_kl. Fills ``metrics`` with
        ``surrogate_before`` and ``grad_norm``; raises :class:`StepRejected` if anything is not finite.
        """
        metrics = {} if metrics is None else metrics
        try:
            with torch.enable_grad():
                loss, g, fisher_vector_product, old_logp, old_pi = self.natural_gradient_setup(train_batches, valid)
                metrics["surrogate_before"] = loss.item()
                metrics["grad_norm"] = g.norm().item()
                if not _finite(loss, g):
                    raise StepRejected("surrogate loss or meta-gradient is not finite")
                stepdir, residual = conjugate_gradient(fisher_vector_product, g, iters=self.cg_iters,
                                                       return_residual=True)
                shs = torch.dot(stepdir, g - residual).item()  # = sᵀ(F + λI)s, as CG keeps r = g − (F + λI)s
        except FloatingPointError as exc:
            raise StepRejected(str(exc)) from exc
        if not (_finite(stepdir) and math.isfinite(shs) and shs > 0):
            raise StepRejected(f"natural-gradient step is not finite (sᵀFs = {shs})")
        return stepdir * math.sqrt(2.0 * self.max_kl / shs), old_logp, old_pi

    def step(self, train_batches: Sequence[TaskBatch], valid: TaskBatch) -> dict:
        """One meta-update from the training (per inner step) and validation task batches; returns metrics."""
        metrics = {"surrogate_before": float("nan"), "surrogate_after": float("nan"), "kl": float("nan"),
                   "line_search_steps": 0, "step_accepted": False}
        theta = self.params
        if self.meta_optimizer == "adam":
            try:
                with torch.enable_grad():
                    return self._adam_step(train_batches, valid, metrics)
            except FloatingPointError as exc:
                return self._reject(metrics, str(exc))
        try:
            flat_step, old_logp, old_pi = self.natural_step(train_batches, valid, metrics)
        except StepRejected as exc:
            return self._reject(metrics, str(exc))
        full_step = unflatten(flat_step, theta)

        def evaluate(fraction: float) -> tuple[float, float]:
            candidate = {n: p.detach() - fraction * full_step[n] for n, p in theta.items()}
            return self.evaluate_candidate(candidate, train_batches, valid, old_logp, old_pi)

        fraction, tried, loss_after, kl_after = backtracking_line_search(
            evaluate, self.max_kl, metrics["surrogate_before"], self.ls_max_steps, self.ls_backtrack_ratio)
        metrics["line_search_steps"] = tried
        if fraction is None:
            return self._reject(metrics, f"line search found no step with lower surrogate and KL <= {self.max_kl}",
                                level=logging.INFO)
        with torch.no_grad():
            for n, p in theta.items():
                p.sub_(fraction * full_step[n])
        metrics.update(surrogate_after=loss_after, kl=kl_after, step_accepted=True, step_fraction=fraction)
        return metrics

    def _adam_step(self, train_batches, valid, metrics) -> dict:
        leaves = list(self.params.values())
        logp, pi = self.objective(self.params, train_batches, valid, first_order=self.first_order)
        old_logp, old_pi = logp.detach(), detach_distribution(pi)
        loss = surrogate_loss(logp, old_logp, valid)
        metrics["surrogate_before"] = loss.item()
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(leaves, grads)]
        metrics["grad_norm"] = flatten(grads).norm().item()
        if not _finite(loss, *grads):
            return self._reject(metrics, "surrogate loss or meta-gradient is not finite")
        backup = {n: p.detach().clone() for n, p in self.params.items()}
        self.optimizer.zero_grad(set_to_none=True)
        for p, g in zip(leaves, grads):
            p.grad = g.detach()
        self.optimizer.step()
        if not _finite(*leaves):
            with torch.no_grad():
                for n, p in self.params.items():
                    p.copy_(backup[n])
            return self._reject(metrics, "Adam produced non-finite parameters")
        loss_after, kl_after = self.evaluate_candidate(self.params, train_batches, valid, old_logp, old_pi)
        metrics.update(surrogate_after=loss_after, kl=kl_after, step_accepted=True, step_fraction=1.0)
        return metrics

    @staticmethod
    def _reject(metrics: dict, reason: str, level: int = logging.WARNING) -> dict:
        log.log(level, "meta-update rejected, parameters unchanged: %s", reason)
        metrics["step_accepted"] = False
        metrics["reject_reason"] = reason
        return metrics
