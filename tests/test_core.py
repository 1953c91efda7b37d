"""The functional MAML core against independent computations: central finite differences in
float64, closed forms for linear least squares, explicit Hessians and linear solves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from rlmaml.core import (
    adapt,
    backtracking_line_search,
    conjugate_gradient,
    detach_params,
    flatten,
    forward,
    hessian_vector_product,
    inner_update,
    meta_sgd_step_sizes,
    named_params,
    reptile_gradient,
    unflatten,
)
from rlmaml.supervised.models import Conv4


@pytest.fixture(autouse=True)
def _float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def tanh_mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()


def regression_data(seed=1, n_support=6, n_query=7):
    g = torch.Generator().manual_seed(seed)
    xs, ys = torch.randn(n_support, 3, generator=g), torch.randn(n_support, 2, generator=g)
    xq, yq = torch.randn(n_query, 3, generator=g), torch.randn(n_query, 2, generator=g)
    return xs, ys, xq, yq


def meta_objective(model, xs, ys, xq, yq, steps, alpha, loss=F.mse_loss):
    """θ ↦ L_q(adapt(L_s, θ, k)) evaluated at a flat θ (value only)."""
    like = named_params(model, detach=True)

    def f(theta_flat, first_order=True):
        theta = unflatten(theta_flat, like)
        fast = adapt(lambda p: loss(forward(model, p, xs), ys), theta, steps, alpha, first_order=first_order)
        return loss(forward(model, fast, xq), yq)

    return like, f


def central_differences(f, x, eps=1e-6):
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        e = torch.zeros_like(x)
        e[i] = eps
        with torch.enable_grad():
            grad[i] = (f(x + e).item() - f(x - e).item()) / (2 * eps)
    return grad


def meta_gradient(model, xs, ys, xq, yq, steps, alpha, first_order, loss=F.mse_loss):
    params = named_params(model, detach=True)
    fast = adapt(lambda p: loss(forward(model, p, xs), ys), params, steps, alpha, first_order=first_order)
    return flatten(torch.autograd.grad(loss(forward(model, fast, xq), yq), list(params.values())))


# ---------------------------------------------------------------------------- second-order MAML

@pytest.mark.parametrize("steps", [1, 2])
def test_second_order_meta_gradient_matches_finite_differences(steps):
    model = tanh_mlp()
    data = regression_data()
    alpha = 0.3
    like, f = meta_objective(model, *data, steps, alpha)
    theta = flatten(like).detach()
    numeric = central_differences(f, theta)
    analytic = meta_gradient(model, *data, steps, alpha, first_order=False)
    first_order = meta_gradient(model, *data, steps, alpha, first_order=True)
    torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-8)
    # the second-order term matters here, so a first-order gradient would fail the check above
    assert (first_order - numeric).norm() > 1e-2 * numeric.norm()


def test_second_order_meta_gradient_conv4_batchnorm_finite_differences():
    torch.manual_seed(0)
    model = Conv4(num_classes=3, num_filters=4, image_size=8).double()
    g = torch.Generator().manual_seed(2)
    xs, xq = torch.randn(6, 1, 8, 8, generator=g), torch.randn(6, 1, 8, 8, generator=g)
    ys, yq = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([2, 1, 0, 0, 1, 2])
    like, f = meta_objective(model, xs, ys, xq, yq, 2, 0.4, loss=F.cross_entropy)
    theta = flatten(like).detach()
    analytic = meta_gradient(model, xs, ys, xq, yq, 2, 0.4, first_order=False, loss=F.cross_entropy)
    first_order = meta_gradient(model, xs, ys, xq, yq, 2, 0.4, first_order=True, loss=F.cross_entropy)
    directions = torch.randn(6, theta.numel(), generator=g)
    eps = 1e-6  # along unit directions: small enough not to cross ReLU kinks
    for v in directions / directions.norm(dim=1, keepdim=True):
        numeric = (f(theta + eps * v).item() - f(theta - eps * v).item()) / (2 * eps)
        assert analytic @ v == pytest.approx(numeric, rel=1e-5, abs=1e-9)
    # BatchNorm (batch statistics) is part of the model: its affine parameters are in θ
    assert any("1.weight" in n for n in like)
    assert (analytic - first_order).norm() > 1e-3 * analytic.norm()


def test_first_order_gradient_is_query_gradient_at_adapted_params():
    model = tanh_mlp(3)
    xs, ys, xq, yq = regression_data(4)
    alpha, steps = 0.2, 2
    fo = meta_gradient(model, xs, ys, xq, yq, steps, alpha, first_order=True)
    # independent: plain gradient steps on detached copies, then ∇L_q at θ'
    theta = detach_params(named_params(model))
    for _ in range(steps):
        grads = torch.autograd.grad(F.mse_loss(forward(model, theta, xs), ys), list(theta.values()))
        theta = {n: (p - alpha * g).detach().requires_grad_() for (n, p), g in zip(theta.items(), grads)}
    expected = flatten(torch.autograd.grad(F.mse_loss(forward(model, theta, xq), yq), list(theta.values())))
    torch.testing.assert_close(fo, expected, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------- closed form

@pytest.mark.parametrize("steps", [1, 2])
def test_linear_least_squares_meta_gradient_closed_form(steps):
    rng = np.random.default_rng(0)
    n, m, d, alpha = 8, 5, 4, 0.1
    Xs, ys = rng.normal(size=(n, d)), rng.normal(size=n)
    Xq, yq = rng.normal(size=(m, d)), rng.normal(size=m)
    w0 = rng.normal(size=d)
    # closed form (NumPy): L(w) = ‖Xw − y‖²/n, ∇L = (2/n)Xᵀ(Xw − y), H = (2/n)XᵀX
    H = 2.0 / n * Xs.T @ Xs
    w = w0.copy()
    for _ in range(steps):
        w = w - alpha * (2.0 / n) * Xs.T @ (Xs @ w - ys)
    grad_q = 2.0 / m * Xq.T @ (Xq @ w - yq)
    expected = np.linalg.matrix_power(np.eye(d) - alpha * H, steps) @ grad_q

    t = {k: torch.tensor(v) for k, v in {"Xs": Xs, "ys": ys, "Xq": Xq, "yq": yq}.items()}
    params = {"w": torch.tensor(w0, requires_grad=True)}
    fast = adapt(lambda p: ((t["Xs"] @ p["w"] - t["ys"]) ** 2).mean(), params, steps, alpha)
    (grad,) = torch.autograd.grad(((t["Xq"] @ fast["w"] - t["yq"]) ** 2).mean(), [params["w"]])
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast["w"].detach().numpy(), w, rtol=1e-12)


# ---------------------------------------------------------------------------- Meta-SGD, Reptile

def test_meta_sgd_step_size_gradient_matches_finite_differences():
    model = tanh_mlp(5)
    xs, ys, xq, yq = regression_data(6)
    params = named_params(model, detach=True)
    alphas = meta_sgd_step_sizes(params, 0.1)
    assert all(a.shape == params[n].shape and a.requires_grad for n, a in alphas.items())
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():  # different α per coordinate, so a broadcasting bug shows
        for a in alphas.values():
            a.mul_(0.5 + torch.rand(a.shape, generator=g))

    def f(alpha_flat):
        step = unflatten(alpha_flat, alphas)
        fast = adapt(lambda p: F.mse_loss(forward(model, p, xs), ys), params, 2, step, first_order=True)
        return F.mse_loss(forward(model, fast, xq), yq)

    fast = adapt(lambda p: F.mse_loss(forward(model, p, xs), ys), params, 2, alphas)
    analytic = flatten(torch.autograd.grad(F.mse_loss(forward(model, fast, xq), yq), list(alphas.values())))
    numeric = central_differences(f, flatten(alphas).detach())
    torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-9)
    assert numeric.abs().max() > 1e-3


def test_reptile_gradient_is_theta_minus_mean_adapted():
    params = {"w": torch.tensor([1.0, 2.0], requires_grad=True), "b": torch.tensor([[3.0]])}
    fast = [{"w": torch.tensor([0.0, 0.0]), "b": torch.tensor([[1.0]])},
            {"w": torch.tensor([1.0, 1.0]), "b": torch.tensor([[4.0]])},
            {"w": torch.tensor([2.0, -1.0]), "b": torch.tensor([[1.0]])}]
    g = reptile_gradient(params, fast)
    torch.testing.assert_close(g["w"], torch.tensor([0.0, 2.0]))
    torch.testing.assert_close(g["b"], torch.tensor([[1.0]]))
    assert not g["w"].requires_grad


def test_adapt_per_step_sizes_and_zero_steps():
    params = {"w": torch.tensor([1.0, -2.0], requires_grad=True)}
    loss = lambda p: (p["w"] ** 2).sum()  # ∇ = 2w: w ← (1 − 2α) w
    fast = adapt(loss, params, 2, [0.1, 0.25])
    torch.testing.assert_close(fast["w"].detach(), torch.tensor([1.0, -2.0]) * 0.8 * 0.5)
    assert adapt(loss, params, 0, 0.1)["w"] is params["w"]
    with pytest.raises(ValueError, match="step sizes"):
        adapt(loss, params, 3, [0.1, 0.2])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_adapt_raises_clear_error_on_non_finite_inner_loss(bad):
    params = {"w": torch.tensor([1.0], requires_grad=True)}
    with pytest.raises(FloatingPointError, match="inner loss is not finite"):
        adapt(lambda p: p["w"].sum() * bad, params, 1, 0.1)
    with pytest.raises(FloatingPointError, match="not finite"):
        inner_update(lambda p: p["w"].sum() * bad, params, 0.1)


# ---------------------------------------------------------------------------- TRPO tools

def test_hessian_vector_product_matches_explicit_hessian():
    g = torch.Generator().manual_seed(0)
    params = {"a": torch.randn(3, generator=g, requires_grad=True), "B": torch.randn(2, 2, generator=g, requires_grad=True)}
    X = torch.randn(4, 3, generator=g)

    def f_flat(v):
        p = unflatten(v, params)
        return torch.logsumexp(X @ p["a"], 0) + (torch.sin(p["B"]) ** 2).sum() + (p["a"][:2] @ p["B"] @ p["a"][1:]) ** 2

    damping = 0.1
    hvp = hessian_vector_product(lambda: f_flat(flatten(params)), params, damping=damping)
    H = torch.autograd.functional.hessian(f_flat, flatten(params).detach())
    for _ in range(3):
        v = torch.randn(7, generator=g)
        torch.testing.assert_close(hvp(v), H @ v + damping * v, rtol=1e-10, atol=1e-12)
    assert (H - torch.diag(torch.diag(H))).abs().max() > 1e-3  # not a trivially diagonal Hessian


def test_conjugate_gradient_solves_spd_system():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(6, 6, generator=g)
    A = M.T @ M + 0.5 * torch.eye(6)
    b = torch.randn(6, generator=g)
    expected = torch.linalg.solve(A, b)
    x = conjugate_gradient(lambda v: A @ v, b, iters=6)  # exact in n steps (up to rounding)
    torch.testing.assert_close(x, expected, rtol=1e-8, atol=1e-10)
    rough = conjugate_gradient(lambda v: A @ v, b, iters=2)
    assert (A @ rough - b).norm() < b.norm()
    assert not torch.allclose(rough, expected, atol=1e-6)
    rough, residual = conjugate_gradient(lambda v: A @ v, b, iters=2, return_residual=True)
    torch.testing.assert_close(residual, b - A @ rough)          # the recursion tracks b − A x
    torch.testing.assert_close(rough @ (b - residual), rough @ A @ rough)  # xᵀAx without a product


def test_backtracking_line_search_accepts_and_rejects():
    # loss improves at every fraction; KL = 4·frac² exceeds max_kl = 1.1 until frac² ≤ 0.275
    evaluate = lambda frac: (1.0 - frac, 4.0 * frac ** 2)
    frac, steps, loss, kl = backtracking_line_search(evaluate, max_kl=1.1, loss_before=1.0, max_steps=10,
                                                     backtrack_ratio=0.5)
    assert (frac, steps) == (0.5, 2) and kl == pytest.approx(1.0) and loss == pytest.approx(0.5)
    # every step raises KL above max_kl: rejected, caller keeps θ
    frac, steps, _, _ = backtracking_line_search(lambda f: (0.0, 10.0), max_kl=0.01, loss_before=1.0, max_steps=5)
    assert frac is None and steps == 5
    # loss never improves
    frac, _, _, _ = backtracking_line_search(lambda f: (2.0, 0.0), max_kl=0.01, loss_before=1.0, max_steps=4)
    assert frac is None
    # a non-finite loss at the full step is rejected, the next fraction accepted
    calls = []

    def nan_then_ok(f):
        calls.append(f)
        return (float("nan"), 0.0) if f == 1.0 else (0.0, 0.0)

    frac, steps, _, _ = backtracking_line_search(nan_then_ok, max_kl=0.01, loss_before=1.0, backtrack_ratio=0.8)
    assert frac == pytest.approx(0.8) and steps == 2 and calls == [1.0, 0.8]


def test_line_search_rejection_keeps_parameters():
    """The caller's pattern: θ_new = θ + frac·Δ only when a fraction was accepted."""
    theta = torch.tensor([1.0, 2.0])
    step = torch.tensor([10.0, 10.0])
    kl_of = lambda t: float(((t - theta) ** 2).sum())
    frac, *_ = backtracking_line_search(lambda f: (0.0, kl_of(theta + f * step)), max_kl=1e-6,
                                        loss_before=1.0, max_steps=3)
    new_theta = theta if frac is None else theta + frac * step
    assert frac is None and torch.equal(new_theta, torch.tensor([1.0, 2.0]))


def test_flatten_unflatten_round_trip():
    like = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    v = torch.arange(10.0)
    out = unflatten(v, like)
    assert out["a"].shape == (2, 3) and torch.equal(flatten(out), v)
    with pytest.raises(ValueError, match="elements"):
        unflatten(torch.arange(11.0), like)
