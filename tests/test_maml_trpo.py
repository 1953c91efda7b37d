"""MAML-TRPO math against independent computations (hand formulas, explicit Hessians, finite differences)."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal

from rlmaml.core import flatten, named_params, unflatten
from rlmaml.rl.algos import TRPO, Adam
from rlmaml.rl.objectives import (
    TaskBatch,
    adapt_tasks,
    adaptation_chain,
    detach_distribution,
    log_probs,
    mean_kl,
    reinforce_loss,
    surrogate_loss,
)
from rlmaml.rl.policies import GaussianMLPPolicy, stack_params, task_params


def tiny_problem(seed=0, num_tasks=2, steps=6, obs_dim=2, act_dim=1, dtype=torch.float64):
    torch.manual_seed(seed)
    policy = GaussianMLPPolicy(obs_dim, act_dim, hidden_sizes=(3,), nonlinearity="tanh", init_log_std=-0.3).to(dtype)
    theta = named_params(policy, detach=True)

    def batch():
        mask = torch.ones(num_tasks, steps, dtype=dtype)
        mask[0, -2:] = 0  # task 0 terminated early
        return TaskBatch(torch.randn(num_tasks, steps, obs_dim, dtype=dtype),
                         torch.randn(num_tasks, steps, act_dim, dtype=dtype), mask,
                         torch.randn(num_tasks, steps, dtype=dtype))

    return policy, theta, batch(), batch(), batch()


def test_surrogate_and_kl_match_hand_computation():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    advantages = torch.tensor([[0.5, -1.0, 7.0], [2.0, 3.0, 4.0]])
    batch = TaskBatch(torch.zeros(2, 3, 1), torch.zeros(2, 3, 1), mask, advantages)
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.1, 0.0]])
    old_logp = torch.tensor([[-1.2, -1.5, -3.0], [-0.7, -5.0, 1.0]])
    # task 0: mean(e^{0.2}·0.5, e^{-0.5}·(−1)); task 1: e^{0.2}·2; masked steps ignored
    t0 = (math.exp(0.2) * 0.5 + math.exp(-0.5) * -1.0) / 2
    t1 = math.exp(0.2) * 2.0
    assert surrogate_loss(logp, old_logp, batch).item() == pytest.approx(-(t0 + t1) / 2, rel=1e-6)

    mu0, s0 = torch.tensor([[0.0, 1.0, 5.0], [0.3, 0.0, 0.0]]), torch.tensor(0.8)
    mu1, s1 = torch.tensor([[0.5, 1.0, -5.0], [0.0, 9.0, 9.0]]), torch.tensor(1.1)
    old_pi = Independent(Normal(mu0.unsqueeze(-1), s0.expand(2, 3, 1)), 1)
    pi = Independent(Normal(mu1.unsqueeze(-1), s1.expand(2, 3, 1)), 1)

    def kl(m0, m1):  # KL(N(m0, s0²) ‖ N(m1, s1²))
        return math.log(1.1 / 0.8) + (0.8 ** 2 + (m0 - m1) ** 2) / (2 * 1.1 ** 2) - 0.5

    expected = ((kl(0.0, 0.5) + kl(1.0, 1.0)) / 2 + kl(0.3, 0.0)) / 2
    assert mean_kl(old_pi, pi, mask).item() == pytest.approx(expected, rel=1e-6)


def test_inner_step_is_reinforce_per_task():
    policy, theta, train, _, _ = tiny_problem()
    fast = adapt_tasks(policy, stack_params(theta, 2), [train], fast_lr=0.3, first_order=True)
    for t in range(2):
        p_t = {n: p.detach().clone().requires_grad_() for n, p in theta.items()}
        pi = policy.distribution(p_t, train.observations[t])
        m = train.mask[t]
        loss = -(pi.log_prob(train.actions[t]) * train.advantages[t] * m).sum() / m.sum()
        grads = torch.autograd.grad(loss, list(p_t.values()))
        for (name, p), g in zip(p_t.items(), grads):
            torch.testing.assert_close(fast[name][t], p - 0.3 * g)


def _kl_through_adaptation(learner, train_batches, valid, old_pi):
    def kl_of(flat):
        params = unflatten(flat, learner.params)
        _, pi = learner.objective.adapted_log_probs(params, train_batches, valid)
        return mean_kl(old_pi, pi, valid.mask)
    return kl_of


@pytest.mark.parametrize("first_order,num_inner_steps", [(False, 1), (True, 1), (False, 2)])
def test_fisher_vector_product_equals_explicit_hessian_of_kl_through_adaptation(first_order, num_inner_steps):
    policy, theta, train, valid, train2 = tiny_problem(seed=1)
    train_batches = [train, train2][:num_inner_steps]
    learner = TRPO(policy, theta, fast_lr=0.5, first_order=first_order, cg_damping=0.0)
    with torch.enable_grad():
        _, _, fvp, _, old_pi = learner.natural_gradient_setup(train_batches, valid)
    flat = flatten(learner.params).detach()
    hessian = torch.autograd.functional.hessian(_kl_through_adaptation(learner, train_batches, valid, old_pi),
                                                flat)
    n = flat.numel()
    products = torch.stack([fvp(torch.eye(n, dtype=flat.dtype)[i]) for i in range(n)], dim=1)
    assert hessian.abs().max() > 1e-3  # a real, non-trivial curvature
    torch.testing.assert_close(products, hessian, rtol=1e-7, atol=1e-9)
    # damping adds λ·v
    damped = TRPO(policy, theta, fast_lr=0.5, first_order=first_order, cg_damping=0.25)
    _, _, fvp_damped, _, _ = damped.natural_gradient_setup(train_batches, valid)
    v = torch.randn(n, dtype=flat.dtype)
    torch.testing.assert_close(fvp_damped(v), hessian @ v + 0.25 * v, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("num_inner_steps", [1, 2])
def test_adaptation_chain_products_are_the_jacobian_of_the_adaptation_and_its_transpose(num_inner_steps):
    """J v and Jᵀ w of the chain against the explicit Jacobian of θ ↦ θ'(θ) (autograd through the inner steps)."""
    policy, theta, train, _, train2 = tiny_problem(seed=4)
    train_batches = [train, train2][:num_inner_steps]
    chain, fast = adaptation_chain(policy, theta, train_batches, 0.5, train.num_tasks, first_order=False)
    flat = flatten(theta).detach()

    def adapted(x):
        return flatten(adapt_tasks(policy, stack_params(unflatten(x, theta), train.num_tasks), train_batches, 0.5,
                                   first_order=False))

    jacobian = torch.autograd.functional.jacobian(adapted, flat)  # [T·P, P]
    torch.testing.assert_close(flatten(fast), adapted(flat.clone().requires_grad_()).detach())
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(flat.numel(), dtype=flat.dtype, generator=gen)
    w = torch.randn(jacobian.shape[0], dtype=flat.dtype, generator=gen)
    copies = flatten(stack_params(unflatten(v, theta), train.num_tasks))  # J v if J were I per task
    assert (jacobian @ v - copies).abs().max() > 1e-3  # the inner Hessians matter
    torch.testing.assert_close(chain.jvp(v), jacobian @ v, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(chain.vjp(w), jacobian.T @ w, rtol=1e-9, atol=1e-12)
    first_order_chain, _ = adaptation_chain(policy, theta, train_batches, 0.5, train.num_tasks, first_order=True)
    torch.testing.assert_close(first_order_chain.jvp(v), copies)  # FOMAML: J = I, v copied to every task


def test_fisher_on_a_task_subset_is_the_hessian_of_that_subsets_kl_and_keeps_the_full_gradient():
    policy, theta, train, valid, _ = tiny_problem(seed=3, num_tasks=3)
    full = TRPO(policy, theta, fast_lr=0.5, cg_damping=0.0)
    sub = TRPO(policy, theta, fast_lr=0.5, cg_damping=0.0, fisher_tasks=2)
    loss_full, g_full, fvp_full, _, _ = full.natural_gradient_setup([train], valid)
    loss_sub, g_sub, fvp_sub, _, _ = sub.natural_gradient_setup([train], valid)
    assert loss_sub == loss_full
    torch.testing.assert_close(g_sub, g_full)              # the meta-gradient still uses every task
    train2, valid2 = train.first_tasks(2), valid.first_tasks(2)
    _, pi2 = sub.objective.adapted_log_probs(sub.params, [train2], valid2, first_order=False)
    flat = flatten(sub.params).detach()
    hessian = torch.autograd.functional.hessian(
        _kl_through_adaptation(sub, [train2], valid2, detach_distribution(pi2)), flat)
    v = torch.randn(flat.numel(), dtype=flat.dtype, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(fvp_sub(v), hessian @ v, rtol=1e-7, atol=1e-9)
    assert (fvp_sub(v) - fvp_full(v)).norm() > 1e-3 * fvp_full(v).norm()  # a different (subset) curvature
    with pytest.raises(ValueError, match="fisher_tasks"):
        TRPO(policy, theta, fisher_tasks=-1)


@pytest.mark.parametrize("num_inner_steps", [1, 2])
def test_second_order_meta_gradient_matches_finite_differences(num_inner_steps):
    policy, theta, train, valid, train2 = tiny_problem(seed=2)
    train_batches = [train, train2][:num_inner_steps]
    learner = TRPO(policy, theta, fast_lr=0.5, first_order=False)
    _, g, _, old_logp, _ = learner.natural_gradient_setup(train_batches, valid)
    flat = flatten(learner.params).detach()

    def surrogate(vec):
        with torch.enable_grad():
            params = {n: p.requires_grad_() for n, p in unflatten(vec.clone(), learner.params).items()}
            logp, _ = learner.objective.adapted_log_probs(params, train_batches, valid, first_order=True)
        return surrogate_loss(logp, old_logp, valid).item()

    eps = 1e-6
    fd = torch.tensor([(surrogate(flat + eps * e) - surrogate(flat - eps * e)) / (2 * eps)
                       for e in torch.eye(flat.numel(), dtype=flat.dtype)], dtype=flat.dtype)
    torch.testing.assert_close(g, fd, rtol=1e-5, atol=1e-8)
    # the first-order approximation drops the (I − α∇²L) factor and is measurably different
    fo = TRPO(policy, theta, fast_lr=0.5, first_order=True)
    _, g_fo, _, _, _ = fo.natural_gradient_setup(train_batches, valid)
    assert (g_fo - fd).norm() > 1e-3 * fd.norm()


def test_accepted_step_improves_surrogate_within_trust_region():
    policy, theta, train, valid, _ = tiny_problem(seed=3, steps=20)
    learner = TRPO(policy, theta, fast_lr=0.1, max_kl=1e-3)
    before = {n: p.detach().clone() for n, p in learner.params.items()}
    metrics = learner.step([train], valid)
    assert metrics["step_accepted"]
    assert metrics["surrogate_after"] < metrics["surrogate_before"]
    assert 0 < metrics["kl"] <= 1e-3
    assert any(not torch.equal(before[n], p) for n, p in learner.params.items())
    # the reported KL is the KL between the old and the new adapted policies, recomputed independently
    old_pi = detach_distribution(learner.objective.adapted_log_probs(
        {n: p.clone().requires_grad_() for n, p in before.items()}, [train], valid, first_order=True)[1])
    leaves = {n: p.detach().requires_grad_() for n, p in learner.params.items()}
    fast = adapt_tasks(policy, stack_params(leaves, train.num_tasks), [train], 0.1, True)
    _, new_pi = log_probs(policy, fast, valid)
    assert mean_kl(old_pi, new_pi, valid.mask).item() == pytest.approx(metrics["kl"], rel=1e-6)


def test_full_step_has_the_kl_of_the_fisher_model_for_a_smooth_policy():
    """TRPO scales s so that ½ sᵀFs = max_kl; for a small max_kl and a smooth (tanh) policy the KL measured after
    re-running the adaptation at θ − f·s is f²·max_kl up to a third-order term, so the full step lands on the
    trust-region boundary (accepted or not by the sign of that term) and the line search stops at f ∈ {1, 0.8}."""
    policy, theta, train, valid, _ = tiny_problem(seed=5, steps=20)
    for max_kl, tolerance in ((1e-6, 1e-2), (1e-8, 1e-3)):
        learner = TRPO(policy, theta, fast_lr=0.3, max_kl=max_kl, cg_damping=0.0, cg_iters=50)
        metrics = learner.step([train], valid)
        assert metrics["step_accepted"] and metrics["line_search_steps"] <= 2
        fraction = metrics["step_fraction"]
        assert metrics["kl"] == pytest.approx(fraction ** 2 * max_kl, rel=tolerance)


class _FixedCandidates(TRPO):
    """Line-search candidates with prescribed (surrogate − surrogate_before, KL)."""

    def __init__(self, *args, delta_loss, kl, **kwargs):
        super().__init__(*args, **kwargs)
        self.delta_loss, self.fixed_kl, self.calls = delta_loss, kl, 0

    def terms(self, train_batches, valid):
        terms, learner = super().terms(train_batches, valid), self

        class Fixed:
            def setup(self, theta):
                loss, g = terms.setup(theta)
                learner.surrogate_before = loss.item()
                return loss, g

            fisher_vector_product = staticmethod(terms.fisher_vector_product)

            def surrogate_and_kl(self, theta):
                learner.calls += 1
                terms.surrogate_and_kl(theta)  # exercised, then overridden
                return learner.surrogate_before + learner.delta_loss, learner.fixed_kl

        return Fixed()


@pytest.mark.parametrize("delta_loss,kl", [(-1.0, 0.02), (+1e-3, 0.0), (-1.0, float("nan"))])
def test_line_search_rejection_leaves_theta_unchanged(delta_loss, kl):
    policy, theta, train, valid, _ = tiny_problem(seed=4)
    learner = _FixedCandidates(policy, theta, max_kl=0.01, ls_max_steps=4, delta_loss=delta_loss, kl=kl)
    before = {n: p.detach().clone() for n, p in learner.params.items()}
    metrics = learner.step([train], valid)
    assert not metrics["step_accepted"]
    assert metrics["line_search_steps"] == 4 and learner.calls == 4
    for n, p in learner.params.items():
        assert torch.equal(before[n], p)


@pytest.mark.parametrize("where", ["train", "valid"])
def test_nan_advantages_reject_the_step(where, caplog):
    policy, theta, train, valid, _ = tiny_problem(seed=5)
    bad = train if where == "train" else valid
    bad.advantages[1, 2] = float("nan")
    learner = TRPO(policy, theta)
    before = {n: p.detach().clone() for n, p in learner.params.items()}
    with caplog.at_level("WARNING"):
        metrics = learner.step([train], valid)
    assert not metrics["step_accepted"]
    assert "not finite" in metrics["reject_reason"]
    assert any("rejected" in r.message for r in caplog.records)
    for n, p in learner.params.items():
        assert torch.equal(before[n], p)


def test_pretrained_trpo_without_adaptation_and_adam_option():
    policy, theta, _, valid, _ = tiny_problem(seed=6, steps=20)
    learner = TRPO(policy, theta, max_kl=1e-3)
    metrics = learner.step([], valid)  # k = 0: TRPO on the sampled episodes of θ itself
    assert metrics["step_accepted"] and metrics["surrogate_after"] < metrics["surrogate_before"]
    adam = Adam(policy, theta, meta_lr=1e-2)
    before = flatten(adam.params).detach().clone()
    metrics = adam.step([valid], valid)
    assert metrics["step_accepted"] and torch.isfinite(flatten(adam.params)).all()
    assert not torch.equal(before, flatten(adam.params).detach())
    restored = Adam(policy, theta, meta_lr=1e-2)
    restored.load_state_dict(adam.state_dict())
    torch.testing.assert_close(flatten(restored.params), flatten(adam.params))


def test_reinforce_loss_gradient_sign_increases_likelihood_of_good_actions():
    policy, theta, train, _, _ = tiny_problem(seed=7)
    train.advantages.fill_(1.0)
    fast = adapt_tasks(policy, stack_params(theta, 2), [train], fast_lr=0.05, first_order=True)
    before = reinforce_loss(policy, stack_params(theta, 2), train)
    after = reinforce_loss(policy, fast, train)
    assert (after < before).all()
    assert task_params(fast, 0)["log_std"].shape == (1,)


def test_the_subsampled_fisher_is_spread_over_the_shards():
    from rlmaml.rl.algos.trpo import fisher_parts
    from rlmaml.rl.parts import assign_parts

    def counts(fisher, tasks, shards):
        return [fisher_parts(s, fisher, tasks) for s in assign_parts(tasks, 1, shards, fisher)]

    assert counts(10, 40, 1) == [10]                            # one shard: its first n tasks
    assert counts(10, 40, 2) == [5, 5]
    assert counts(10, 40, 3) == [4, 3, 3]
    assert counts(4, 5, 2) == [2, 2]
    assert counts(0, 5, 2) == [3, 2] and counts(5, 5, 2) == [3, 2]  # every task
    for shard in assign_parts(40, 1, 3, 10):  # a shard's Fisher tasks are its first rows
        m = fisher_parts(shard, 10, 40)
        assert all(t < 10 for t, _ in shard.parts[:m]) and all(t >= 10 for t, _ in shard.parts[m:])
