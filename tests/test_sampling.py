"""The sampler seam: LocalSampler's phases, reproducibility, and MetaBatch.concatenate."""

import pytest
import torch

from rlmaml.config import build_config
from rlmaml.rl.components import make_env, make_policy
from rlmaml.rl.config import TrainConfig
from rlmaml.rl.objectives import TaskBatch
from rlmaml.rl.sampling import LocalSampler, MetaBatch, Sampler, make_sampler

CFG = {"env": "rlmaml/Navigation2D-v0", "meta_batch_size": 3, "episodes_per_task": 2, "horizon": 8,
       "hidden_sizes": [8], "num_inner_steps": 2, "seed": 1}


def _setup(**extra):
    cfg = build_config(TrainConfig, {**CFG, **extra})
    torch.manual_seed(0)
    policy = make_policy(cfg, make_env(cfg, 1, 1))
    return cfg, policy, dict(policy.named_parameters())


def test_local_sampler_phases_are_reproducible_and_adapt_between_phases():
    cfg, policy, theta = _setup()
    sampler = make_sampler(cfg, policy)
    assert isinstance(sampler, LocalSampler) and isinstance(sampler, Sampler)
    tasks = sampler.env.sample_tasks(3, seed=4)
    a = sampler.sample(theta, tasks, [1, 2, 3], [0.1, 0.05])
    b = sampler.sample(theta, tasks, [1, 2, 3], [0.1, 0.05])
    assert len(a.episodes) == len(a.batches) == len(a.params) == 3 and len(a.train_batches) == 2
    for x, y in zip(a.episodes, b.episodes):
        assert torch.equal(x.rewards, y.rewards) and torch.equal(x.actions, y.actions)
    assert torch.equal(a.params[0]["layers.0.weight"][0], theta["layers.0.weight"].detach())   # θ_0 = θ
    assert not torch.equal(a.params[1]["layers.0.weight"], a.params[0]["layers.0.weight"])    # θ_1 adapted
    assert a.num_steps == sum(int(e.mask.sum()) for e in a.episodes)
    with pytest.raises(ValueError, match="2 inner steps need 3 rollout seeds"):
        sampler.sample(theta, tasks, [1, 2], [0.1, 0.05])


def test_concatenated_meta_batches_agree_with_their_episodes():
    """Joining two task sets' phases gives the same TaskBatch as building it from the joined episodes (baselines and
    advantage normalisation are per task), and lays the tasks end to end."""
    cfg, policy, theta = _setup(meta_batch_size=2)
    two = make_sampler(cfg, policy)
    one = make_sampler(cfg, policy, num_tasks=1)
    tasks = two.env.sample_tasks(3, seed=5)
    parts = [two.sample(theta, tasks[:2], [7, 8, 9], [0.1, 0.1]), one.sample(theta, tasks[2:], [7, 8, 9], [0.1, 0.1])]
    joined = MetaBatch.concatenate(parts)
    assert joined.tasks == tasks and joined.valid.num_tasks == 3
    for j, eps in enumerate(joined.episodes):
        assert eps.rewards.shape[1] == 3
        rebuilt = TaskBatch.from_episodes(eps, cfg.gamma, cfg.gae_lambda)
        for field in ("observations", "actions", "mask", "advantages"):
            torch.testing.assert_close(getattr(joined.batches[j], field), getattr(rebuilt, field))
        assert torch.equal(joined.params[j]["log_std"][2], parts[1].params[j]["log_std"][0])
