"""The MAML inner loop, shared by the RL and supervised modes.

One inner step on a task with loss L (support / training data):

    θ' = θ − α ⊙ ∇_θ L(θ)

``adapt`` applies k such steps. With ``first_order=False`` the gradient is taken
with ``create_graph=True`` so that an outer loss L_q(θ'(θ)) differentiates
*through* the inner steps (second-order MAML):

    ∇_θ L_q(θ') = (I − α ∇²L(θ)) ∇L_q(θ')          (k = 1)

With ``first_order=True`` the inner gradients are constants (FOMAML), so
∇_θ L_q(θ') = ∇L_q(θ'). The step size α may be a float, one value per step, or a
dict of per-parameter tensors (Meta-SGD, learnable when they require grad).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from .params import Params

StepSize = float | Tensor | Mapping[str, Tensor]
LossFn = Callable[[Params], Tensor]


def inner_update(loss_fn: LossFn, params: Mapping[str, Tensor], step_size: StepSize,
                 first_order: bool = False) -> Params:
    """One gradient step θ' = θ − α ⊙ ∇_θ L(θ).

    ``first_order`` decides ``create_graph``: False keeps the graph of ∇L for
    second-order meta-gradients; True treats ∇L as a constant (FOMAML).
    """
    names = list(params)
    leaves = [params[n] for n in names]
    loss = loss_fn(dict(params))
    if not torch.isfinite(loss).all():
        raise FloatingPointError(f"inner loss is not finite ({loss.item()}); lower the step size")
    grads = torch.autograd.grad(loss, leaves, create_graph=not first_order, allow_unused=True)
    fast_params = {}
    for name, p, g in zip(names, leaves, grads):
        if g is None:
            fast_params[name] = p
            continue
        alpha = step_size[name] if isinstance(step_size, Mapping) else step_size
        fast_params[name] = p - alpha * g
    return fast_params


def adapt(loss_fn: LossFn, params: Mapping[str, Tensor], num_steps: int = 1,
          step_size: StepSize | Sequence[StepSize] = 0.1, first_order: bool = False) -> Params:
    """k inner steps: θ₀ = θ, θ_{j+1} = θ_j − α_j ⊙ ∇L(θ_j); returns θ_k (``fast_params``).

    ``step_size`` is a float, a per-parameter dict (Meta-SGD) or a sequence with
    one of those per step. Parameters that do not require grad are made leaves
    that do, so evaluation code can adapt detached weights.
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    fast_params = {n: (p if p.requires_grad else p.detach().requires_grad_()) for n, p in params.items()}
    per_step = isinstance(step_size, Sequence) and not isinstance(step_size, (str, Tensor))
    if per_step and len(step_size) < num_steps:
        raise ValueError(f"{len(step_size)} step sizes given for {num_steps} inner steps")
    for j in range(num_steps):
        alpha = step_size[j] if per_step else step_size
        fast_params = inner_update(loss_fn, fast_params, alpha, first_order=first_order)
    return fast_params


def reptile_gradient(params: Mapping[str, Tensor], fast_params: Sequence[Mapping[str, Tensor]]) -> Params:
    """Reptile's meta-gradient: g = θ − mean_i θ'_i (so θ ← θ − ε g moves θ toward the adapted weights)."""
    return {
        n: p.detach() - torch.stack([fp[n].detach() for fp in fast_params]).mean(0)
        for n, p in params.items()
    }


def meta_sgd_step_sizes(params: Mapping[str, Tensor], init: float) -> Params:
    """Learnable per-parameter step sizes α (Meta-SGD), initialised to ``init``, shaped like θ."""
    return {n: torch.full_like(p.detach(), float(init)).requires_grad_() for n, p in params.items()}
