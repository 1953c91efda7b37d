"""Comparison methods at evaluation time: same tasks for every method, determinism, recorded episodes, videos."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch

from rlmaml.cli import main
from rlmaml.config import build_config
from rlmaml.errors import UserError
from rlmaml.rl import evaluation as evaluate
from rlmaml.rl import sampling
from rlmaml.rl.components import make_env, make_policy
from rlmaml.rl.config import TrainConfig
from rlmaml.rl.evaluation import (
    check_render_request,
    episode_length_stats,
    evaluate_methods,
    random_init,
    recorded_adaptation_returns,
    render_from_evaluation,
)
from rlmaml.rl.policies import build_policy
from rlmaml.rl.trainer import train
from rlmaml.viz.video import RenderError, read_video_frame_count

TINY = {"env": "rlmaml/Navigation2D-v0", "num_batches": 1, "meta_batch_size": 3, "episodes_per_task": 2,
        "horizon": 8, "hidden_sizes": [8], "checkpoint_every": 1, "seed": 3}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for algorithm in ("maml", "pretrained", "oracle"):
        cfg = build_config(TrainConfig, {**TINY, "algorithm": algorithm,
                                         "num_inner_steps": 1 if algorithm == "maml" else 0})
        train(cfg, root / algorithm, progress=False)
        out[algorithm] = root / algorithm
    return out


def test_every_method_on_the_same_tasks_and_the_maml_numbers_match_the_evaluator(runs):
    result = evaluate_methods(runs["maml"], [runs["pretrained"], runs["oracle"]], grad_steps=2, seed=5, num_tasks=4)
    methods = result["methods"]
    assert list(methods) == ["maml", "pretrained", "oracle", "random"]
    for name in ("maml", "pretrained", "random"):
        assert methods[name]["grad_steps"] == [0, 1, 2]
        assert np.asarray(methods[name]["per_task"]).shape == (3, 4)
    assert methods["oracle"]["grad_steps"] == [0] and len(methods["oracle"]["mean"]) == 1
    assert methods["maml"]["trained_batches"] == 1 and methods["random"]["trained_batches"] == 0
    recorded = evaluate_methods(runs["maml"], [runs["pretrained"], runs["oracle"]], grad_steps=2, seed=5,
                                num_tasks=4, record=["maml", "pretrained", "random"])
    assert recorded["methods"] == methods
    goals = torch.tensor([t["goal"] for t in result["tasks"]])
    for name in ("maml", "pretrained", "random"):  # an episode ends early iff the point is within 0.01 of the goal
        for j, eps in enumerate(recorded["episodes"][name]):
            last = eps.mask.sum(dim=0).long() - 1  # [T, E]
            position = eps.infos["position"].gather(0, last[None, :, :, None].expand(1, -1, -1, 2))[0]
            reached = ((position - goals[:, None]).abs() < 0.01).all(dim=-1) & (last < 7)  # horizon 8
            assert methods[name]["ended_early"][j] == reached.double().mean().item()
            assert methods[name]["episode_length"][j] == (last + 1).double().mean().item()
    assert any(any(methods[name]["ended_early"]) for name in methods)  # with seed 5, some do
    config, _, _ = evaluate.load_run(runs["maml"])
    assert result["tasks"] == evaluate.held_out_tasks(config, 4, 5)
    config, policy, params = evaluate.load_run(runs["maml"])
    reference = evaluate.summarize(evaluate.adaptation_returns(policy, params, config, result["tasks"], 2, 5)[0])
    assert methods["maml"]["mean"] == reference["mean"] and methods["maml"]["ci95"] == reference["ci95"]
    per_task = np.asarray(methods["maml"]["per_task"])
    np.testing.assert_allclose(methods["maml"]["mean"], per_task.mean(axis=1))
    np.testing.assert_allclose(methods["maml"]["ci95"], 1.96 * per_task.std(axis=1, ddof=1) / 2.0)


def test_episode_length_stats_count_the_steps_up_to_termination():
    from rlmaml.rl.episodes import Episodes

    mask = torch.ones(5, 2, 2)  # horizon 5, 2 tasks x 2 episodes; lengths 5, 3 | 5, 1
    mask[3:, 0, 1] = 0
    mask[1:, 1, 1] = 0
    full = torch.ones(5, 2, 2)
    phases = [Episodes(torch.zeros(5, 2, 2, 1), torch.zeros(5, 2, 2, 1), torch.zeros(5, 2, 2), m) for m in (mask, full)]
    stats = episode_length_stats(phases, horizon=5)
    assert stats == {"episode_length": [3.5, 5.0], "ended_early": [0.5, 0.0]}


def test_evaluation_is_deterministic_for_a_fixed_seed(runs):
    a = evaluate_methods(runs["maml"], [runs["pretrained"]], grad_steps=1, seed=11, num_tasks=3)
    b = evaluate_methods(runs["maml"], [runs["pretrained"]], grad_steps=1, seed=11, num_tasks=3)
    c = evaluate_methods(runs["maml"], [runs["pretrained"]], grad_steps=1, seed=12, num_tasks=3)
    assert a["methods"] == b["methods"] and a["tasks"] == b["tasks"]
    assert a["tasks"] != c["tasks"]
    assert a["methods"]["maml"]["per_task"] != c["methods"]["maml"]["per_task"]


def test_random_baseline_is_the_initialisation_training_draws_from_the_seed(runs):
    config, policy, _ = evaluate.load_run(runs["maml"])
    _, params = random_init(config, policy)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    fresh = make_policy(config, make_env(config))  # as rlmaml.rl.train.train builds θ_0
    for name, p in fresh.named_parameters():
        torch.testing.assert_close(params[name], p.detach(), rtol=0, atol=0)


def test_duplicate_algorithms_are_kept_apart_and_envs_must_match(runs, tmp_path):
    result = evaluate_methods(runs["maml"], [runs["pretrained"], runs["pretrained"]], grad_steps=0, seed=0,
                              num_tasks=2, include_random=False)
    assert list(result["methods"]) == ["maml", "pretrained", "pretrained:pretrained"]
    cheetah = tmp_path / "cheetah"
    cheetah.mkdir()
    (cheetah / "config.yaml").write_text("env: rlmaml/HalfCheetahVel-v0\nhidden_sizes: [8]\n")
    state = torch.load(runs["pretrained"] / "checkpoint.pt", weights_only=False)
    torch.save(state, cheetah / "checkpoint.pt")
    with pytest.raises(UserError, match="trained on 'rlmaml/HalfCheetahVel-v0'"):
        evaluate_methods(runs["maml"], [cheetah], grad_steps=0, num_tasks=2)


def test_missing_checkpoints_give_one_line_errors(runs, tmp_path):
    empty = tmp_path / "not-trained"
    empty.mkdir()
    with pytest.raises(UserError, match="--render needs a trained policy") as exc:
        check_render_request(empty, 2)
    assert "no checkpoint.pt" in str(exc.value) and "\n" not in str(exc.value)
    check_render_request(empty, 0)  # nothing to render, nothing to check
    check_render_request(runs["maml"], 2)
    with pytest.raises(UserError, match="--compare needs a trained policy"):
        evaluate_methods(runs["maml"], [empty], num_tasks=2)
    with pytest.raises(UserError, match="does not exist"):
        evaluate_methods(tmp_path / "nowhere", num_tasks=2)
    with pytest.raises(UserError, match="--render must be a non-negative"):
        check_render_request(runs["maml"], -1)


def test_navigation_render_from_the_evaluation_has_horizon_times_phases_frames(runs, tmp_path):
    result = evaluate_methods(runs["maml"], grad_steps=2, seed=2, num_tasks=3, include_random=False,
                              record=["maml"])
    phases = result["episodes"]["maml"]
    assert len(phases) == 3
    # the recorded episodes are the ones the reported returns came from
    np.testing.assert_allclose(np.stack([p.returns.mean(dim=1).numpy() for p in phases]),
                               np.asarray(result["methods"]["maml"]["per_task"]), rtol=0, atol=0)
    written = render_from_evaluation(runs["maml"], "rlmaml/Navigation2D-v0", phases, result["tasks"], 2,
                                     tmp_path / "videos", width=64, height=64)
    assert [p.name for p in written] == ["Navigation2D-v0_trajectories.png", "Navigation2D-v0_task0.mp4",
                                         "Navigation2D-v0_task1.mp4"]
    assert all(read_video_frame_count(p) == TINY["horizon"] * 3 for p in written[1:])
    with pytest.raises(UserError, match="--render must be a positive"):
        render_from_evaluation(runs["maml"], "rlmaml/Navigation2D-v0", phases, result["tasks"], 0)


def test_mujoco_recording_equals_the_evaluation_and_replays_to_video(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes model-compiler warnings to ./MUJOCO_LOG.TXT
    config = build_config(TrainConfig, {**TINY, "env": "rlmaml/HalfCheetahVel-v0", "episodes_per_task": 1,
                                        "horizon": 4, "num_threads": 1})
    env = make_env(config, 1, 1)
    torch.manual_seed(0)
    policy = build_policy(env.observation_dim, env.action_dim, [8])
    params = {n: p.detach() for n, p in policy.named_parameters()}
    tasks = evaluate.held_out_tasks(config, 2, 0)
    returns, plain = evaluate.adaptation_returns(policy, params, config, tasks, 1, 0)
    recorded_returns, phases = recorded_adaptation_returns(policy, params, config, tasks, 1, 0)
    torch.testing.assert_close(recorded_returns, returns, rtol=0, atol=0)
    for a, b in zip(plain, phases):
        torch.testing.assert_close(a.observations, b.observations, rtol=0, atol=0)
        torch.testing.assert_close(a.actions, b.actions, rtol=0, atol=0)
    assert phases[0].infos["qpos"].shape[:3] == (4, 2, 1) and phases[0].infos["qpos"].shape[3] == 9
    # the recorded root velocity is what the replayed root positions imply: v = Δx / dt
    qpos = phases[0].infos["qpos"][:, 0, 0].double()
    dt = env.dt if hasattr(env, "dt") else 0.05
    torch.testing.assert_close(((qpos[1:, 0] - qpos[:-1, 0]) / dt).float(), phases[0].infos["x_velocity"][1:, 0, 0],
                               rtol=1e-4, atol=1e-4)
    try:
        written = render_from_evaluation(tmp_path, config.env, phases, tasks, 1, tmp_path / "videos",
                                         width=64, height=48)
    except RenderError as exc:  # pragma: no cover - only on machines without EGL/OSMesa
        pytest.skip(str(exc))
    assert [p.name for p in written] == ["HalfCheetahVel-v0_task0.mp4"]
    assert read_video_frame_count(written[0]) == 4 * 2


def test_compare_arguments_parse():
    from rlmaml.cli.evaluate import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["run", "--compare", "a", "b", "--render", "2", "--render-out", "v", "--fps", "10"])
    assert args.compare == ["a", "b"] and args.render == 2 and args.render_out == "v" and args.fps == 10.0
    assert not args.no_random
    args = parser.parse_args(["run"])
    assert args.compare == [] and args.render == 0 and args.render_out is None and args.fps is None


def test_videos_default_to_real_time_and_bad_fps_fails_before_any_work(tmp_path):
    from rlmaml.rl.config import TrainConfig

    assert evaluate.real_time_fps(TrainConfig()) == 20.0                       # navigation
    assert evaluate.real_time_fps(TrainConfig(env="rlmaml/HalfCheetahVel-v0")) == pytest.approx(20.0)   # dt 0.05
    assert evaluate.real_time_fps(TrainConfig(env="rlmaml/HalfCheetahVel-v0", frame_skip=1)) == pytest.approx(100.0)
    assert evaluate.real_time_fps(TrainConfig(env="rlmaml/AntVel-v0", frame_skip=2)) == pytest.approx(50.0)
    assert evaluate.real_time_fps(TrainConfig(env="rlmaml/AntVel-v0", frame_skip=1, timestep=0.005)) == pytest.approx(200)
    with pytest.raises(UserError, match="--fps"):
        evaluate.check_render_request(tmp_path / "no-run", 1, fps=-5.0)
    assert evaluate.method_name(argparse.Namespace(algorithm="oracle"), "runs/x", ["oracle"]) == "oracle:x"


def test_command_line_writes_eval_json_with_all_methods_and_videos(runs, tmp_path, capsys):
    import json

    from rlmaml.viz.curves import plot_runs

    out = tmp_path / "eval" / "eval.json"
    code = main(["evaluate", str(runs["maml"]), "--compare", str(runs["pretrained"]), str(runs["oracle"]),
                         "--num-tasks", "2", "--grad-steps", "1", "--seed", "4", "--out", str(out),
                         "--render", "1", "--render-out", str(tmp_path / "videos")])
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result["methods"]) == {"maml", "pretrained", "oracle", "random"}
    assert result["grad_steps"] == [0, 1] and len(result["tasks"]) == 2
    assert (tmp_path / "videos" / "Navigation2D-v0_task0.mp4").is_file()
    assert "random on 2 tasks" in capsys.readouterr().out
    (png,) = plot_runs([out.parent], reference="paper")
    assert png.name == "adaptation_curve.png" and png.stat().st_size > 0
    assert main(["evaluate", str(tmp_path), "--render", "1"]) == 2
    assert "--render needs a trained policy" in capsys.readouterr().err


def test_out_names_a_json_file_or_a_directory_for_eval_json_and_videos(tmp_path):
    from rlmaml.cli.evaluate import output_paths

    assert output_paths(tmp_path / "run", None, None) == (tmp_path / "run" / "eval.json", None)
    assert output_paths("run", "x/e.json", None) == (Path("x/e.json"), Path("x/videos"))
    assert output_paths("run", "x/outdir", None) == (Path("x/outdir/eval.json"), Path("x/outdir/videos"))
    assert output_paths("run", "x/outdir", "v") == (Path("x/outdir/eval.json"), Path("v"))


def test_evaluation_step_sizes_follow_the_original_protocol(runs, monkeypatch):
    """α for the first inner step, later_step_scale·α for every later one (default 0.5); scale 1 keeps α."""
    assert evaluate.step_sizes(0.1, 3) == [0.1, 0.05, 0.05]
    assert evaluate.step_sizes(0.1, 3, 1.0) == [0.1, 0.1, 0.1]
    assert evaluate.step_sizes(0.1, 0) == []
    for bad in (0.0, -0.5, float("nan"), float("inf")):
        with pytest.raises(UserError, match="--later-step-scale must be a positive number"):
            evaluate.step_sizes(0.1, 2, bad)
    used = []
    original = sampling.adapted_params_program

    def spy(policy, params, batch, fast_lr, inner_loss, parts):
        used.append(fast_lr)
        return (yield from original(policy, params, batch, fast_lr, inner_loss, parts))

    monkeypatch.setattr(sampling, "adapted_params_program", spy)
    config, _, _ = evaluate.load_run(runs["maml"])
    half = evaluate_methods(runs["maml"], grad_steps=2, seed=4, num_tasks=3, include_random=False)
    assert used == [config.fast_lr, 0.5 * config.fast_lr]
    used.clear()
    same = evaluate_methods(runs["maml"], grad_steps=2, seed=4, num_tasks=3, include_random=False,
                            later_step_scale=1.0)
    assert used == [config.fast_lr, config.fast_lr]
    a, b = np.asarray(half["methods"]["maml"]["per_task"]), np.asarray(same["methods"]["maml"]["per_task"])
    np.testing.assert_array_equal(a[:2], b[:2])  # before adaptation and after the first (α) step: identical
    assert not np.array_equal(a[2], b[2])  # the second step differs
    with pytest.raises(UserError, match="--later-step-scale"):
        evaluate_methods(runs["maml"], grad_steps=2, num_tasks=2, later_step_scale=0.0)


def test_runs_of_another_env_timing_are_refused_before_any_evaluation(tmp_path, monkeypatch):
    """--compare with a run trained at another frame_skip or timestep is a one-line error raised before the
    evaluated run is adapted on a single task."""
    cheetah = {**TINY, "env": "rlmaml/HalfCheetahVel-v0", "horizon": 4, "meta_batch_size": 2}
    dirs = {}
    for name, timing in {"fs1": {"frame_skip": 1}, "ts": {"frame_skip": 1, "timestep": 0.02},
                         "fs2": {"frame_skip": 2}}.items():
        train(build_config(TrainConfig, {**cheetah, **timing}), tmp_path / name, progress=False)
        dirs[name] = tmp_path / name

    def no_work(*args, **kwargs):
        raise AssertionError("evaluation started before the runs were checked")

    monkeypatch.setattr(evaluate, "adaptation_returns", no_work)
    with pytest.raises(UserError, match=r"timestep=0\.02 but the evaluated run with timestep=0\.0;"):
        evaluate_methods(dirs["fs1"], [dirs["ts"]], grad_steps=1, seed=0, num_tasks=2)
    with pytest.raises(UserError, match=r"frame_skip=2 but the evaluated run with frame_skip=1;"):
        evaluate_methods(dirs["fs1"], [dirs["fs2"]], grad_steps=1, seed=0, num_tasks=2)
