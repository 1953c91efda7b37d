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


def test_success_is_any_valid_step_and_is_summarised_per_task_and_class():
    """Episodes succeed if any valid (masked-in) step reports success; the evaluation averages episodes per
    task, then tasks, and groups tasks by their class."""
    from rlmaml.rl.episodes import Episodes
    from rlmaml.rl.evaluation import success_stats
    from rlmaml.rl.trainer import batch_metrics

    H, T, E = 3, 2, 2
    mask = torch.ones(H, T, E)
    mask[2, 1, 1] = 0  # task 1, episode 1 ended after two steps
    success = torch.zeros(H, T, E)
    success[0, 0, 0] = 1  # task 0 ep 0: succeeded at the first step
    success[2, 1, 1] = 1  # task 1 ep 1: "succeeded" after it ended: does not count
    success[1, 1, 0] = 1  # task 1 ep 0
    zeros = torch.zeros(H, T, E)
    before = Episodes(zeros[..., None], zeros[..., None], zeros, mask, {"success": success})
    after = Episodes(zeros[..., None], zeros[..., None], zeros, mask, {"success": torch.ones(H, T, E)})
    assert before.successes.tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert Episodes(zeros[..., None], zeros[..., None], zeros, mask).successes is None
    stats = success_stats([before, after], [{"class": "reach"}, {"class": "push"}])
    assert stats["success"]["per_task"] == [[0.5, 0.5], [1.0, 1.0]]
    assert stats["success"]["mean"] == [0.5, 1.0] and stats["success"]["ci95"] == [0.0, 0.0]
    assert stats["success_by_class"] == {"reach": [0.5, 1.0], "push": [0.5, 1.0]}
    assert "success_by_class" not in success_stats([before], [{}, {}])
    phases = MetaBatch([{}, {}], [before, after], [], [])
    record = batch_metrics(phases, {"kl": 0.0, "surrogate_before": 0.0, "surrogate_after": 0.0,
                                    "line_search_steps": 1, "step_accepted": True}, 12)
    assert record["success_before"] == 0.5 and record["success_after"] == 1.0


@pytest.mark.parametrize("env,extra", [
    ("rlmaml/HalfCheetahVel-v0", {"frame_skip": 1}),
    ("rlmaml/AntVel-v0", {"ant_model": "rllab", "frame_skip": 1, "timestep": 0.02}),
])
def test_a_shard_replays_the_reset_draws_of_the_copies_before_it(env, extra):
    """A shard's engine (copies start·E …) starts every copy where the whole batch's engine starts it."""
    cfg, _, _ = _setup(env=env, meta_batch_size=5, horizon=6, **extra)
    whole = make_env(cfg, 5, 2)
    tasks = whole.sample_tasks(5, seed=3)
    whole.set_tasks([t for t in tasks for _ in range(2)])
    expected = whole.reset(seed=21)
    part = make_env(cfg, 2, 2)
    part.copy_offset = 3 * 2
    part.set_tasks([t for t in tasks[3:] for _ in range(2)])
    assert torch.equal(part.reset(seed=21), expected[6:])
    assert torch.equal(torch.as_tensor(part.qpos), torch.as_tensor(whole.qpos)[6:])


def test_a_shard_draws_the_whole_batchs_action_noise_and_keeps_its_rows():
    from rlmaml.rl.sampling import Shard, action_sampler

    class Fixed:
        def distribution(self, params, obs, stacked=False):
            from torch.distributions import Independent, Normal

            return Independent(Normal(obs * 2.0, torch.ones_like(obs) * 0.3), 1)

    obs = torch.randn(5, 2, 3)
    torch.manual_seed(8)
    expected = action_sampler(Fixed(), {}, "cpu")(obs)
    torch.manual_seed(8)
    rows = action_sampler(Fixed(), {}, "cpu", Shard(3, 5, 5))(obs[3:])
    assert torch.equal(rows, expected[3:])


@pytest.mark.parametrize("fisher_tasks", [0, 2])
def test_the_shards_terms_sum_to_the_whole_meta_batchs(fisher_tasks):
    """S, g = ∇S, F v and the line search's (S, KL) summed over 3 uneven shards of 5 tasks equal the terms of
    the meta-batch taken whole (to float rounding: the shards' episodes are their rows of the whole batch's)."""
    from rlmaml.rl.algos import make_meta_optimizer
    from rlmaml.rl.sampling import ShardedLocalSampler

    cfg, policy, theta = _setup(meta_batch_size=5, num_inner_steps=1, fisher_tasks=fisher_tasks)
    learner = make_meta_optimizer(cfg, policy, theta)
    tasks = make_env(cfg, 1, 1).sample_tasks(5, seed=2)
    whole = make_sampler(cfg, policy).sample(learner.params, tasks, [4, 5], [0.1])
    sharded = ShardedLocalSampler(cfg, policy, num_shards=3).sample(learner.params, tasks, [4, 5], [0.1])
    assert [p.shard.num_tasks for p in sharded.parts] == [2, 2, 1]
    a, b = whole.trpo_terms(learner), sharded.trpo_terms(learner)
    with torch.enable_grad():
        (sa, ga), (sb, gb) = a.setup(learner.params), b.setup(learner.params)
        torch.testing.assert_close(sb, sa, rtol=1e-5, atol=1e-7)  # S(θ) ≈ 0: advantages are normalised
        torch.testing.assert_close(gb, ga, rtol=1e-4, atol=1e-6)
        if fisher_tasks == 0:  # with a subsampled Fisher: how tasks 0..n−1 are spread over the shards (fisher_parts)
            torch.testing.assert_close(b.fisher_vector_product(ga), a.fisher_vector_product(ga), rtol=1e-4, atol=1e-6)
        else:
            assert [shard.fisher_count for shard in b.shards] == [1, 1, 0]
            assert b.shards[2].fisher_vector_product(ga).abs().max() == 0 < b.fisher_vector_product(ga).abs().max()
    moved = {n: p.detach() + 0.01 for n, p in learner.params.items()}
    for x, y in zip(b.surrogate_and_kl(moved), a.surrogate_and_kl(moved)):
        assert x == pytest.approx(y, rel=1e-4)


def test_local_shards_train_reproducibly(tmp_path):
    from rlmaml.cli import main

    def run(name):
        out = tmp_path / name
        assert main(["train", "navigation", "num_batches=2", "meta_batch_size=5", "episodes_per_task=3", "horizon=10",
                     "hidden_sizes=[8]", "num_workers=3", "--out", str(out), "--no-progress"]) == 0
        return [{k: v for k, v in r.items() if not k.endswith("seconds")}
                for r in map(__import__("json").loads, (out / "metrics.jsonl").read_text().splitlines())]

    assert run("a") == run("b")


def test_shards_split_evenly_and_reject_impossible_splits():
    from rlmaml.errors import UserError
    from rlmaml.rl.sampling import shards

    assert [(s.start, s.stop) for s in shards(5, 2)] == [(0, 3), (3, 5)]
    assert [(s.start, s.stop) for s in shards(7, 3)] == [(0, 3), (3, 5), (5, 7)]
    with pytest.raises(UserError, match="cannot split 2 tasks into 3 shards"):
        shards(2, 3)
