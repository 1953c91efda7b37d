"""Rendering: video files, text overlays, MuJoCo replay of recorded states, navigation pictures/videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlmaml.errors import UserError
from rlmaml.viz import video as render
from rlmaml.viz.video import (
    annotate,
    describe_task,
    phase_name,
    read_video_frame_count,
    render_adaptation,
    write_video,
)


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo writes model-compiler warnings to ./MUJOCO_LOG.TXT


def _frames(n, h=30, w=41):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_write_video_mp4_pads_odd_sizes_and_keeps_every_frame(tmp_path):
    path = write_video(_frames(7), tmp_path / "clip.mp4", fps=10)
    assert path == tmp_path / "clip.mp4" and path.stat().st_size > 0
    assert read_video_frame_count(path) == 7
    import imageio.v2 as imageio

    first = imageio.get_reader(path).get_data(0)
    assert first.shape == (30, 42, 3)  # width padded to even for yuv420p


def test_write_video_falls_back_to_gif_without_ffmpeg(tmp_path, monkeypatch):
    monkeypatch.setattr(render, "ffmpeg_available", lambda: False)
    path = write_video(_frames(4), tmp_path / "clip.mp4", fps=5)
    assert path == tmp_path / "clip.gif"
    assert path.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    assert read_video_frame_count(path) == 4


def test_write_video_rejects_bad_frames(tmp_path):
    with pytest.raises(UserError, match="no frames"):
        write_video([], tmp_path / "x.mp4")
    with pytest.raises(UserError, match="HxWx3 uint8"):
        write_video([np.zeros((4, 4), np.uint8)], tmp_path / "x.mp4")
    with pytest.raises(UserError, match="all frames must match"):
        write_video([np.zeros((4, 4, 3), np.uint8), np.zeros((6, 4, 3), np.uint8)], tmp_path / "x.mp4")


def test_annotate_writes_text_in_the_corner_only():
    frame = np.full((120, 200, 3), 200, np.uint8)
    out = annotate(frame, ["target v = 1.30 m/s", "phase: after 1 step"])
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert (frame == 200).all()  # input untouched
    assert not np.array_equal(out[:30, :100], frame[:30, :100])
    np.testing.assert_array_equal(out[-20:, -20:], frame[-20:, -20:])


def test_task_descriptions_and_phase_names():
    assert describe_task({"velocity": 1.3}) == "target v = 1.30 m/s"
    assert describe_task({"direction": -1}) == "direction: backward (-x)"
    assert describe_task({"goal": [0.1, -0.25]}) == "goal = (+0.10, -0.25)"
    assert [phase_name(k) for k in range(3)] == ["before adaptation", "after 1 step", "after 2 steps"]


def test_measured_line_shows_the_goal_distance_or_the_mean_velocity():
    assert render.measured_line(np.array([1.0, -2.0]), np.array([0.5, 0.5]), 0.3) == "distance to goal = 3.00 m (L1)"
    assert render.measured_line(None, np.array([0.5, 0.5]), 1.234) == "measured v = +1.23 m/s (mean so far)"
    assert render.measured_line(None, np.zeros(2), None) is None


def _navigation_phases(num_phases, horizon, num_tasks=2):
    from rlmaml.envs import make_batched
    from rlmaml.rl.rollout import rollout

    env = make_batched("rlmaml/Navigation2D-v0", num_tasks)
    tasks = env.sample_tasks(num_tasks, seed=0)
    goals = torch.tensor([t["goal"] for t in tasks], dtype=torch.float32)[:, None]
    phases = [rollout(env, lambda obs, k=k: 0.2 * k * (goals - obs) + 0.02 * torch.randn_like(obs),
                      tasks, 1, horizon=horizon, seed=k) for k in range(num_phases)]
    return tasks, phases


def test_navigation_video_has_horizon_times_phases_frames_and_a_trajectory_png(tmp_path):
    tasks, phases = _navigation_phases(num_phases=3, horizon=12)
    written = render_adaptation("rlmaml/Navigation2D-v0", phases, tasks, tmp_path, num_tasks=1, width=96, height=96)
    png, video = written
    assert png.suffix == ".png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert video.name == "Navigation2D-v0_task0.mp4"
    assert read_video_frame_count(video) == 12 * 3


def test_navigation_frames_follow_the_recorded_positions():
    tasks, phases = _navigation_phases(num_phases=1, horizon=5)
    positions = render.planar_positions(phases[0], 1)
    np.testing.assert_allclose(positions, phases[0].infos["position"][:, 1, 0].double().numpy())
    bounds = render._nav_bounds([positions], [render.task_goal(tasks[1])])
    frames = render.navigation_phase_frames(phases[0], tasks[1], 1, 0, bounds, size=64)
    assert len(frames) == 5 and frames[0].shape == (64, 64, 3)
    assert not np.array_equal(frames[0], frames[-1])  # the point moves


def _cheetah_recording(horizon, num_tasks=1, seed=0):
    """Real HalfCheetah physics: qpos/x_velocity recorded per step, shaped like Episodes.infos."""
    from types import SimpleNamespace

    import gymnasium as gym

    env = gym.make("HalfCheetah-v5")
    qpos = np.zeros((horizon, num_tasks, 1, env.unwrapped.model.nq))
    vel, rew = np.zeros((horizon, num_tasks, 1)), np.zeros((horizon, num_tasks, 1))
    for t in range(num_tasks):
        env.reset(seed=seed + t)
        env.action_space.seed(seed + t)
        for h in range(horizon):
            _, r, _, _, info = env.step(env.action_space.sample())
            qpos[h, t, 0], vel[h, t, 0], rew[h, t, 0] = env.unwrapped.data.qpos, info["x_velocity"], r
    env.close()
    return SimpleNamespace(rewards=torch.tensor(rew), mask=torch.ones(horizon, num_tasks, 1),
                           infos={"qpos": torch.tensor(qpos), "x_velocity": torch.tensor(vel)})


def test_mujoco_replay_renders_recorded_states_deterministically():
    try:
        replay = render.MujocoReplay("rlmaml/HalfCheetahVel-v0", width=64, height=48)
    except render.RenderError as exc:  # pragma: no cover - only on machines without EGL/OSMesa
        pytest.skip(str(exc))
    episodes = _cheetah_recording(horizon=3)
    qpos = render.episode_info(episodes, "qpos", 0)
    with replay:
        a = replay.frames(qpos)
        b = replay.frames(qpos)
        lifted = qpos.copy()
        lifted[:, 1] += 0.5  # rootz: the body is drawn higher
        c = replay.frames(lifted)
        with pytest.raises(render.RenderError, match="needs \\[H, 9\\]"):
            replay.frames(qpos[:, :5])
    assert len(a) == 3 and a[0].shape == (48, 64, 3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_mujoco_adaptation_video_frame_count(tmp_path):
    phases = [_cheetah_recording(horizon=4, num_tasks=2, seed=s) for s in range(3)]
    try:
        written = render_adaptation("rlmaml/HalfCheetahVel-v0", phases, [{"velocity": 1.3}, {"velocity": 0.5}],
                                    tmp_path, num_tasks=2, width=64, height=48)
    except render.RenderError as exc:  # pragma: no cover - only on machines without EGL/OSMesa
        pytest.skip(str(exc))
    assert [p.name for p in written] == ["HalfCheetahVel-v0_task0.mp4", "HalfCheetahVel-v0_task1.mp4"]
    assert all(read_video_frame_count(p) == 4 * 3 for p in written)


def test_ant_goal_gets_torso_trajectories_from_the_recorded_free_joint_and_a_video(tmp_path):
    from rlmaml.envs import make_batched
    from rlmaml.rl.rollout import rollout

    env = make_batched("rlmaml/AntGoal-v0", 2, record_state=True)
    tasks = env.sample_tasks(2, seed=0)
    phases = [rollout(env, lambda obs: torch.rand(obs.shape[0], 8) * 2 - 1, tasks, 1, horizon=6, seed=k)
              for k in range(2)]
    qpos = phases[1].infos["qpos"][:, 1, 0].double().numpy()
    positions = render.planar_positions(phases[1], 1)
    np.testing.assert_allclose(positions, qpos[:, :2])  # the torso's x, y: the free joint's first two entries
    assert np.abs(positions - positions[0]).max() > 1e-4  # random actions move the torso
    try:
        written = render_adaptation("rlmaml/AntGoal-v0", phases, tasks, tmp_path, num_tasks=1, width=64, height=48)
    except render.RenderError as exc:  # pragma: no cover - only on machines without EGL/OSMesa
        pytest.skip(str(exc))
    png, video = written
    assert png.name == "AntGoal-v0_trajectories.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert video.name == "AntGoal-v0_task0.mp4" and read_video_frame_count(video) == 6 * 2


def test_missing_recorded_states_and_bad_indices_give_clear_errors(tmp_path):
    phases = [_cheetah_recording(horizon=2)]
    del phases[0].infos["qpos"]
    with pytest.raises(render.RenderError, match="record_state=True"):
        render_adaptation("rlmaml/HalfCheetahVel-v0", phases, [{"velocity": 1.0}], tmp_path, width=32, height=32)
    with pytest.raises(UserError, match="task index 5 out of range"):
        render_adaptation("rlmaml/HalfCheetahVel-v0", phases, [{"velocity": 1.0}], tmp_path, task_indices=[5])
    with pytest.raises(render.RenderError, match="2 tasks given but the episodes hold 1"):
        render_adaptation("rlmaml/HalfCheetahVel-v0", phases, [{"velocity": 1.0}] * 2, tmp_path)


def test_opengl_failure_is_one_line_error_naming_the_fix(monkeypatch):
    import mujoco

    def no_context(*args, **kwargs):
        raise mujoco.FatalError("an OpenGL platform library has not been loaded into this process\nmore text")

    monkeypatch.setattr(mujoco, "Renderer", no_context)
    with pytest.raises(render.RenderError) as exc:
        render.MujocoReplay("rlmaml/HalfCheetahVel-v0", width=32, height=32)
    message = str(exc.value)
    assert "\n" not in message
    assert "set MUJOCO_GL=egl or osmesa" in message and "FatalError" in message
    assert isinstance(exc.value, UserError)
