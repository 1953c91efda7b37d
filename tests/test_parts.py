"""Tasks split into parts (``task_split``): the layout of parts over shards, and every per-task sum joined across
shards equal to the whole task's computation in float64 — the advantages, and the TRPO meta-step's S, g, F v and
line-search (S, KL) — on the same episodes cut into parts."""

from __future__ import annotations

import pytest
import torch

from rlmaml.config import build_config
from rlmaml.rl.algos import make_meta_optimizer
from rlmaml.rl.algos.trpo import LocalTerms, fisher_parts
from rlmaml.rl.components import make_env, make_policy
from rlmaml.rl.config import ConfigError, TrainConfig
from rlmaml.rl.episodes import Episodes
from rlmaml.rl.objectives import TaskBatch
from rlmaml.rl.parts import assign_parts, run_programs, sum_shares, task_shares
from rlmaml.rl.sampling import make_sampler


def test_parts_are_spread_so_every_shard_holds_its_share_of_parts_and_of_fisher_parts():
    # 4 tasks, 2 parts each, 3 shards, tasks 0 and 1 in the Fisher: 4 Fisher parts as 2 + 1 + 1, the other 4
    # as 1 + 1 + 2: at most 3 parts per shard (8 = 3 + 2 + 3)
    layout = assign_parts(4, 2, 3, fisher_tasks=2)
    assert [s.parts for s in layout] == [((0, 0), (0, 1), (2, 0)), ((1, 0), (2, 1)), ((1, 1), (3, 0), (3, 1))]
    assert [(s.start, s.stop, s.total) for s in layout] == [(0, 3, 8), (3, 5, 8), (5, 8, 8)]
    assert [fisher_parts(s, 2, 4) for s in layout] == [2, 1, 1]
    assert [s.noise_rows() for s in layout] == [[0, 1, 4], [2, 5], [3, 6, 7]]
    assert layout[1].copy_indices(2) == [4, 5, 10, 11]  # part (t, j) holds copies t·E + j·E/q …
    # 40 tasks × 4 parts over 16 workers with 10 Fisher tasks: 10 parts each, 2 or 3 of them Fisher parts
    layout = assign_parts(40, 4, 16, fisher_tasks=10)
    assert {s.num_tasks for s in layout} == {10} and {fisher_parts(s, 10, 40) for s in layout} == {2, 3}
    assert sorted(p for s in layout for p in s.parts) == [(t, j) for t in range(40) for j in range(4)]
    # one shard: every part in order; whole tasks without a subsampled Fisher: contiguous shards
    assert assign_parts(3, 2, 1)[0].parts == ((0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1))
    assert [s.parts for s in assign_parts(5, 1, 2)] == [((0, 0), (1, 0), (2, 0)), ((3, 0), (4, 0))]


def test_shares_are_summed_per_task_in_shard_order():
    a = task_shares([0, 0, 1], torch.tensor([1.0, 2.0, 4.0]))
    b = task_shares([1, 2], torch.tensor([8.0, 16.0]))
    assert a == {0: (torch.tensor(3.0),), 1: (torch.tensor(4.0),)} and set(b) == {1, 2}
    ra, rb = sum_shares([a, b])
    assert ra[0][0] == 3.0 and ra[1][0] == rb[1][0] == 12.0 and rb[2][0] == 16.0 and set(ra) == {0, 1}

    def program(xs, tasks):
        from rlmaml.rl.parts import summed_per_task

        (total,) = yield from summed_per_task(tasks, torch.tensor(xs))
        return total

    first, second = run_programs([program([1.0, 2.0, 4.0], [0, 0, 1]), program([8.0, 16.0], [1, 2])])
    assert first.tolist() == [3.0, 3.0, 12.0] and second.tolist() == [12.0, 16.0]


def test_task_split_must_divide_the_episodes_and_bounds_the_workers():
    base = {"env": "rlmaml/Navigation2D-v0", "meta_batch_size": 2, "episodes_per_task": 4}
    with pytest.raises(ConfigError, match="'task_split': 3 is not allowed; must be a divisor of episodes_per_task \\(4\\)"):
        build_config(TrainConfig, {**base, "task_split": 3})
    with pytest.raises(ConfigError, match="num_workers.*at most meta_batch_size × task_split \\(4\\)"):
        build_config(TrainConfig, {**base, "task_split": 2, "num_workers": 5})


def _float64_batch(env: str, fisher_tasks: int):
    """A sampled meta-batch of 3 tasks × 4 episodes (one inner step) and its learner, in float64."""
    cfg = build_config(TrainConfig, {"env": env, "meta_batch_size": 3, "episodes_per_task": 4, "horizon": 12,
                                     "hidden_sizes": [16], "num_inner_steps": 1, "seed": 3,
                                     "fisher_tasks": fisher_tasks})
    torch.manual_seed(0)
    policy = make_policy(cfg, make_env(cfg, 1, 1))
    learner = make_meta_optimizer(cfg, policy, dict(policy.named_parameters()))
    tasks = make_env(cfg, 1, 1).sample_tasks(3, seed=5)
    batch = make_sampler(cfg, policy).sample(learner.params, tasks, [7, 8], [cfg.fast_lr])
    policy.double()
    learner.params = {n: p.detach().double().requires_grad_() for n, p in learner.params.items()}
    return learner, [_double(b) for b in batch.batches], batch


def _double(b: TaskBatch) -> TaskBatch:
    return TaskBatch(b.observations.double(), b.actions.double(), b.mask.double(), b.advantages.double(),
                     None if b.counts is None else b.counts.double())


def _cut(batch: TaskBatch, episodes: int, parts) -> TaskBatch:
    """The rows of ``parts`` (t, j) of a task-major batch whose steps are h·E + e: part j's episodes."""
    per = episodes // 2  # two parts per task

    def cut(x, t, j):
        steps = x[t].reshape(-1, episodes, *x.shape[2:])[:, j * per:(j + 1) * per]
        return steps.reshape(-1, *x.shape[2:])

    fields = [torch.stack([cut(getattr(batch, f), t, j) for t, j in parts])
              for f in ("observations", "actions", "mask", "advantages")]
    return TaskBatch(*fields, batch.steps_per_task()[[t for t, _ in parts]])


@pytest.mark.parametrize("env", ["rlmaml/Navigation2D-v0", "rlmaml/HalfCheetahVel-v0"])
@pytest.mark.parametrize("fisher_tasks", [0, 2])
def test_terms_of_parts_over_shards_equal_the_whole_batchs_in_float64(env, fisher_tasks):
    """The same episodes, each task cut into 2 parts spread over 4 shards: S, g, F v and the line search's
    (S, KL) summed across the shards equal the whole meta-batch's to 1e-10 (float64, second order)."""
    learner, (train, valid), _ = _float64_batch(env, fisher_tasks)
    whole = learner.terms([train], valid)
    layout = assign_parts(3, 2, 4, fisher_tasks)
    assert any(len({t for t, _ in s.parts}) < s.num_tasks or s.num_tasks == 1 for s in layout)
    split = LocalTerms([learner.shard_terms([_cut(train, 4, s.parts)], _cut(valid, 4, s.parts), 3,
                                            fisher_parts(s, fisher_tasks, 3), s.parts) for s in layout])
    close = {"rtol": 1e-10, "atol": 1e-13}
    with torch.enable_grad():
        (s_whole, g_whole), (s_split, g_split) = whole.setup(learner.params), split.setup(learner.params)
        torch.testing.assert_close(s_split, s_whole, **close)
        torch.testing.assert_close(g_split, g_whole, **close)
        assert g_whole.norm() > 1e-3
        v = torch.randn(g_whole.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        fv = whole.fisher_vector_product(v)
        torch.testing.assert_close(split.fisher_vector_product(v), fv, **close)
        assert fv.norm() > 1e-6
    moved = {n: p.detach() + 0.02 * torch.randn_like(p) for n, p in learner.params.items()}
    for a, b in zip(split.surrogate_and_kl(moved), whole.surrogate_and_kl(moved)):
        assert a == pytest.approx(b, rel=1e-10, abs=1e-14) and b != 0


def test_advantages_of_parts_equal_the_whole_tasks():
    """GAE advantages with the per-task baseline and normalisation, of episodes cut into parts on 2 programs,
    equal those of the whole tasks (float64) — the baseline's normal equations and the normalisation's sums
    joined across the programs."""
    g = torch.Generator().manual_seed(4)
    H, T, E = 9, 3, 4
    obs = torch.randn(H, T, E, 3, generator=g, dtype=torch.float64)
    mask = torch.ones(H, T, E, dtype=torch.float64)
    mask[6:, 1, 2] = 0  # an episode that ends early
    episodes = Episodes(obs, torch.zeros(H, T, E, 1, dtype=torch.float64),
                        torch.randn(H, T, E, generator=g, dtype=torch.float64), mask)
    expected = episodes.advantages(0.9, 0.95)
    # parts of 2 episodes: program A holds (0,0), (0,1), (1,0); program B holds (1,1), (2,0), (2,1)
    layout = [[(0, 0), (0, 1), (1, 0)], [(1, 1), (2, 0), (2, 1)]]

    def cut(x, parts):
        return torch.stack([x[:, t, 2 * j:2 * j + 2] for t, j in parts], dim=1)

    programs = [Episodes(cut(obs, p), cut(episodes.actions, p), cut(episodes.rewards, p), cut(mask, p))
                .advantages_program(0.9, 0.95, [t for t, _ in p]) for p in layout]
    results = run_programs(programs)
    for parts, (adv, counts) in zip(layout, results):
        torch.testing.assert_close(adv, cut(expected, parts), rtol=1e-10, atol=1e-12)
        assert counts.tolist() == [mask[:, t].sum().item() for t, _ in parts]


@pytest.mark.parametrize("same_theta", [True, False])
def test_a_shard_of_parts_runs_the_policy_per_task_and_acts_as_its_rows(same_theta):
    """The actions of a shard whose rows are parts of 3 tasks (runs of 2, 1 and 3 parts): the policy evaluated
    per task (one call when every row has the same θ) gives each row's own distribution, with the whole batch's
    noise rows."""
    from rlmaml.rl.parts import Shard
    from rlmaml.rl.policies import build_policy, stack_params
    from rlmaml.rl.sampling import action_sampler

    torch.manual_seed(0)
    policy = build_policy(3, 2, [8], "tanh", -0.5, action_scale=[1.0, 2.0])
    theta = dict(policy.named_parameters())
    task_theta = stack_params(theta, 3)
    if not same_theta:
        task_theta = {n: p.detach() + 0.1 * torch.randn_like(p) for n, p in task_theta.items()}
    parts = ((0, 0), (0, 1), (1, 1), (2, 0), (2, 1), (2, 2))  # 4 tasks × 3 parts in all, 6 of them here
    shard = Shard(1, 7, 12, parts, 3, joined=True)
    rows_theta = {n: p[[t for t, _ in parts]] for n, p in task_theta.items()}
    obs = torch.randn(6, 2, 3)
    torch.manual_seed(5)
    actions = action_sampler(policy, rows_theta, "cpu", shard)(obs)
    pi = policy.distribution(rows_theta, obs, stacked=True)
    torch.manual_seed(5)
    noise = torch.empty(12, 2, 2).normal_()[shard.noise_rows()]
    torch.testing.assert_close(actions, noise * pi.base_dist.scale + pi.base_dist.loc, rtol=1e-5, atol=1e-6)
