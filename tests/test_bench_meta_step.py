"""`rlmaml bench meta-step`: one JSON object with per-batch seconds and the update's matmul floor."""

from __future__ import annotations

import json

import pytest
import torch

from rlmaml.bench.meta_step import update_matmul_gflop
from rlmaml.cli import main
from rlmaml.config import build_config
from rlmaml.rl.algos import make_meta_optimizer
from rlmaml.rl.components import make_env, make_policy
from rlmaml.rl.config import TrainConfig
from rlmaml.rl.sampling import batch_seeds, make_sampler

TINY = ["meta_batch_size=3", "episodes_per_task=2", "horizon=10", "hidden_sizes=[16,16]", "cg_iters=3"]


def test_bench_meta_step_prints_one_json_object(capsys):
    assert main(["bench", "meta-step", "--preset", "navigation", "--batches", "1", *TINY]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["meta_batch_size"] == 3 and result["horizon"] == 10 and result["batches"] == 1
    assert result["sample_seconds"] > 0 and result["update_seconds"] > 0
    assert result["update_matmul_gflop"] > 0 and result["matmul_gflop_per_s"] > 0
    assert result["update_floor_seconds"] == pytest.approx(result["update_matmul_gflop"] / result["matmul_gflop_per_s"])
    fvp = result["fisher_vector_product"]  # the update's factored product against the direct third-order one
    assert fvp["relative_difference"] < 1e-4
    assert fvp["factored_matmul_gflop"] > 0 and fvp["direct_matmul_gflop"] > fvp["factored_matmul_gflop"]
    ab = result["update_factored_vs_direct"]
    assert ab["repeats"] == 1 and ab["factored_seconds"] > 0 and ab["direct_seconds"] > 0


def test_direct_fisher_reference_takes_the_same_meta_step_in_float64():
    """The benchmark's reference update (direct third-order Fisher-vector products) and the factored update
    land on the same θ: the factorisation is exact at the current θ."""
    from rlmaml.bench.meta_step import DirectFisherMetaLearner

    cfg = build_config(TrainConfig, {"env": "rlmaml/Navigation2D-v0", "meta_batch_size": 3, "episodes_per_task": 2,
                                     "horizon": 10, "hidden_sizes": [8, 8], "cg_iters": 5, "seed": 0})
    torch.manual_seed(0)
    env = make_env(cfg)
    policy = make_policy(cfg, env)
    seeds = batch_seeds(cfg.seed, 0, 3)
    tasks = env.sample_tasks(cfg.meta_batch_size, seed=seeds[0])
    batches = make_sampler(cfg, policy).sample(dict(policy.named_parameters()), tasks, seeds[1:], [cfg.fast_lr]).batches
    policy = policy.double()
    factored = make_meta_optimizer(cfg, policy, dict(policy.named_parameters()))
    batches = [type(b)(*(x.double() for x in (b.observations, b.actions, b.mask, b.advantages))) for b in batches]
    direct = DirectFisherMetaLearner(policy, factored.params, fast_lr=cfg.fast_lr, max_kl=cfg.max_kl, cg_iters=5)
    before = {n: p.detach().clone() for n, p in factored.params.items()}
    m_factored, m_direct = factored.step(batches[:1], batches[1]), direct.step(batches[:1], batches[1])
    assert m_factored["step_accepted"] and m_direct["step_accepted"]
    assert m_factored["line_search_steps"] == m_direct["line_search_steps"]
    for n, start in before.items():
        assert not torch.equal(factored.params[n], start) or n == "log_std"
        torch.testing.assert_close(factored.params[n], direct.params[n], rtol=1e-9, atol=1e-12)


def test_update_matmul_count_is_linear_in_the_steps_and_leaves_theta_unchanged():
    """Every matmul of the update is over the sampled steps except the tiny per-parameter ones, so doubling
    the episodes (same tasks; one line-search trial) must double the count up to those; θ is restored."""
    counts = []
    for episodes in (2, 4):
        cfg = build_config(TrainConfig, {"env": "rlmaml/Navigation2D-v0", "meta_batch_size": 3,
                                         "episodes_per_task": episodes, "horizon": 10, "hidden_sizes": [16, 16],
                                         "cg_iters": 3, "ls_max_steps": 1, "seed": 0})
        torch.manual_seed(0)
        env = make_env(cfg)
        policy = make_policy(cfg, env)
        learner = make_meta_optimizer(cfg, policy, dict(policy.named_parameters()))
        seeds = batch_seeds(cfg.seed, 0, 3)
        tasks = env.sample_tasks(cfg.meta_batch_size, seed=seeds[0])
        batches = make_sampler(cfg, policy).sample(learner.params, tasks, seeds[1:], [cfg.fast_lr]).batches
        before = {n: p.detach().clone() for n, p in learner.params.items()}
        counts.append(update_matmul_gflop(learner, batches[:1], batches[1]))
        assert all(torch.equal(before[n], learner.params[n]) for n in before)
    assert counts[0] > 0
    assert counts[1] / counts[0] == pytest.approx(2.0, rel=0.05)


def test_kl_profile_measures_the_quadratic_model_of_a_smooth_adaptation(tmp_path, capsys):
    """With a smooth (softplus) policy the Fisher model of the KL is exact to second order: the measured
    KL(t) / (t²·max_kl) tends to 1 as the step fraction t → 0."""
    run = tmp_path / "nav"
    assert main(["train", "navigation", "num_batches=1", "meta_batch_size=3", "episodes_per_task=4", "horizon=10",
                 "hidden_sizes=[16]", "nonlinearity=softplus", "cg_iters=20", "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["bench", "kl-profile", str(run), "--batches", "1", "--json", "--seed", "3"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ratios = {float(t): r for t, r in result["kl_over_model"].items()}
    assert ratios[0.01] == pytest.approx(1.0, abs=0.05)
    assert result["line_search_evaluations"] >= 1
    assert main(["bench", "kl-profile", str(tmp_path / "none")]) == 2
