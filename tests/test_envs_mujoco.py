"""MuJoCo task families: check_env, reward formulas against independent computation, termination,
and identical trajectories of the batched ``mujoco.rollout`` engine and the single Gymnasium env."""

import os
import subprocess
import sys

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import rlmaml  # noqa: F401
from rlmaml.envs import make_batched
from rlmaml.errors import UserError

FAMILIES = ["rlmaml/HalfCheetahVel-v0", "rlmaml/HalfCheetahDir-v0", "rlmaml/AntVel-v0", "rlmaml/AntDir-v0",
            "rlmaml/AntGoal-v0"]


@pytest.mark.parametrize("env_id", FAMILIES)
def test_check_env_and_task_protocol(env_id):
    env = gym.make(env_id)
    assert env.spec.max_episode_steps == 200
    check_env(env.unwrapped, skip_render_check=True)
    u = env.unwrapped
    u.reset(seed=1)
    tasks = u.sample_tasks(4)
    u.reset(seed=1)
    assert u.sample_tasks(4) == tasks
    u.reset(seed=0, options={"task": tasks[2]})
    assert u.task == tasks[2]
    u.reset(seed=3)
    assert u.task == tasks[2]           # an explicitly set task persists
    with pytest.raises(UserError):
        u.set_task({"bogus": 1})


def test_task_distributions():
    rng = np.random.default_rng(0)
    from rlmaml.envs.mujoco_tasks import AntGoalEnv, AntVelEnv, HalfCheetahDirEnv, HalfCheetahVelEnv
    v = np.array([t["velocity"] for t in HalfCheetahVelEnv.sample_tasks_from(rng, 500)])
    assert v.min() >= 0 and v.max() <= 2 and v.max() > 1.9
    v = np.array([t["velocity"] for t in AntVelEnv.sample_tasks_from(rng, 500)])
    assert v.min() >= 0 and v.max() <= 3 and v.max() > 2.9
    d = {t["direction"] for t in HalfCheetahDirEnv.sample_tasks_from(rng, 100)}
    assert d == {-1.0, 1.0}
    g = np.array([t["goal"] for t in AntGoalEnv.sample_tasks_from(rng, 500)])
    assert g.shape == (500, 2) and g.min() >= -3 and g.max() <= 3


def test_halfcheetah_rewards_by_hand():
    env = gym.make("rlmaml/HalfCheetahVel-v0").unwrapped
    env.reset(seed=0, options={"task": {"velocity": 1.5}})
    action = np.array([2.0, -0.5, 0.3, -3.0, 0.0, 0.7])        # two entries are clipped to ±1
    x_before = env.data.qpos[0]
    obs, reward, terminated, _, info = env.step(action)
    v = (env.data.qpos[0] - x_before) / 0.05
    clipped = np.clip(action, -1, 1)
    assert reward == pytest.approx(-abs(v - 1.5) - 0.05 * np.sum(clipped ** 2), abs=1e-10)
    assert info["x_velocity"] == pytest.approx(v)
    assert not terminated
    np.testing.assert_array_equal(obs, np.concatenate([env.data.qpos[1:], env.data.qvel]))
    np.testing.assert_array_equal(env.data.ctrl, clipped)

    env = gym.make("rlmaml/HalfCheetahDir-v0").unwrapped
    env.reset(seed=0, options={"task": {"direction": -1}})
    x_before = env.data.qpos[0]
    _, reward, *_ = env.step(np.zeros(6))
    assert reward == pytest.approx(-(env.data.qpos[0] - x_before) / 0.05, abs=1e-10)


@pytest.mark.parametrize("env_id,task", [("rlmaml/AntVel-v0", {"velocity": 2.0}),
                                          ("rlmaml/AntDir-v0", {"direction": -1}),
                                          ("rlmaml/AntGoal-v0", {"goal": [1.0, -2.0]})])
def test_ant_rewards_by_hand(env_id, task):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0, options={"task": task})
    action = np.array([0.5, -1.5, 0.2, 0.9, -0.3, 1.2, 0.0, -0.8])
    for _ in range(10):     # let the legs touch the floor so that contact forces are non-zero
        env.step(action)
    torso_before = env.data.xpos[1, :2].copy()
    obs, reward, terminated, _, _info = env.step(action)
    torso = env.data.xpos[1, :2].copy()
    v = (torso - torso_before) / 0.05
    cfrc = env.data.cfrc_ext
    assert np.abs(cfrc).max() > 0
    clipped = np.clip(action, -1, 1)
    common = -0.5e-2 * np.sum(clipped ** 2) - 0.5e-3 * np.sum(np.clip(cfrc, -1, 1) ** 2) + 0.05
    if "velocity" in task:
        forward = -abs(v[0] - task["velocity"]) + 1.0
    elif "direction" in task:
        forward = task["direction"] * v[0]
    else:
        forward = -np.sum(np.abs(torso - np.array(task["goal"]))) + 4.0  # the original task's constant
    assert reward == pytest.approx(forward + common, abs=1e-10)
    assert not terminated
    expected_obs = np.concatenate([env.data.qpos[2:], env.data.qvel, np.clip(cfrc[1:], -1, 1).ravel()])
    np.testing.assert_array_equal(obs, expected_obs)


def test_ant_terminates_when_unhealthy():
    env = gym.make("rlmaml/AntDir-v0").unwrapped
    env.reset(seed=0)
    qpos = env.init_qpos.copy()
    qpos[2] = 1.5                      # torso far above the healthy range
    env.set_state(qpos, env.init_qvel)
    *_, terminated, _, _ = env.step(np.zeros(8))
    assert terminated
    batched = make_batched("rlmaml/AntDir-v0", 2, num_threads=1)
    batched.set_tasks([{"direction": 1}] * 2)
    batched.reset(seed=0)
    qpos2 = np.stack([env.init_qpos, qpos])
    batched.set_state(qpos2, np.zeros((2, env.model.nv)))
    _, _, term, _ = batched.step(torch.zeros(2, 8))
    assert term.tolist() == [False, True]


@pytest.mark.parametrize("num_threads,ant_obs", [(1, "gymnasium"), (2, "gymnasium"), (2, "rllab")])
def test_finished_ant_copies_are_frozen_and_the_others_unchanged(num_threads, ant_obs):
    """``step(actions, active)``: inactive copies keep their state (velocity 0, same observation), and the
    active copies evolve exactly as when every copy is stepped."""
    n = 4
    envs = [make_batched("rlmaml/AntVel-v0", n, num_threads=num_threads, ant_obs=ant_obs) for _ in range(2)]
    for env in envs:
        env.set_tasks(env.sample_tasks(n, seed=0))
        env.reset(seed=3)
    active = torch.tensor([True, False, True, False])
    frozen_qpos, frozen_qvel = envs[0].qpos[~active.numpy()].copy(), envs[0].qvel[~active.numpy()].copy()
    rng = np.random.default_rng(2)
    obs_frozen = None
    for t in range(5):
        actions = torch.as_tensor(rng.uniform(-1, 1, size=(n, 8)))
        o_skip, r_skip, term_skip, info_skip = envs[0].step(actions, active=active)
        o_all, r_all, term_all, info_all = envs[1].step(actions)
        a = active.numpy()
        np.testing.assert_array_equal(envs[0].qpos[a], envs[1].qpos[a])
        np.testing.assert_array_equal(envs[0].qvel[a], envs[1].qvel[a])
        torch.testing.assert_close(o_skip[active], o_all[active], rtol=0, atol=0)
        torch.testing.assert_close(r_skip[active], r_all[active], rtol=0, atol=0)
        assert term_skip[active].tolist() == term_all[active].tolist()
        torch.testing.assert_close(info_skip["x_velocity"][active], info_all["x_velocity"][active], rtol=0, atol=0)
        np.testing.assert_array_equal(envs[0].qpos[~a], frozen_qpos)
        np.testing.assert_array_equal(envs[0].qvel[~a], frozen_qvel)
        assert (info_skip["x_velocity"][~active] == 0).all()
        assert not np.array_equal(envs[1].qpos[~a], frozen_qpos)  # stepping them would have moved them
        if obs_frozen is not None:
            torch.testing.assert_close(o_skip[~active], obs_frozen, rtol=0, atol=0)
        obs_frozen = o_skip[~active].clone()
    for env in envs:
        env.close()


def test_rollout_of_dying_ants_is_identical_with_and_without_skipping():
    """The rollout passes its alive mask; every masked-in step equals a rollout that steps every copy."""
    from rlmaml.rl.rollout import rollout

    env = make_batched("rlmaml/AntVel-v0", 6, num_threads=1)
    tasks = env.sample_tasks(3, seed=0)

    def wild(obs):  # large random actions make ants flip over and terminate early
        return 3.0 * torch.randn(*obs.shape[:-1], 8)

    skipped = rollout(env, wild, tasks, 2, horizon=60, seed=5)
    stepped = rollout(env, wild, tasks, 2, horizon=60, seed=5, skip_finished=False)  # every copy stepped
    assert skipped.mask.sum() < skipped.mask.numel()  # some episodes did end early
    torch.testing.assert_close(skipped.mask, stepped.mask, rtol=0, atol=0)
    m = skipped.mask.bool()
    torch.testing.assert_close(skipped.observations[m], stepped.observations[m], rtol=0, atol=0)
    torch.testing.assert_close(skipped.actions[m], stepped.actions[m], rtol=0, atol=0)
    torch.testing.assert_close(skipped.rewards[m], stepped.rewards[m], rtol=0, atol=0)
    env.close()


@pytest.mark.parametrize("env_id", FAMILIES)
@pytest.mark.parametrize("num_threads", [1, 2])
def test_batched_matches_single_env(env_id, num_threads):
    assert_batched_matches_single_env(env_id, num_threads)


@pytest.mark.parametrize("env_id,frame_skip,timestep", [("rlmaml/HalfCheetahVel-v0", 1, None),
                                                         ("rlmaml/AntVel-v0", 2, None), ("rlmaml/AntVel-v0", 1, 0.02)])
def test_frame_skip_and_timestep_set_the_control_interval(env_id, frame_skip, timestep):
    """The original experiments' timing: dt = timestep · frame_skip (v5 models: timestep 0.01 s), in the batched
    engine as in the env, with the render rate at 1/dt."""
    kwargs = {"frame_skip": frame_skip} if timestep is None else {"frame_skip": frame_skip, "timestep": timestep}
    dt = (timestep or 0.01) * frame_skip
    env = gym.make(env_id, **kwargs).unwrapped
    assert env.dt == pytest.approx(dt) and env.model.opt.timestep == pytest.approx(timestep or 0.01)
    assert env.metadata["render_fps"] == round(1 / dt)
    env.reset(seed=0, options={"task": env.sample_tasks(1)[0]})
    x_before = env.data.qpos[0]
    _, _, _, _, info = env.step(np.full(env.action_space.shape, 0.5))
    if env_id.startswith("rlmaml/HalfCheetah"):
        assert info["x_velocity"] == pytest.approx((env.data.qpos[0] - x_before) / dt)
    batched = make_batched(env_id, 2, **kwargs)
    assert batched.frame_skip == frame_skip and batched.dt == pytest.approx(dt)
    batched.close()
    assert_batched_matches_single_env(env_id, 2, **kwargs)


def test_timestep_changes_the_physics_and_rejects_bad_values():
    """timestep=0.02 with frame_skip=1 integrates one RK4 step of 0.02 s: the same dt as two steps of 0.01 s
    but not the same trajectory; a non-positive timestep is a one-line error."""
    finals = []
    for kwargs in ({"frame_skip": 2}, {"frame_skip": 1, "timestep": 0.02}):
        env = gym.make("rlmaml/AntVel-v0", **kwargs).unwrapped
        env.reset(seed=0, options={"task": {"velocity": 1.0}})
        for _ in range(20):
            env.step(np.full(env.action_space.shape, 0.5))
        finals.append(env.data.qpos.copy())
    assert not np.allclose(finals[0], finals[1], atol=1e-6)
    assert np.abs(finals[0] - finals[1]).max() < 0.5  # same model, same controls: close, not identical
    for bad in (0.0, -0.01, float("nan"), "0.02"):
        with pytest.raises(UserError, match="timestep must be a positive number"):
            gym.make("rlmaml/HalfCheetahVel-v0", timestep=bad)


@pytest.mark.parametrize("ant_model", ["gymnasium", "rllab"])
def test_ant_initial_state_by_hand(ant_model):
    """v5: qpos0 (torso at 0.75 m, legs flat) + U(-0.1, 0.1), qvel + 0.1·N(0, 1). rllab: the XML's standing
    init_qpos (torso at 0.55 m, ankles at ±1 rad) + 0.01·N(0, 1), qvel + 0.1·N(0, 1); same draws in the batch."""
    env = gym.make("rlmaml/AntDir-v0", ant_model=ant_model).unwrapped
    env.reset(seed=7, options={"task": {"direction": 1.0}})
    rng = np.random.default_rng(7)
    if ant_model == "gymnasium":
        pose = np.array([0, 0, 0.75, 1, 0, 0, 0] + [0] * 8, dtype=float)
        qpos, qvel = pose + rng.uniform(-0.1, 0.1, 15), 0.1 * rng.standard_normal(14)
    else:
        pose = np.array([0, 0, 0.55, 1, 0, 0, 0, 0, 1, 0, -1, 0, -1, 0, 1], dtype=float)
        qpos, qvel = pose + 0.01 * rng.standard_normal(15), 0.1 * rng.standard_normal(14)
    np.testing.assert_allclose(env.data.qpos, qpos, atol=1e-12)
    np.testing.assert_allclose(env.data.qvel, qvel, atol=1e-12)
    batched = make_batched("rlmaml/AntDir-v0", 2, num_threads=1, ant_model=ant_model)
    batched.set_tasks([{"direction": 1.0}] * 2)
    batched.reset(seed=7)
    np.testing.assert_allclose(batched.qpos[0], qpos, atol=1e-12)
    batched.close()


def test_rllab_ant_has_softer_contacts_and_bad_values_are_named():
    """Every geom gets rllab's solref (0.02, 1) and solimp (0.8, 0.8, 0.01); from one state under the same
    controls the two models part ways once the feet touch the floor."""
    from rlmaml.config import ConfigError
    from rlmaml.rl.config import TrainConfig

    finals = []
    for ant_model in ("gymnasium", "rllab"):
        env = gym.make("rlmaml/AntVel-v0", ant_model=ant_model, frame_skip=1, timestep=0.02).unwrapped
        solimp = (0.8, 0.8, 0.01) if ant_model == "rllab" else (0.9, 0.95, 0.001)
        np.testing.assert_allclose(env.model.geom_solimp[:, :3], np.tile(solimp, (env.model.ngeom, 1)))
        np.testing.assert_allclose(env.model.geom_solref, np.tile((0.02, 1.0), (env.model.ngeom, 1)))
        env.reset(seed=0, options={"task": {"velocity": 1.0}})
        env.set_state(np.array([0, 0, 0.55, 1, 0, 0, 0, 0, 1, 0, -1, 0, -1, 0, 1], dtype=float), np.zeros(14))
        for _ in range(25):
            env.step(np.full(8, 0.5))
        finals.append(env.data.qpos.copy())
    assert np.abs(finals[0] - finals[1]).max() > 1e-3
    with pytest.raises(UserError, match="ant_model must be one of gymnasium, rllab, got 'mujoco'"):
        gym.make("rlmaml/AntGoal-v0", ant_model="mujoco")
    cfg = TrainConfig(env="rlmaml/AntGoal-v0", ant_model="rllab")
    cfg.validate()
    assert cfg.env_kwargs() == {"ant_model": "rllab"} and TrainConfig().env_kwargs() == {}
    with pytest.raises(ConfigError, match="ant_model.*rllab applies to the Ant families"):
        TrainConfig(env="rlmaml/HalfCheetahVel-v0", ant_model="rllab").validate()


@pytest.mark.parametrize("env_id,ant_obs", [("rlmaml/AntVel-v0", "gymnasium"), ("rlmaml/AntGoal-v0", "gymnasium"),
                                            ("rlmaml/AntDir-v0", "rllab")])
def test_batched_matches_single_env_rllab_ant(env_id, ant_obs):
    assert_batched_matches_single_env(env_id, 2, ant_model="rllab", ant_obs=ant_obs, frame_skip=1, timestep=0.02)


def test_rllab_observation_against_forward_kinematics():
    """``ant_obs="rllab"``: [qpos, qvel, clip(cfrc_ext), xmat_torso, com] with the torso's rotation matrix and the
    ant's centre of mass equal to what a separate ``mj_forward`` of the same state gives, the world body's contact
    row included, and ``self.data`` left as ``mj_step`` left it (the velocity estimate reads its ``xpos``)."""
    from rlmaml.config import ConfigError
    from rlmaml.rl.config import TrainConfig

    kwargs = {"ant_model": "rllab", "frame_skip": 1, "timestep": 0.02}
    env = gym.make("rlmaml/AntDir-v0", ant_obs="rllab", **kwargs).unwrapped
    plain = gym.make("rlmaml/AntDir-v0", **kwargs).unwrapped
    m = env.model
    nq, nv, nb = m.nq, m.nv, m.nbody
    assert env.observation_space.shape == (nq + nv + 6 * nb + 9 + 3,) == (125,)
    obs, _ = env.reset(seed=4, options={"task": {"direction": -1.0}})
    plain.reset(seed=4, options={"task": {"direction": -1.0}})
    assert obs.shape == (125,)
    np.testing.assert_array_equal(obs[:nq], env.data.qpos)
    rng = np.random.default_rng(0)
    for _ in range(40):
        action = rng.uniform(-1, 1, size=8)
        obs, reward, *_ = env.step(action)
        plain_obs, plain_reward, *_ = plain.step(action)
        assert reward == plain_reward  # the observation layout changes nothing else
        reference = mujoco.MjData(m)
        reference.qpos[:], reference.qvel[:] = env.data.qpos, env.data.qvel
        mujoco.mj_forward(m, reference)
        np.testing.assert_array_equal(obs[:nq + nv], np.concatenate([env.data.qpos, env.data.qvel]))
        np.testing.assert_array_equal(obs[nq + nv:nq + nv + 6 * nb], np.clip(env.data.cfrc_ext, -1, 1).ravel())
        np.testing.assert_allclose(obs[-12:-3], reference.xmat[1], atol=1e-12)
        np.testing.assert_allclose(obs[-3:], reference.subtree_com[1], atol=1e-12)
        np.testing.assert_array_equal(plain_obs, np.concatenate([obs[2:nq + nv], obs[nq + nv + 6:nq + nv + 6 * nb]]))
    assert abs(obs[0]) > 0.01 and abs(obs[-3] - obs[0]) < 0.5  # it moved; the centre of mass stays near the torso
    with pytest.raises(UserError, match="ant_obs must be one of gymnasium, rllab, got 'v4'"):
        gym.make("rlmaml/AntDir-v0", ant_obs="v4")
    cfg = TrainConfig(env="rlmaml/AntDir-v0", ant_obs="rllab")
    cfg.validate()
    assert cfg.env_kwargs() == {"ant_obs": "rllab"}
    with pytest.raises(ConfigError, match="ant_obs.*rllab applies to the Ant families"):
        TrainConfig(env="rlmaml/HalfCheetahDir-v0", ant_obs="rllab").validate()


def assert_batched_matches_single_env(env_id, num_threads, **env_kwargs):
    n = 3
    batched = make_batched(env_id, n, num_threads=num_threads, record_state=True, **env_kwargs)
    tasks = batched.sample_tasks(n, seed=0)
    batched.set_tasks(tasks)
    obs_b = batched.reset(seed=11)
    singles = []
    for k in range(n):
        env = gym.make(env_id, **env_kwargs).unwrapped
        env.reset(seed=11, options={"task": tasks[k]})
        env.set_state(batched.qpos[k].copy(), batched.qvel[k].copy())   # copy k's initial state
        singles.append(env)
    # copy 0 draws its reset noise exactly like the single env with the same seed
    reference = gym.make(env_id, **env_kwargs).unwrapped
    first_obs, _ = reference.reset(seed=11)
    np.testing.assert_allclose(obs_b[0].numpy(), first_obs, rtol=1e-6, atol=1e-6)

    rng = np.random.default_rng(1)
    for t in range(30):
        actions = rng.uniform(-1.3, 1.3, size=(n, batched.action_dim))
        obs, reward, terminated, info = batched.step(torch.as_tensor(actions))
        for k, env in enumerate(singles):
            o, r, term, _, inf = env.step(actions[k])
            np.testing.assert_allclose(batched.qpos[k], env.data.qpos, rtol=1e-8, atol=1e-8)
            np.testing.assert_allclose(batched.qvel[k], env.data.qvel, rtol=1e-7, atol=1e-7)
            np.testing.assert_allclose(obs[k].numpy(), o, rtol=1e-5, atol=1e-5)
            assert reward[k].item() == pytest.approx(r, rel=1e-5, abs=1e-5)
            assert bool(terminated[k]) == term
            assert info["x_velocity"][k].item() == pytest.approx(inf["x_velocity"], rel=1e-5, abs=1e-5)
            np.testing.assert_allclose(info["qpos"][k].numpy(), env.data.qpos, atol=1e-9)
    batched.close()


@pytest.mark.parametrize("env_id", ["rlmaml/HalfCheetahVel-v0", "rlmaml/AntVel-v0"])
@pytest.mark.parametrize("frame_skip", [0, -1, 1.5, True])
def test_bad_frame_skip_is_a_one_line_error(env_id, frame_skip):
    """Gymnasium's base env accepts these (0 then divides by zero, -1 gives a negative dt); ours names them."""
    with pytest.raises(UserError, match=f"frame_skip must be a positive integer.*got {frame_skip!r}"):
        gym.make(env_id, frame_skip=frame_skip)
    with pytest.raises(UserError, match="frame_skip must be a positive integer"):
        make_batched(env_id, 2, frame_skip=frame_skip)


def test_oracle_and_record_state_shapes():
    env = make_batched("rlmaml/AntGoal-v0", 2, oracle=True)
    env.set_tasks([{"goal": [1.0, 2.0]}, {"goal": [-1.0, 0.5]}])
    obs = env.reset(seed=0)
    assert obs.shape == (2, 105 + 2) and env.observation_dim == 107
    torch.testing.assert_close(obs[:, -2:], torch.tensor([[1.0, 2.0], [-1.0, 0.5]]))
    env.close()


def test_generic_vector_path_for_mujoco():
    env = make_batched("rlmaml/HalfCheetahVel-v0", 2, engine="sync")
    env.set_tasks([{"velocity": 0.5}, {"velocity": 1.5}])
    obs = env.reset(seed=0)
    assert obs.shape == (2, 17)
    _obs, reward, _terminated, info = env.step(torch.zeros(2, 6))
    x_vel = info["x_velocity"]
    torch.testing.assert_close(reward, -(x_vel - torch.tensor([0.5, 1.5])).abs())
    env.close()


def test_rgb_array_render():
    """Offscreen rendering needs MUJOCO_GL before mujoco is imported, so it runs in a fresh interpreter."""
    code = (
        "import gymnasium as gym, numpy as np, rlmaml\n"
        "env = gym.make('rlmaml/AntVel-v0', render_mode='rgb_array', width=64, height=48)\n"
        "env.reset(seed=0)\n"
        "frame = env.render()\n"
        "assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 0, frame.shape\n"
        "print('ok')\n"
    )
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL") or "egl")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


def test_rollout_seeding_reproducible_mujoco():
    from rlmaml.rl.rollout import rollout

    env = make_batched("rlmaml/HalfCheetahDir-v0", 4, record_state=True)
    tasks = [{"direction": 1}, {"direction": -1}]

    def noisy(obs):
        return torch.randn(*obs.shape[:-1], 6)

    a = rollout(env, noisy, tasks, 2, 15, seed=3)
    b = rollout(env, noisy, tasks, 2, 15, seed=3)
    c = rollout(env, noisy, tasks, 2, 15, seed=4)
    assert torch.equal(a.observations, b.observations) and torch.equal(a.rewards, b.rewards)
    assert torch.equal(a.infos["qpos"], b.infos["qpos"])
    assert not torch.equal(a.rewards, c.rewards)
    assert a.infos["qpos"].shape == (15, 2, 2, 9) and a.infos["x_velocity"].shape == (15, 2, 2)
    assert torch.all(a.mask == 1)      # HalfCheetah never terminates
    env.close()


@pytest.mark.parametrize("physics_threads, policy_threads", [(2, 1), (1, 2)])
def test_policy_runs_on_one_torch_thread_while_the_physics_has_its_own(physics_threads, policy_threads):
    """With a threaded physics engine the policy gets one torch thread during the rollout (idle OpenMP
    workers would spin on the physics' cores); the caller's thread count comes back afterwards."""
    from rlmaml.rl.rollout import rollout

    env = make_batched("rlmaml/HalfCheetahVel-v0", 4, num_threads=physics_threads)
    seen = []

    def policy(obs):
        seen.append(torch.get_num_threads())
        return torch.zeros(*obs.shape[:-1], 6)

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rollout(env, policy, env.sample_tasks(2, seed=0), 2, 3, seed=0)
        assert seen == [policy_threads] * 3
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
        env.close()


def test_generic_path_rejects_env_without_task_protocol():
    with pytest.raises(UserError, match="task protocol"):
        make_batched("CartPole-v1", 2)


def test_loading_halfcheetah_keeps_its_mass_and_drops_only_the_assets_deprecation_notice(capfd):
    """Gymnasium's half_cheetah.xml uses ``settotalmass``: MuJoCo would print a deprecation notice on every load.
    The env drops that one notice (the 14 kg it sets stay), restores the warning handler, and forwards others."""
    import mujoco

    from rlmaml.envs.mujoco_tasks import _asset_notices_silenced

    for _ in range(2):
        env = gym.make("rlmaml/HalfCheetahVel-v0")
        assert env.unwrapped.model.body_mass.sum() == pytest.approx(14.0)
    out, err = capfd.readouterr()
    assert "settotalmass" not in out + err
    assert mujoco.get_mju_user_warning() is None

    seen = []
    mujoco.set_mju_user_warning(seen.append)
    try:
        with _asset_notices_silenced():
            handler = mujoco.get_mju_user_warning()
            handler("compiler attribute 'settotalmass' is deprecated and will be removed")
            handler("Nan, Inf or huge value in QACC at DOF 0")
        assert mujoco.get_mju_user_warning() == seen.append
    finally:
        mujoco.set_mju_user_warning(None)
    assert seen == ["Nan, Inf or huge value in QACC at DOF 0"]
