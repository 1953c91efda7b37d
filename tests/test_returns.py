"""Returns, GAE, normalisation and the linear baseline against hand-computed numbers."""

import torch

from rlmaml.rl.baseline import LinearFeatureBaseline
from rlmaml.rl.episodes import Episodes
from rlmaml.rl.returns import discounted_returns, gae, normalize


def test_discounted_returns_hand_computed():
    rewards = torch.tensor([[1.0, 1.0], [2.0, 5.0], [3.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])   # second episode terminates at t=1
    out = discounted_returns(rewards, mask, gamma=0.5)
    # column 0: R2 = 3, R1 = 2 + 0.5*3 = 3.5, R0 = 1 + 0.5*3.5 = 2.75 ; column 1: R1 = 5, R0 = 1 + 2.5 = 3.5
    expected = torch.tensor([[2.75, 3.5], [3.5, 5.0], [3.0, 0.0]])
    torch.testing.assert_close(out, expected)


def test_gae_hand_computed():
    rewards = torch.tensor([1.0, 2.0, 3.0])
    values = torch.tensor([0.5, 1.0, 2.0])
    mask = torch.ones(3)
    g, lam = 0.9, 0.5
    d2 = 3.0 - 2.0                      # V_3 = 0
    d1 = 2.0 + g * 2.0 - 1.0            # 2.8
    d0 = 1.0 + g * 1.0 - 0.5            # 1.4
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    torch.testing.assert_close(gae(rewards, values, mask, g, lam), torch.tensor([a0, a1, a2]))
    # lambda = 1 and zero values: GAE equals the discounted return
    torch.testing.assert_close(gae(rewards, torch.zeros(3), mask, g, 1.0), discounted_returns(rewards, mask, g))


def test_gae_respects_termination_mask():
    rewards = torch.tensor([1.0, 2.0, 100.0])
    values = torch.tensor([0.5, 1.0, 50.0])
    mask = torch.tensor([1.0, 1.0, 0.0])
    out = gae(rewards, values, mask, 0.9, 0.5)
    d1 = 2.0 - 1.0                     # terminal step: no bootstrap from the masked step
    d0 = 1.0 + 0.9 * 1.0 - 0.5
    torch.testing.assert_close(out, torch.tensor([d0 + 0.45 * d1, d1, 0.0]))


def test_normalize_over_masked_entries():
    x = torch.tensor([[1.0, 3.0], [5.0, 1000.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    out = normalize(x, mask, dims=(0, 1))
    vals = torch.tensor([1.0, 3.0, 5.0])
    ref = (vals - vals.mean()) / (vals.std(unbiased=False) + 1e-8)
    torch.testing.assert_close(out[mask.bool()], ref)
    assert out[1, 1] == 0


def test_baseline_recovers_exactly_linear_targets():
    torch.manual_seed(0)
    H, T, E, D = 20, 3, 4, 2
    obs = torch.randn(H, T, E, D, dtype=torch.float64)
    phi = LinearFeatureBaseline.features(obs)
    true_w = torch.randn(T, phi.shape[-1], dtype=torch.float64)
    targets = torch.einsum("htef,tf->hte", phi, true_w)
    mask = torch.ones(H, T, E, dtype=torch.float64)
    mask[15:, 0, 0] = 0
    targets_noisy = targets.clone()
    targets_noisy[15:, 0, 0] = 1e6      # masked-out steps must not influence the fit
    baseline = LinearFeatureBaseline(reg_coeff=1e-10)
    fitted = baseline.fit_predict(obs, targets_noisy, mask)
    torch.testing.assert_close(fitted[mask.bool()], targets[mask.bool()], rtol=1e-5, atol=1e-6)
    assert torch.all(fitted[~mask.bool()] == 0)
    torch.testing.assert_close(baseline.predict(obs), targets, rtol=1e-5, atol=1e-6)   # everywhere, incl. masked


def test_baseline_features_layout():
    obs = torch.tensor([[[[2.0, -20.0]]], [[[0.5, 1.0]]]])   # H=2, T=1, E=1, D=2
    phi = LinearFeatureBaseline.features(obs)
    torch.testing.assert_close(phi[1, 0, 0], torch.tensor([0.5, 1.0, 0.25, 1.0, 0.01, 1e-4, 1e-6, 1.0],
                                                          dtype=torch.float64))
    assert phi[0, 0, 0, 1] == -10.0   # clipped


def test_episodes_returns_and_advantages_shapes():
    H, T, E = 5, 2, 3
    rewards = torch.arange(H * T * E, dtype=torch.float32).view(H, T, E)
    mask = torch.ones(H, T, E)
    mask[3:, 1, 2] = 0
    ep = Episodes(torch.randn(H, T, E, 2), torch.randn(H, T, E, 2), rewards, mask)
    torch.testing.assert_close(ep.returns[1, 2], rewards[:3, 1, 2].sum())
    assert ep.num_steps == H * T * E - 2
    adv = ep.advantages(0.99, 0.95)
    assert adv.shape == (H, T, E)
    assert adv[3:, 1, 2].abs().sum() == 0
    for t in range(T):   # normalised per task over masked steps
        m = mask[:, t].bool()
        assert abs(adv[:, t][m].mean().item()) < 1e-5
        assert abs(adv[:, t][m].std(unbiased=False).item() - 1) < 1e-3


def test_baseline_on_real_ant_episodes_equals_per_task_ridge_solutions():
    """Ant's 226 features (many contact-force columns always 0) give ill-conditioned systems; the batched fit
    must equal the per-task ridge solution and never fall back to zero weights."""
    from rlmaml.envs import make_batched
    from rlmaml.rl.rollout import rollout

    env = make_batched("rlmaml/AntVel-v0", 6, num_threads=1)
    tasks = env.sample_tasks(3, seed=0)
    torch.manual_seed(0)
    eps = rollout(env, lambda obs: torch.randn(*obs.shape[:-1], 8), tasks, 2, horizon=40, seed=1)
    env.close()
    baseline = LinearFeatureBaseline()
    returns = eps.discounted_returns(0.99)
    weights = baseline.fit(eps.observations, returns, eps.mask)
    assert weights.shape == (3, 2 * eps.observations.shape[-1] + 4) and weights.abs().sum() > 0
    phi = LinearFeatureBaseline.features(eps.observations)                   # [H, T, E, F]
    for t in range(3):
        m = eps.mask[:, t].bool()
        X, y = phi[:, t][m], returns[:, t][m].double()
        reference = torch.linalg.solve(X.T @ X + 1e-5 * torch.eye(X.shape[1], dtype=torch.float64), X.T @ y)
        torch.testing.assert_close(weights[t], reference, rtol=1e-5, atol=1e-6)
