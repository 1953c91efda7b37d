"""The Gymnasium-vector path in worker processes (``engine="processes"``, or ``num_threads`` ≥ 2 for a family
without a native engine): the same trajectories as SyncVectorEnv bit for bit, chunks split as stated, and a
failing or dead worker is a one-line error."""

from __future__ import annotations

import importlib.util
import os
import signal

import pytest
import torch

from rlmaml.envs import make_batched
from rlmaml.envs.process_vector import chunk_bounds


def test_chunks_are_contiguous_and_differ_by_at_most_one():
    assert chunk_bounds(5, 2) == [(0, 3), (3, 5)]
    assert chunk_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert chunk_bounds(4, 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]


def _trajectory(env, steps: int = 25):
    env.set_tasks(env.sample_tasks(env.num_envs, seed=3))
    observations, rewards, dones, infos = [env.reset(seed=11)], [], [], []
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        low, high = torch.as_tensor(env.action_low), torch.as_tensor(env.action_high)
        actions = low + (high - low) * torch.rand(env.num_envs, env.action_dim, generator=g, dtype=torch.float64)
        obs, reward, done, info = env.step(actions)
        observations.append(obs)
        rewards.append(reward)
        dones.append(done)
        infos.append(info)
    env.close()
    return torch.stack(observations), torch.stack(rewards), torch.stack(dones), infos


ENVS = ["toy_family:toy/PointGoal-v0",
        pytest.param("metaworld/ML1-assembly-v3", marks=pytest.mark.skipif(  # no native engine
            importlib.util.find_spec("metaworld") is None, reason="needs metaworld"))]


@pytest.mark.parametrize("env_id", ENVS)
def test_worker_processes_give_sync_vector_env_trajectories_bit_for_bit(env_id):
    """5 copies in 2 workers (chunks of 3 and 2), 25 steps of the same random actions and reset seeds."""
    sync = make_batched(env_id, 5, engine="sync", max_episode_steps=20)
    processes = make_batched(env_id, 5, num_threads=2, max_episode_steps=20)  # auto: no native engine
    assert processes.physics_threads == 2 and processes._vec.bounds == [(0, 3), (3, 5)]
    obs_a, rew_a, done_a, info_a = _trajectory(sync)
    obs_b, rew_b, done_b, info_b = _trajectory(processes)
    assert torch.equal(obs_a, obs_b) and torch.equal(rew_a, rew_b) and torch.equal(done_a, done_b)
    assert done_a[19].all() and not done_a[:19].any()  # truncated at the horizon of 20
    assert all(set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a) for a, b in zip(info_a, info_b))
    assert info_a[0]  # the envs' numeric info (position; Meta-World's success, ...) is there to compare


def test_a_worker_that_raises_or_dies_is_a_one_line_error():
    env = make_batched("toy_family:toy/PointGoal-v0", 4, engine="processes", num_threads=2)
    try:
        env.set_tasks(env.sample_tasks(4, seed=0))
        with pytest.raises(RuntimeError, match=r"^env worker 0 failed: ResetNeeded: Cannot call env.step\(\) "
                                               r"before calling env.reset\(\) \(at .*\.py:\d+\)$"):
            env.step(torch.zeros(4, 2))
        env.reset(seed=0)  # every worker answered: the next commands are in step
        obs, *_ = env.step(torch.zeros(4, 2))
        assert obs.shape == (4, 2)
        victim = env._vec._procs[1]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        with pytest.raises(RuntimeError, match=rf"^env worker 1 \(pid {victim.pid}\) died with exit code -9$"):
            env.step(torch.zeros(4, 2))
    finally:
        env.close()
