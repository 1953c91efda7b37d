"""An Adam meta-step (``meta_optimizer=adam``), the first-order-optimizer comparison to TRPO:

    g = ∇_θ S(θ)           (through the adaptation, second order unless first_order)
    θ ← Adam(θ, g; meta_lr)

one step per meta-batch on the surrogate S of :mod:`rlmaml.rl.objectives` (at the current θ, S has the
policy-gradient's value and gradient). A non-finite loss, gradient or result leaves θ unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from ...core.params import Params, flatten
from ..objectives import (
    InnerLoss,
    MetaObjective,
    TaskBatch,
    detach_distribution,
    reinforce_loss,
    surrogate_loss,
)
from ..policies import Policy
from .base import all_finite, empty_metrics, leaf_copy, load_params_, params_state, rejected


class Adam:
    """Owns θ and performs one Adam step on ∇_θ S per meta-batch."""

    def __init__(self, policy: Policy, params: Mapping[str, Tensor], *, fast_lr: float = 0.1,
                 first_order: bool = False, meta_lr: float = 1e-3, inner_loss: InnerLoss = reinforce_loss):
        self.policy = policy
        self.params: Params = leaf_copy(params)
        self.objective = MetaObjective(policy, fast_lr, first_order, inner_loss)
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=meta_lr)

    @classmethod
    def from_config(cls, policy: Policy, params: Mapping[str, Tensor], cfg) -> Adam:
        from ...plugins import lookup
        from ..objectives import INNER_LOSSES

        return cls(policy, params, fast_lr=cfg.fast_lr, first_order=cfg.first_order, meta_lr=cfg.meta_lr,
                   inner_loss=lookup(INNER_LOSSES, cfg.inner_loss, "inner_loss"))

    def state_dict(self) -> dict:
        return {"params": params_state(self.params),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Mapping) -> None:
        load_params_(self.params, state["params"])
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])

    def update(self, batch) -> dict:
        """One meta-update from a sampled meta-batch held in this process."""
        return self.step(batch.train_batches, batch.valid)

    def step(self, train_batches: Sequence[TaskBatch], valid: TaskBatch) -> dict:
        metrics = empty_metrics()
        try:
            with torch.enable_grad():
                return self._step(train_batches, valid, metrics)
        except FloatingPointError as exc:
            return rejected(metrics, str(exc))

    def _step(self, train_batches, valid, metrics) -> dict:
        leaves = list(self.params.values())
        logp, pi = self.objective.adapted_log_probs(self.params, train_batches, valid)
        old_logp, old_pi = logp.detach(), detach_distribution(pi)
        loss = surrogate_loss(logp, old_logp, valid)
        metrics["surrogate_before"] = loss.item()
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(leaves, grads)]
        metrics["grad_norm"] = flatten(grads).norm().item()
        if not all_finite(loss, *grads):
            return rejected(metrics, "surrogate loss or meta-gradient is not finite")
        backup = {n: p.detach().clone() for n, p in self.params.items()}
        self.optimizer.zero_grad(set_to_none=True)
        for p, g in zip(leaves, grads):
            p.grad = g.detach()
        self.optimizer.step()
        if not all_finite(*leaves):
            load_params_(self.params, backup)
            return rejected(metrics, "Adam produced non-finite parameters")
        loss_after, kl_after = self.objective.surrogate_and_kl(self.params, train_batches, valid, old_logp, old_pi)
        metrics.update(surrogate_after=loss_after, kl=kl_after, step_accepted=True, step_fraction=1.0)
        return metrics
