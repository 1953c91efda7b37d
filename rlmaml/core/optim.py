"""Second-order tools for TRPO-style meta-updates: Hessian-vector products,
conjugate gradient and a backtracking line search."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from .params import flatten


def hessian_vector_product(fn: Callable[[], Tensor], params: Mapping[str, Tensor],
                           damping: float = 0.0) -> Callable[[Tensor], Tensor]:
    """Return v ↦ (∇²f(θ) + damping·I) v for scalar f = fn() over the leaves of ``params``.

    The first gradient ∇f is built once with ``create_graph=True``; every product
    is then ∇(∇f · v), one backward pass.
    """
    leaves = list(params.values())
    grads = torch.autograd.grad(fn(), leaves, create_graph=True, allow_unused=True)
    return gradient_jacobian_product(grads, params, damping)


def gradient_jacobian_product(grads: Sequence[Tensor | None], params: Mapping[str, Tensor],
                              damping: float = 0.0) -> Callable[[Tensor], Tensor]:
    """v ↦ (∇g + damping·I) v for a gradient g = ∇f(θ) already built with ``create_graph=True``
    (the Hessian-vector product of f when the caller also needs g itself). v is flat over ``params``."""
    leaves = list(params.values())
    flat_grad = flatten([torch.zeros_like(p) if g is None else g for p, g in zip(leaves, grads)])

    def product(vector: Tensor) -> Tensor:
        grad_v = torch.dot(flat_grad, vector.detach())
        hv = torch.autograd.grad(grad_v, leaves, retain_graph=True, allow_unused=True)
        hv = flatten([torch.zeros_like(p) if h is None else h for p, h in zip(leaves, hv)])
        return hv + damping * vector

    return product


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, iters: int = 10,
                       residual_tol: float = 1e-10, return_residual: bool = False):
    """Approximately solve A x = b for symmetric positive-definite A given only x ↦ A x.

    Standard CG: r₀ = p₀ = b, x₀ = 0;  α = rᵀr / pᵀAp;  x += αp;  r −= αAp;
    β = r'ᵀr' / rᵀr;  p = r' + βp.

    The recursion keeps r = b − A x, so ``return_residual=True`` returns (x, r) and
    xᵀA x = xᵀ(b − r) costs no further product (TRPO's step scale).
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = torch.dot(r, r)
    for _ in range(iters):
        if rr <= residual_tol:
            break
        Ap = matvec(p)
        alpha = rr / torch.dot(p, Ap)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = torch.dot(r, r)
        p = r + (rr_new / rr) * p
        rr = rr_new
    if return_residual:
        return x.detach(), r.detach()
    return x.detach()


def backtracking_line_search(evaluate: Callable[[float], tuple[float, float]], max_kl: float,
                             loss_before: float, max_steps: int = 15,
                             backtrack_ratio: float = 0.8) -> tuple[float | None, int, float, float]:
    """Try step fractions 1, ρ, ρ², … of a full step; accept the first with
    improved loss (L < L_before) and KL ≤ max_kl, where ``evaluate(frac) -> (loss, kl)``.

    Non-finite loss or KL rejects that fraction. Returns (accepted fraction or None,
    number of steps tried, loss, kl) — None means θ must stay unchanged.
    """
    loss, kl = float("nan"), float("nan")
    for step in range(max_steps):
        fraction = backtrack_ratio ** step
        loss, kl = evaluate(fraction)
        finite = torch.isfinite(torch.tensor([loss, kl])).all().item()
        if finite and loss < loss_before and kl <= max_kl:
            return fraction, step + 1, loss, kl
    return None, max_steps, loss, kl
