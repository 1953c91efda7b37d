"""2D navigation: reward formula, clipping, termination, batched-vs-single equality, rollout masks, seeding."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import rlmaml  # noqa: F401  (registers the envs)
from rlmaml.envs import make_batched
from rlmaml.errors import UserError
from rlmaml.rl.rollout import rollout

ENV_ID = "rlmaml/Navigation2D-v0"


def test_check_env_and_horizon():
    env = gym.make(ENV_ID)
    check_env(env.unwrapped, skip_render_check=True)
    assert env.spec.max_episode_steps == 100


def test_reward_clipping_and_termination():
    env = gym.make(ENV_ID).unwrapped
    env.reset(seed=0, options={"task": {"goal": [0.3, -0.05]}})
    obs, reward, terminated, _truncated, _info = env.step(np.array([5.0, -0.02]))   # clipped to (0.1, -0.02)
    np.testing.assert_allclose(obs, [0.1, -0.02], atol=1e-7)
    assert reward == pytest.approx(-np.hypot(0.1 - 0.3, -0.02 + 0.05))
    assert not terminated
    env.step(np.array([0.1, -0.03]))
    obs, reward, terminated, *_ = env.step(np.array([0.095, 0.0]))   # at (0.295, -0.05): within 0.01 per axis
    assert terminated and reward == pytest.approx(-0.005)


def test_sample_tasks_seeded_and_in_range():
    env = gym.make(ENV_ID).unwrapped
    env.reset(seed=3)
    a = env.sample_tasks(50)
    env.reset(seed=3)
    assert env.sample_tasks(50) == a
    goals = np.array([t["goal"] for t in a])
    assert goals.min() >= -0.5 and goals.max() <= 0.5


def test_rgb_render():
    env = gym.make(ENV_ID, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3


def test_batched_matches_single_env():
    rng = np.random.default_rng(0)
    batched = make_batched(ENV_ID, 3)
    tasks = batched.sample_tasks(3, seed=1)
    batched.set_tasks(tasks)
    batched.reset()
    singles = [gym.make(ENV_ID).unwrapped for _ in tasks]
    for env, task in zip(singles, tasks):
        env.reset(options={"task": task})
    for _ in range(30):
        actions = rng.uniform(-0.15, 0.15, size=(3, 2))
        obs, reward, terminated, _info = batched.step(torch.as_tensor(actions))
        for k, env in enumerate(singles):
            o, r, term, _, _ = env.step(actions[k])
            np.testing.assert_allclose(obs[k].numpy(), o, atol=1e-7)
            assert reward[k].item() == pytest.approx(r, abs=1e-6)
            assert bool(terminated[k]) == term


def test_oracle_appends_goal():
    env = make_batched(ENV_ID, 2, oracle=True)
    tasks = [{"goal": [0.1, 0.2]}, {"goal": [-0.3, 0.4]}]
    env.set_tasks(tasks)
    obs = env.reset()
    assert env.observation_dim == 4
    torch.testing.assert_close(obs[:, 2:], torch.tensor([[0.1, 0.2], [-0.3, 0.4]]))


def test_rollout_mask_after_termination_and_seeding():
    env = make_batched(ENV_ID, 2 * 3)
    tasks = [{"goal": [0.25, 0.0]}, {"goal": [-0.4, 0.4]}]

    def go_to_first_goal(obs):   # reaches (0.25, 0) after 3 steps: 0.1, 0.2, 0.25
        return (torch.tensor([0.25, 0.0]) - obs).clamp(-0.1, 0.1)

    ep = rollout(env, go_to_first_goal, tasks, episodes_per_task=3, horizon=10)
    assert ep.observations.shape == (10, 2, 3, 2) and ep.actions.shape == (10, 2, 3, 2)
    assert torch.all(ep.mask[:3, 0] == 1) and torch.all(ep.mask[3:, 0] == 0)
    assert torch.all(ep.mask[:, 1] == 1)
    expected = -(0.15 + 0.05 + 0.0)
    torch.testing.assert_close(ep.returns[0], torch.full((3,), expected), atol=1e-6, rtol=0)
    assert ep.num_steps == 3 * 3 + 10 * 3
    assert ep.infos["position"].shape == (10, 2, 3, 2)

    def noisy(obs):
        return 0.1 * torch.randn(*obs.shape[:-1], 2)

    a = rollout(env, noisy, tasks, 3, 10, seed=7)
    b = rollout(env, noisy, tasks, 3, 10, seed=7)
    c = rollout(env, noisy, tasks, 3, 10, seed=8)
    assert torch.equal(a.rewards, b.rewards) and torch.equal(a.actions, b.actions)
    assert not torch.equal(a.actions, c.actions)


def test_bad_inputs():
    with pytest.raises(UserError, match="rlmaml/Navigation2D-v0"):
        make_batched("NoSuchEnv-v9", 4)
    with pytest.raises(UserError):
        make_batched(ENV_ID, 0)
    env = make_batched(ENV_ID, 4)
    with pytest.raises(UserError):
        rollout(env, lambda o: o, [{"goal": [0, 0]}], episodes_per_task=3, horizon=5)
    with pytest.raises(UserError):
        env.set_tasks([{"goal": [0, 0]}] * 3)
    with pytest.raises(UserError):
        env.set_tasks([{"velocity": 1.0}] * 4)


def test_generic_vector_path_matches_native():
    tasks = [{"goal": [0.1, -0.2]}, {"goal": [0.3, 0.3]}]
    native = make_batched(ENV_ID, 2)
    generic = make_batched(ENV_ID, 2, engine="sync")
    actions = torch.as_tensor(np.random.default_rng(0).uniform(-0.1, 0.1, size=(8, 2, 2)), dtype=torch.float32)
    ep_n = rollout(native, lambda o: actions[0].view(2, 1, 2), tasks, 1, 1)
    ep_g = rollout(generic, lambda o: actions[0].view(2, 1, 2), tasks, 1, 1)
    torch.testing.assert_close(ep_n.rewards, ep_g.rewards)
    generic.close()


@pytest.mark.parametrize("engine", ["sync", "async", "native"])
def test_generic_and_native_paths_agree_through_termination(engine):
    tasks = [{"goal": [0.25, 0.0]}, {"goal": [-0.4, 0.4]}]
    env = make_batched(ENV_ID, 2, engine=engine, record_state=True, max_episode_steps=10)
    assert env.max_episode_steps == 10

    def go_to_first_goal(obs):
        return (torch.tensor([0.25, 0.0]) - obs).clamp(-0.1, 0.1)

    ep = rollout(env, go_to_first_goal, tasks, episodes_per_task=1)
    assert ep.rewards.shape == (10, 2, 1)
    assert ep.mask[:, 0, 0].tolist() == [1, 1, 1] + [0] * 7     # the copy keeps (auto)stepping, masked out
    assert torch.all(ep.mask[:, 1] == 1)
    torch.testing.assert_close(ep.returns[0, 0], torch.tensor(-0.2), atol=1e-6, rtol=0)
    env.close()


def test_generic_path_ends_episode_at_time_limit():
    env = make_batched(ENV_ID, 1, engine="sync", max_episode_steps=4)
    ep = rollout(env, lambda o: torch.zeros(1, 1, 2), [{"goal": [0.3, 0.3]}], 1, horizon=7)
    assert ep.mask[:, 0, 0].tolist() == [1, 1, 1, 1, 0, 0, 0]
    env.close()
