"""Every task class of the native Meta-World engine (rlmaml/envs/metaworld_classes/) against metaworld's own env
through the Gymnasium-vector path (``make_batched(env_id, n, engine="sync")``): observations and success bit for
bit, rewards and the other info entries to float32 rounding, under random actions (a little beyond the action box)
and along metaworld's scripted expert, which succeeds through the engine. reach-v3 and push-v3 are checked bit for
bit in tests/test_metaworld_native.py."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from rlmaml.envs import make_batched
from rlmaml.envs import metaworld_tasks as mwt
from rlmaml.rl.rollout import rollout

pytestmark = pytest.mark.skipif(importlib.util.find_spec("metaworld") is None,
                                reason=f"metaworld is not installed ({mwt.INSTALL_COMMAND})")
ML10 = (*mwt.ML10_CLASSES["train"], *mwt.ML10_CLASSES["test"])
CLASSES = tuple(c for c in ML10 if c not in ("reach-v3", "push-v3"))
#: metaworld.policies' expert of each class (named after the class, but for peg-insert-side)
EXPERT_NAMES = {"peg-insert-side-v3": "SawyerPegInsertionSideV3Policy"}
#: the held-out goal the expert runs on: 3, but for peg-insert-side, whose expert misses held-out goals 3 and 5
#: through metaworld's own env too (the peg comes no closer than 0.16 m to the hole on goal 3)
EXPERT_TEST_GOAL = {"peg-insert-side-v3": 0}
#: rewards and info entries: float32 outputs that may differ by the rounding of metaworld's float32 terms
RTOL, ATOL = 1e-6, 1e-6


def native_env(env_id, num_envs, **kwargs):
    from rlmaml.envs.metaworld_native import MetaWorldNativeEnv

    return MetaWorldNativeEnv(env_id, num_envs, **kwargs)


def expert(task):
    mwt.import_metaworld()
    import metaworld.policies

    name = EXPERT_NAMES.get(task, "Sawyer" + "".join(w.capitalize() for w in task.split("-")[:-1]) + "V3Policy")
    policy = getattr(metaworld.policies, name)()

    def act(obs):  # [..., 39] float32 -> [..., 4]
        flat = obs.reshape(-1, obs.shape[-1]).numpy().astype(np.float64)
        return torch.as_tensor(np.stack([policy.get_action(o) for o in flat]), dtype=torch.float32).reshape(
            *obs.shape[:-1], 4)
    return act


def run(env, tasks, actions_for, steps, seed=7):
    """Reset ``env`` on ``tasks`` and step it ``steps`` times with ``actions_for(t, obs)``: stacked observations
    (reset included), rewards, terminations and infos."""
    env.set_tasks(tasks)
    obs = env.reset(seed=seed)
    observations, rewards, dones, infos = [obs], [], [], []
    for t in range(steps):
        obs, reward, done, info = env.step(actions_for(t, obs))
        observations.append(obs)
        rewards.append(reward)
        dones.append(done)
        infos.append(info)
    env.close()
    info = {k: torch.stack([i[k] for i in infos]) for k in infos[0]}
    return torch.stack(observations), torch.stack(rewards), torch.stack(dones), info


def assert_same_episodes(a, b):
    """Observations, terminations and success equal; rewards and the other info entries to float32 rounding."""
    (obs_a, rew_a, done_a, info_a), (obs_b, rew_b, done_b, info_b) = a, b
    assert obs_a.dtype == obs_b.dtype == torch.float32 and obs_a.shape == obs_b.shape
    where = (obs_a != obs_b).nonzero()
    assert len(where) == 0, f"observations differ first at (step, copy, entry) {where[0].tolist()}"
    assert torch.equal(done_a, done_b)
    assert set(info_a) == set(info_b) and "success" in info_a
    assert torch.equal(info_a["success"], info_b["success"])
    torch.testing.assert_close(rew_b, rew_a, rtol=RTOL, atol=ATOL, msg=lambda m: f"reward: {m}")
    for key in info_a:
        assert info_a[key].dtype == info_b[key].dtype == torch.float32, key
        torch.testing.assert_close(info_b[key], info_a[key], rtol=RTOL, atol=ATOL, msg=lambda m, k=key: f"{k}: {m}")


def random_actions(num_envs, seed=0):
    g = torch.Generator().manual_seed(seed)
    return lambda t, obs: torch.rand(num_envs, 4, generator=g, dtype=torch.float64) * 2.4 - 1.2


@pytest.mark.parametrize("task", CLASSES)
def test_random_actions_give_metaworlds_episodes(task):
    """4 copies of distinct train goals, random actions, 200 steps."""
    env_id = f"metaworld/ML1-{task}"
    sync = make_batched(env_id, 4, engine="sync")
    tasks = sync.sample_tasks(4, seed=1)
    a = run(sync, tasks, random_actions(4), 200)
    b = run(native_env(env_id, 4, num_threads=1), tasks, random_actions(4), 200)
    assert_same_episodes(a, b)


@pytest.mark.parametrize("task", CLASSES)
def test_the_scripted_expert_gives_metaworlds_episodes_and_succeeds(task):
    """metaworld's expert (goal observed) on 2 train and 1 held-out goal, 500 steps: the native episodes are the sync
    path's (grasping, pressing, opening and the success terms included) and succeed as often."""
    env_id = f"metaworld/ML1-{task}"
    tasks = [{"class": task, "index": i, "split": "train"} for i in (0, 7)] + [
        {"class": task, "index": EXPERT_TEST_GOAL.get(task, 3), "split": "test"}]
    act = expert(task)
    sync = make_batched(env_id, 3, engine="sync", observe_goal=True)
    reference = rollout(sync, act, tasks, episodes_per_task=1, seed=0)
    native = native_env(env_id, 3, observe_goal=True, num_threads=1)
    episodes = rollout(native, act, tasks, episodes_per_task=1, seed=0)
    assert torch.equal(episodes.observations, reference.observations)
    assert torch.equal(episodes.mask, reference.mask)
    torch.testing.assert_close(episodes.rewards, reference.rewards, rtol=RTOL, atol=ATOL)
    assert set(episodes.infos) == set(reference.infos)
    for key in episodes.infos:
        torch.testing.assert_close(episodes.infos[key], reference.infos[key], rtol=RTOL, atol=ATOL)
    assert torch.equal(episodes.successes, reference.successes)
    assert episodes.successes.mean().item() == 1.0, episodes.successes.tolist()
    native.close()
    sync.close()
