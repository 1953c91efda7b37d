"""MAML-TRPO's meta-step (Finn, Abbeel & Levine, 2017, §5.3): a trust-region natural-gradient step on the
meta-objective S(θ) of :mod:`rlmaml.rl.objectives`, with the Fisher taken *through* the adaptation.

With g = ∇_θ S and F = ∇²_θ KL (the Fisher of the meta-policy, second-order unless first_order):

    s    = CG(F + λI, g)                     (cg_iters iterations, λ = cg_damping)
    Δ    = sqrt(2 δ / sᵀ F s) · s            (δ = max_kl)
    θ   ← θ − ρ^j Δ   for the first j = 0, 1, … with S(θ − ρ^j Δ) < S(θ) and KL ≤ δ   (ρ = ls_backtrack_ratio)

otherwise θ is unchanged. Any non-finite quantity rejects the step (θ unchanged, a warning is logged).

F and g are computed in factored form, with no third-order graph. Write J = ∂θ'/∂θ = Π_j (I − α H_j)
(H_j = ∇²L_j(θ_j), the Hessian of step j's inner loss at θ_j; J = I when first_order). By the chain rule
g = Jᵀ ∇_θ' S, and

    F = Jᵀ F' J + Σ (∂KL/∂θ') ∇²θ'    with F' = ∇²_θ' KL,

where ∂KL/∂θ' = 0 at the current θ (KL(π_old ‖ π) is minimal at π = π_old), so F v = Jᵀ F' J v exactly:
J v and Jᵀ w are chains of inner Hessian-vector products and F' u one Hessian-vector product of the KL at θ'.
Each Fisher-vector product costs 2k + 1 second-order products instead of one third-order one
(``rlmaml bench meta-step`` times both).

With ``fisher_tasks`` = n < N, F (in CG and in sᵀFs) is the Hessian of the KL of the first n tasks only (tasks
are i.i.d., so it is an unbiased estimate of F), the TRPO habit of a subsampled Fisher that cuts the cost of
every product by about N/n; g, S and the line search's KL ≤ δ test still use all N tasks.

``num_inner_steps=0`` gives plain TRPO on the mixture of tasks (the "pretrained" and "oracle" comparison
policies of the paper).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ...core.optim import backtracking_line_search, conjugate_gradient, hessian_vector_product
from ...core.params import Params, flatten, unflatten
from ..objectives import (
    InnerLoss,
    MetaObjective,
    TaskBatch,
    detach_distribution,
    log_probs,
    mean_kl,
    reinforce_loss,
    surrogate_loss,
)
from ..policies import Policy
from .base import all_finite, empty_metrics, leaf_copy, load_params_, params_state, rejected


class StepRejected(Exception):
    """A meta-update that cannot be taken (non-finite loss, gradient or step); θ stays unchanged."""


class TRPO:
    """Owns θ and performs MAML-TRPO meta-updates from sampled task batches (``meta_optimizer=trpo``)."""

    def __init__(self, policy: Policy, params: Mapping[str, Tensor], *, fast_lr: float = 0.1,
                 first_order: bool = False, max_kl: float = 0.01, cg_iters: int = 10, cg_damping: float = 1e-5,
                 ls_max_steps: int = 15, ls_backtrack_ratio: float = 0.8, fisher_tasks: int = 0,
                 inner_loss: InnerLoss = reinforce_loss):
        if fisher_tasks < 0:
            raise ValueError(f"fisher_tasks must be >= 0 (0 = every task), got {fisher_tasks}")
        self.policy = policy
        self.params: Params = leaf_copy(params)
        self.objective = MetaObjective(policy, fast_lr, first_order, inner_loss)
        self.max_kl, self.cg_iters, self.cg_damping = max_kl, cg_iters, cg_damping
        self.ls_max_steps, self.ls_backtrack_ratio = ls_max_steps, ls_backtrack_ratio
        self.fisher_tasks = int(fisher_tasks)

    @classmethod
    def from_config(cls, policy: Policy, params: Mapping[str, Tensor], cfg) -> TRPO:
        from ...plugins import lookup
        from ..objectives import INNER_LOSSES

        return cls(policy, params, fast_lr=cfg.fast_lr, first_order=cfg.first_order, max_kl=cfg.max_kl,
                   cg_iters=cfg.cg_iters, cg_damping=cfg.cg_damping, ls_max_steps=cfg.ls_max_steps,
                   ls_backtrack_ratio=cfg.ls_backtrack_ratio, fisher_tasks=cfg.fisher_tasks,
                   inner_loss=lookup(INNER_LOSSES, cfg.inner_loss, "inner_loss"))

    # -- state for checkpoints
    def state_dict(self) -> dict:
        return {"params": params_state(self.params)}

    def load_state_dict(self, state: Mapping) -> None:
        load_params_(self.params, state["params"])

    # -- the natural-gradient step
    def natural_gradient_setup(self, train_batches: Sequence[TaskBatch], valid: TaskBatch):
        """At the current θ: (S(θ), g = ∇_θ S, v ↦ (F + λI) v, log π_old, π_old), in factored form.

        g = Jᵀ ∇_θ' S and F v = Jᵀ F' J v (module docstring); J v, Jᵀ w run through the inner steps'
        Hessians on the chain of :func:`rlmaml.rl.objectives.adaptation_chain`. With ``fisher_tasks`` = n < N,
        F is that of the first n tasks (a second, smaller chain).
        """
        theta = self.params
        chain, fast_leaves = self.objective.chain(theta, train_batches, valid.num_tasks)
        logp, pi = log_probs(self.policy, fast_leaves, valid)
        old_logp, old_pi = logp.detach(), detach_distribution(pi)
        loss = surrogate_loss(logp, old_logp, valid)
        if 0 < self.fisher_tasks < valid.num_tasks:
            grad_fast = torch.autograd.grad(loss, list(fast_leaves.values()))
            n = self.fisher_tasks
            fisher_valid = valid.first_tasks(n)
            fisher_chain, fisher_leaves = self.objective.chain(theta, [b.first_tasks(n) for b in train_batches], n)
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
                if not all_finite(loss, g):
                    raise StepRejected("surrogate loss or meta-gradient is not finite")
                stepdir, residual = conjugate_gradient(fisher_vector_product, g, iters=self.cg_iters,
                                                       return_residual=True)
                shs = torch.dot(stepdir, g - residual).item()  # = sᵀ(F + λI)s, as CG keeps r = g − (F + λI)s
        except FloatingPointError as exc:
            raise StepRejected(str(exc)) from exc
        if not (all_finite(stepdir) and math.isfinite(shs) and shs > 0):
            raise StepRejected(f"natural-gradient step is not finite (sᵀFs = {shs})")
        return stepdir * math.sqrt(2.0 * self.max_kl / shs), old_logp, old_pi

    def evaluate_candidate(self, params: Mapping[str, Tensor], train_batches, valid, old_logp, old_pi):
        """(S, KL) at candidate θ (:meth:`rlmaml.rl.objectives.MetaObjective.surrogate_and_kl`)."""
        return self.objective.surrogate_and_kl(params, train_batches, valid, old_logp, old_pi)

    def step(self, train_batches: Sequence[TaskBatch], valid: TaskBatch) -> dict:
        """One meta-update: the natural step, then the backtracking line search; returns the metrics."""
        metrics = empty_metrics()
        theta = self.params
        try:
            flat_step, old_logp, old_pi = self.natural_step(train_batches, valid, metrics)
        except StepRejected as exc:
            return rejected(metrics, str(exc))
        full_step = unflatten(flat_step, theta)

        def evaluate(fraction: float) -> tuple[float, float]:
            candidate = {n: p.detach() - fraction * full_step[n] for n, p in theta.items()}
            return self.evaluate_candidate(candidate, train_batches, valid, old_logp, old_pi)

        fraction, tried, loss_after, kl_after = backtracking_line_search(
            evaluate, self.max_kl, metrics["surrogate_before"], self.ls_max_steps, self.ls_backtrack_ratio)
        metrics["line_search_steps"] = tried
        if fraction is None:
            return rejected(metrics, f"line search found no step with lower surrogate and KL <= {self.max_kl}",
                            level=logging.INFO)
        with torch.no_grad():
            for n, p in theta.items():
                p.sub_(fraction * full_step[n])
        metrics.update(surrogate_after=loss_after, kl=kl_after, step_accepted=True, step_fraction=fraction)
        return metrics
