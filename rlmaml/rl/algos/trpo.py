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

**Task-parallel.** S, g and F v are sums over tasks, and the line search's (S, KL) too. A meta-batch split into
shards (contiguous task ranges) gives each shard's share, :class:`ShardTerms`: S_s = −(1/N) Σ_{t∈s} mean[…],
g_s = J_sᵀ ∇S_s, (F v)_s, over the shard's tasks alone; the step sums them in shard order
(:class:`LocalTerms` in this process, or the workers of :mod:`rlmaml.distributed`), and only θ-sized vectors
travel. One shard is the whole meta-batch.

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
    summed_flat,
    surrogate_loss,
    whole_tasks,
)
from ..parts import ordered_sum, run_alone, run_programs
from ..policies import Policy
from .base import all_finite, empty_metrics, leaf_copy, load_params_, params_state, rejected


class StepRejected(Exception):
    """A meta-update that cannot be taken (non-finite loss, gradient or step); θ stays unchanged."""


def fisher_parts(shard, fisher_tasks: int, num_tasks: int) -> int:
    """The shard's rows that belong to the first n = ``fisher_tasks`` tasks (all when n is 0 or ≥ N): its first
    rows, as :func:`rlmaml.rl.parts.assign_parts` lays the Fisher tasks' parts first."""
    if not 0 < fisher_tasks < num_tasks:
        return shard.num_tasks
    return sum(1 for t, _ in shard.parts if t < fisher_tasks)


class ShardTerms:
    """A shard's share of the TRPO meta-step: its rows of the N tasks of a meta-batch (whole tasks, or parts of
    tasks, :mod:`rlmaml.rl.parts`).

        S_s = −(1/N) Σ_{t∈s} mean[π_θ'_t/π_old · A],   g_s = J_sᵀ ∇_θ' S_s,   (F v)_s = J_sᵀ F'_s J_s v,

    F'_s the Hessian of KL_s = (1/n) Σ_{t < m_s} mean KL(π_old ‖ π_θ'_t) over the shard's first m_s =
    ``fisher_count`` rows (:func:`fisher_parts`; n = ``fisher_tasks``, 0: every task, n = N). :meth:`setup`
    computes S_s and g_s at θ and keeps what the products and the line search need (π_old, the chains of inner
    Hessians); :meth:`surrogate_and_kl` gives (S_s, KL_s) at a candidate θ. Each has a ``*_program`` form, a
    shard program whose per-task sums run over every shard holding parts of its tasks; the plain methods run
    it alone (rows that are whole tasks).
    """

    def __init__(self, objective: MetaObjective, train_batches: Sequence[TaskBatch], valid: TaskBatch, *,
                 num_tasks: int | None = None, fisher_tasks: int = 0, fisher_count: int | None = None,
                 parts: Sequence[tuple[int, int]] | None = None):
        self.objective, self.train_batches, self.valid = objective, list(train_batches), valid
        self.num_tasks = num_tasks or valid.num_tasks
        self.parts = whole_tasks(valid.num_tasks) if parts is None else list(parts)
        self.subsampled = 0 < fisher_tasks < self.num_tasks
        self.fisher_norm = fisher_tasks if self.subsampled else self.num_tasks
        if not self.subsampled:
            self.fisher_count = valid.num_tasks
        else:
            self.fisher_count = min(fisher_tasks, valid.num_tasks) if fisher_count is None else fisher_count
        self.old_logp = self.old_pi = self._fisher = None

    def setup(self, theta: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        return run_alone(self.setup_program(theta))

    def fisher_vector_product(self, v: Tensor) -> Tensor:
        return run_alone(self.fisher_vector_product_program(v))

    def surrogate_and_kl(self, theta: Mapping[str, Tensor]) -> tuple[float, float]:
        return run_alone(self.surrogate_and_kl_program(theta))

    def setup_program(self, theta: Mapping[str, Tensor]):
        """(S_s, g_s) at θ, in factored form (module docstring); with ``fisher_tasks`` = n < N the Fisher is that
        of the shard's tasks among the first n (a second, smaller chain)."""
        policy, valid, parts = self.objective.policy, self.valid, self.parts
        chain, fast_leaves = yield from self.objective.chain(theta, self.train_batches, valid.num_tasks, parts)
        logp, pi = log_probs(policy, fast_leaves, valid)
        self.old_logp, self.old_pi = logp.detach(), detach_distribution(pi)
        loss = surrogate_loss(logp, self.old_logp, valid, self.num_tasks)
        m = self.fisher_count
        if self.subsampled:
            grad_fast = torch.autograd.grad(loss, list(fast_leaves.values()))
            if m == 0:  # no Fisher rows here
                fisher_chain = chain
            else:  # the first m rows' chain again, for its own graph; its inner gradients' sums are the chain's
                fisher_chain, fisher_leaves = yield from self.objective.chain(
                    theta, [b.first_tasks(m) for b in self.train_batches], m, parts[:m],
                    gradients=[[g[:m] for g in step] for step in chain.gradients])
                fisher_valid = valid.first_tasks(m)
                _, fisher_pi = log_probs(policy, fisher_leaves, fisher_valid)
                kl = mean_kl(detach_distribution(fisher_pi), fisher_pi, fisher_valid.mask, self.fisher_norm,
                             fisher_valid.counts)
        else:
            grad_fast = torch.autograd.grad(loss, list(fast_leaves.values()), retain_graph=True)
            fisher_chain, fisher_leaves = chain, fast_leaves
            kl = mean_kl(self.old_pi, pi, valid.mask, self.fisher_norm, valid.counts)
        u = yield from summed_flat(parts, flatten(grad_fast), fast_leaves)
        g = yield from chain.vjp_program(u)
        self._fisher = None if m == 0 else (fisher_chain, hessian_vector_product(lambda: kl, fisher_leaves),
                                            fisher_leaves)
        self._fisher_chain = fisher_chain
        return loss.detach(), g

    def fisher_vector_product_program(self, v: Tensor):
        """(F v)_s = J_sᵀ F'_s J_s v (zero for a shard without Fisher tasks)."""
        if self._fisher is None:  # no Fisher rows here: the other shards' sums still need this one's turns
            chain = self._fisher_chain
            for _ in range(max(2 * len(chain.hessians), 1)):  # J v's k sums, F' u's, Jᵀ z's k − 1
                yield {}
            return torch.zeros_like(v)
        chain, kl_hessian, leaves = self._fisher
        u = yield from chain.jvp_program(v)
        z = yield from summed_flat(chain.parts, kl_hessian(u), leaves)
        return (yield from chain.vjp_program(z))

    def surrogate_and_kl_program(self, theta: Mapping[str, Tensor]):
        """(S_s, KL_s over every task of the shard) at candidate θ, the adaptation re-run on the same episodes."""
        return (yield from self.objective.surrogate_and_kl_program(theta, self.train_batches, self.valid,
                                                                   self.old_logp, self.old_pi, self.num_tasks,
                                                                   self.parts))


class SummedTerms:
    """Terms that are sums of the shards' shares, in shard order (whoever answers first); subclasses say how to
    ask the shards: :meth:`shares` gives the list of every shard's answer to ``method(*args)`` (the shard
    programs of :class:`ShardTerms`, run side by side)."""

    def shares(self, method: str, *args) -> list:
        raise NotImplementedError

    def setup(self, theta) -> tuple[Tensor, Tensor]:
        device = next(iter(theta.values())).device
        parts = self.shares("setup", theta)
        return ordered_sum(p[0] for p in parts).to(device), ordered_sum(p[1] for p in parts).to(device)

    def fisher_vector_product(self, v: Tensor) -> Tensor:
        return ordered_sum(self.shares("fisher_vector_product", v)).to(v.device)

    def surrogate_and_kl(self, theta) -> tuple[float, float]:
        parts = self.shares("surrogate_and_kl", theta)
        return ordered_sum(p[0] for p in parts), ordered_sum(p[1] for p in parts)


class LocalTerms(SummedTerms):
    """The shards of a meta-batch in this process (:class:`ShardTerms`), their programs run side by side."""

    def __init__(self, shards: Sequence[ShardTerms]):
        self.shards = list(shards)

    def shares(self, method: str, *args) -> list:
        return run_programs([getattr(shard, f"{method}_program")(*args) for shard in self.shards])


class TRPO:
    """Owns θ and performs MAML-TRPO meta-updates from sampled task batches (``meta_optimizer=trpo``)."""

    terms_class = ShardTerms

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

    # -- the terms of a meta-batch
    def shard_terms(self, train_batches: Sequence[TaskBatch], valid: TaskBatch, num_tasks: int | None = None,
                    fisher_count: int | None = None, parts: Sequence[tuple[int, int]] | None = None) -> ShardTerms:
        """The terms of one shard of a meta-batch of ``num_tasks`` (default: the whole meta-batch) whose first
        ``fisher_count`` rows enter the subsampled Fisher (:func:`fisher_parts`); its rows are ``parts`` of tasks
        (default whole tasks)."""
        return self.terms_class(self.objective, train_batches, valid, num_tasks=num_tasks,
                                fisher_tasks=self.fisher_tasks, fisher_count=fisher_count, parts=parts)

    def terms(self, train_batches: Sequence[TaskBatch], valid: TaskBatch) -> LocalTerms:
        """The terms of a meta-batch held here as one shard."""
        return LocalTerms([self.shard_terms(train_batches, valid)])

    def natural_gradient_setup(self, train_batches: Sequence[TaskBatch], valid: TaskBatch):
        """At the current θ: (S(θ), g = ∇_θ S, v ↦ (F + λI) v, log π_old, π_old) of one local shard."""
        shard = self.shard_terms(train_batches, valid)
        loss, g = shard.setup(self.params)
        damping = self.cg_damping
        return loss, g, lambda v: shard.fisher_vector_product(v) + damping * v, shard.old_logp, shard.old_pi

    # -- the natural-gradient step
    def natural_step(self, terms, metrics: dict | None = None) -> Tensor:
        """The full TRPO step Δ (flat) at the current θ from a meta-batch's ``terms``:

            s = CG(F + λI, g),    Δ = sqrt(2 δ / sᵀ(F + λI)s) · s

        so that the quadratic model ½ΔᵀFΔ of the KL equals δ = max_kl. Fills ``metrics`` with
        ``surrogate_before`` and ``grad_norm``; raises :class:`StepRejected` if anything is not finite.
        """
        metrics = {} if metrics is None else metrics
        damping = self.cg_damping
        try:
            with torch.enable_grad():
                loss, g = terms.setup(self.params)
                metrics["surrogate_before"] = float(loss)
                metrics["grad_norm"] = g.norm().item()
                if not all_finite(loss, g):
                    raise StepRejected("surrogate loss or meta-gradient is not finite")
                stepdir, residual = conjugate_gradient(lambda v: terms.fisher_vector_product(v) + damping * v, g,
                                                       iters=self.cg_iters, return_residual=True)
                shs = torch.dot(stepdir, g - residual).item()  # = sᵀ(F + λI)s, as CG keeps r = g − (F + λI)s
        except FloatingPointError as exc:
            raise StepRejected(str(exc)) from exc
        if not (all_finite(stepdir) and math.isfinite(shs) and shs > 0):
            raise StepRejected(f"natural-gradient step is not finite (sᵀFs = {shs})")
        return stepdir * math.sqrt(2.0 * self.max_kl / shs)

    def step(self, train_batches: Sequence[TaskBatch], valid: TaskBatch) -> dict:
        """One meta-update from task batches held here (:meth:`step_terms` of one shard)."""
        return self.step_terms(self.terms(train_batches, valid))

    def update(self, batch) -> dict:
        """One meta-update from a sampled meta-batch, with the terms its shards give (here or on workers)."""
        return self.step_terms(batch.trpo_terms(self))

    def step_terms(self, terms) -> dict:
        """One meta-update: the natural step, then the backtracking line search; returns the metrics."""
        metrics = empty_metrics()
        theta = self.params
        try:
            flat_step = self.natural_step(terms, metrics)
        except StepRejected as exc:
            return rejected(metrics, str(exc))
        full_step = unflatten(flat_step, theta)

        def evaluate(fraction: float) -> tuple[float, float]:
            return terms.surrogate_and_kl({n: p.detach() - fraction * full_step[n] for n, p in theta.items()})

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
