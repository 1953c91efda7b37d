import math

import pytest
import torch

from rlmaml.core import named_params
from rlmaml.rl.policies import (
    CategoricalMLPPolicy,
    GaussianMLPPolicy,
    build_policy,
    forward,
    mlp_output,
    stack_params,
    task_params,
    vmap_mean,
)


def _perturbed_stack(policy, num_tasks, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = named_params(policy, detach=True)
    return {n: (p.detach().unsqueeze(0) + 0.1 * torch.randn(num_tasks, *p.shape, generator=gen)).requires_grad_()
            for n, p in params.items()}


@pytest.mark.parametrize("nonlinearity,act", [("tanh", torch.tanh), ("softplus", lambda x: torch.log1p(torch.exp(x))),
                                               ("relu", lambda x: x.clamp(min=0))])
def test_gaussian_log_prob_matches_hand_formula(nonlinearity, act):
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(3, 2, hidden_sizes=(5,), nonlinearity=nonlinearity, init_log_std=-0.5)
    params = named_params(policy)
    obs, actions = torch.randn(7, 3), torch.randn(7, 2)
    pi = forward(policy, params, obs)
    w0, b0, w1, b1 = (params[k] for k in ("layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"))
    mean = act(obs @ w0.T + b0) @ w1.T + b1
    std = torch.exp(params["log_std"])
    expected = (-0.5 * ((actions - mean) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(pi.log_prob(actions), expected)
    assert pi.sample().shape == (7, 2)
    torch.testing.assert_close(pi.mean, mean)


def test_stacked_forward_equals_per_task_forward_and_vmap():
    torch.manual_seed(1)
    policy = GaussianMLPPolicy(2, 2, hidden_sizes=(8, 6))
    stacked = _perturbed_stack(policy, 3)
    obs = torch.randn(3, 4, 5, 2)  # [T, E, H, obs] — any shape after the task dim
    actions = torch.randn(3, 4, 5, 2)
    log_probs = forward(policy, stacked, obs, stacked=True).log_prob(actions)
    assert log_probs.shape == (3, 4, 5)
    for t in range(3):
        expected = forward(policy, task_params(stacked, t), obs[t]).log_prob(actions[t])
        torch.testing.assert_close(log_probs[t], expected)
    flat_obs = obs.reshape(3, 20, 2)
    torch.testing.assert_close(mlp_output(policy, stacked, flat_obs, stacked=True), vmap_mean(policy, stacked, flat_obs))


def test_stack_params_gives_per_task_gradients():
    torch.manual_seed(2)
    policy = GaussianMLPPolicy(2, 1, hidden_sizes=(4,))
    theta = named_params(policy, detach=True)
    stacked = stack_params(theta, 2)
    obs, actions = torch.randn(2, 6, 2), torch.randn(2, 6, 1)
    losses = -forward(policy, stacked, obs, stacked=True).log_prob(actions).mean(-1)  # one loss per task
    grads = torch.autograd.grad(losses.sum(), list(stacked.values()))
    for t in range(2):
        single = -forward(policy, theta, obs[t]).log_prob(actions[t]).mean()
        expected = torch.autograd.grad(single, list(theta.values()))
        for g, e in zip(grads, expected):
            torch.testing.assert_close(g[t], e)


def test_categorical_policy():
    torch.manual_seed(3)
    policy = CategoricalMLPPolicy(4, 3, hidden_sizes=(6,))
    params = named_params(policy)
    obs = torch.randn(5, 4)
    pi = forward(policy, params, obs)
    logits = mlp_output(policy, params, obs)
    actions = torch.tensor([0, 1, 2, 1, 0])
    torch.testing.assert_close(pi.log_prob(actions), torch.log_softmax(logits, -1)[torch.arange(5), actions])
    torch.testing.assert_close(pi.probs.sum(-1), torch.ones(5))
    stacked = stack_params(params, 2)
    assert forward(policy, stacked, torch.randn(2, 5, 4), stacked=True).sample().shape == (2, 5)


def test_build_policy_and_invalid_sizes():
    assert isinstance(build_policy(2, 2), GaussianMLPPolicy)
    assert isinstance(build_policy(2, 3, discrete=True), CategoricalMLPPolicy)
    policy = build_policy(2, 2, hidden_sizes=(100, 100), init_log_std=0.3)
    assert {n: tuple(p.shape) for n, p in policy.named_parameters()} == {
        "log_std": (2,), "layers.0.weight": (100, 2), "layers.0.bias": (100,), "layers.1.weight": (100, 100),
        "layers.1.bias": (100,), "layers.2.weight": (2, 100), "layers.2.bias": (2,)}
    torch.testing.assert_close(policy.log_std.detach(), torch.full((2,), 0.3))
    with pytest.raises(ValueError, match="positive"):
        GaussianMLPPolicy(2, 2, hidden_sizes=(0,))
    with pytest.raises(ValueError, match="nonlinearity"):
        GaussianMLPPolicy(2, 2, nonlinearity="sigmoid")


def test_action_scale_is_an_affine_change_of_units():
    """c ⊙ (μ + σ ε): mean and std scale by c, log-probs shift by -Σ log c, ratios and KL do not change."""
    torch.manual_seed(0)
    unit = GaussianMLPPolicy(3, 2, hidden_sizes=(5,), init_log_std=-0.3)
    scaled = GaussianMLPPolicy(3, 2, hidden_sizes=(5,), init_log_std=-0.3, action_scale=[0.1, 2.0])
    scaled.load_state_dict(unit.state_dict() | {"action_scale": scaled.action_scale})
    c = torch.tensor([0.1, 2.0])
    params = named_params(unit, detach=True)
    other = {n: p + 0.05 * torch.randn_like(p) for n, p in params.items()}
    obs, x = torch.randn(6, 3), torch.randn(6, 2)
    pu, ps = forward(unit, params, obs), forward(scaled, params, obs)
    torch.testing.assert_close(ps.mean, c * pu.mean)
    torch.testing.assert_close(ps.base_dist.scale, c * pu.base_dist.scale)
    torch.testing.assert_close(ps.log_prob(c * x), pu.log_prob(x) - torch.log(c).sum())
    kl = torch.distributions.kl_divergence
    torch.testing.assert_close(kl(ps, forward(scaled, other, obs)), kl(pu, forward(unit, other, obs)))
    assert named_params(scaled).keys() == params.keys()  # the scale is a buffer, not a parameter
    with pytest.raises(ValueError, match="action_scale"):
        GaussianMLPPolicy(3, 2, action_scale=[0.1, -1.0])
