"""The native batched engine for Meta-World (rlmaml/envs/metaworld_native.py) against the Gymnasium-vector path
(``make_batched(env_id, n, engine="sync")``): for ML1 reach-v3 and push-v3, observations, rewards, terminations and
every info entry are equal bit for bit over 500 steps of random actions, and along the scripted experts' episodes
(pushing, grasping, success); the experts succeed through it; ML10's 15 classes step together and move between
copies; a reset changes only the model frames the engine keeps; bad input is a one-line error. Each other class
alone: tests/test_metaworld_classes.py."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch
from test_metaworld_classes import expert, random_actions, run  # the episodes both files compare

from rlmaml.envs import family, make_batched
from rlmaml.envs import metaworld_tasks as mwt
from rlmaml.errors import UserError
from rlmaml.rl.rollout import rollout

pytestmark = pytest.mark.skipif(importlib.util.find_spec("metaworld") is None,
                                reason=f"metaworld is not installed ({mwt.INSTALL_COMMAND})")
TASKS = ("reach-v3", "push-v3")


def _native(env_id, num_envs, **kwargs):
    from rlmaml.envs.metaworld_native import MetaWorldNativeEnv

    return MetaWorldNativeEnv(env_id, num_envs, **kwargs)


def _assert_same(a, b):
    (obs_a, rew_a, done_a, info_a), (obs_b, rew_b, done_b, info_b) = a, b
    assert obs_a.dtype == obs_b.dtype == torch.float32 and obs_a.shape == obs_b.shape
    assert (obs_a - obs_b).abs().max().item() == 0.0  # bit for bit
    assert torch.equal(rew_a, rew_b) and torch.equal(done_a, done_b)
    assert set(info_a) == set(info_b) and "success" in info_a
    for key in info_a:
        assert info_a[key].dtype == info_b[key].dtype == torch.float32 and torch.equal(info_a[key], info_b[key]), key


@pytest.mark.parametrize("task", TASKS)
def test_random_actions_give_the_sync_paths_trajectories_bit_for_bit(task):
    """4 copies of distinct train goals, the same reset seed and random actions, the full 500 steps."""
    env_id = f"metaworld/ML1-{task}"
    sync = make_batched(env_id, 4, engine="sync")
    native = make_batched(env_id, 4, engine="native", num_threads=1)
    assert type(native).__name__ == "MetaWorldNativeEnv" and native.max_episode_steps == sync.max_episode_steps == 500
    assert (native.observation_dim, native.action_dim) == (sync.observation_dim, sync.action_dim) == (39, 4)
    assert np.array_equal(native.action_low, sync.action_low) and np.array_equal(native.action_high, sync.action_high)
    tasks = sync.sample_tasks(4, seed=1)
    assert len({t["index"] for t in tasks}) == 4
    a = run(sync, tasks, random_actions(4), 500)
    b = run(native, tasks, random_actions(4), 500)
    _assert_same(a, b)
    done = a[2]
    assert done[499].all() and not done[:499].any()  # the time limit, reported as terminated


@pytest.mark.parametrize("task", TASKS)
def test_scripted_experts_succeed_through_the_native_engine_and_match_the_sync_path(task):
    """metaworld's expert (goal observed) on 4 train and 2 test goals, 500 steps: every episode succeeds, and the
    native episodes equal the sync path's (pushing, grasping and success reward terms included)."""
    env_id = f"metaworld/ML1-{task}"
    native = make_batched(env_id, 6, observe_goal=True, num_threads=1)  # auto: the native engine
    assert type(native).__name__ == "MetaWorldNativeEnv"
    tasks = native.sample_tasks(4, seed=0) + [{"class": task, "index": i, "split": "test"} for i in (0, 1)]
    act = expert(task)
    episodes = rollout(native, act, tasks, episodes_per_task=1, seed=0)
    assert episodes.successes.tolist() == [[1.0]] * 6 and episodes.num_steps == 6 * 500
    sync = make_batched(env_id, 6, engine="sync", observe_goal=True)
    reference = rollout(sync, act, tasks, episodes_per_task=1, seed=0)
    assert torch.equal(episodes.observations, reference.observations)
    assert torch.equal(episodes.rewards, reference.rewards) and torch.equal(episodes.mask, reference.mask)
    assert set(episodes.infos) == set(reference.infos)
    assert all(torch.equal(episodes.infos[k], reference.infos[k]) for k in episodes.infos)
    native.close()
    sync.close()


def test_a_grasped_and_lifted_puck_gives_the_sync_paths_grasp_success():
    """push-v3 with the pick-place expert's grasp, then lifted: ``grasp_success`` (contact forces of both pads) and
    the float32 caging reward of a closing gripper, equal to the sync path's on 2 threads."""
    mwt.import_metaworld()
    import metaworld.policies

    policy = metaworld.policies.SawyerPickPlaceV3Policy()

    def actions(t, obs):
        a = np.stack([policy.get_action(o) for o in obs.numpy().astype(np.float64)])
        if t >= 60:
            a[:, :3] = [0.0, 0.0, 1.0]  # up, the gripper closed
        return torch.as_tensor(a, dtype=torch.float32)

    env_id = "metaworld/ML1-push-v3"
    tasks = [{"class": "push-v3", "index": i, "split": "train"} for i in (0, 5, 9)]
    a = run(make_batched(env_id, 3, engine="sync", observe_goal=True), tasks, actions, 150)
    native = make_batched(env_id, 3, engine="native", observe_goal=True, num_threads=2)
    assert native.physics_threads == 2
    b = run(native, tasks, actions, 150)
    _assert_same(a, b)
    assert (a[3]["grasp_success"].sum(0) > 50).all()  # lifted for most of the last 90 steps


def test_resets_the_active_mask_oracle_observations_and_short_horizons():
    """A reset restores each copy entirely (the next episode repeats the first under the same actions), the
    ``active`` mask freezes finished copies without touching the others, oracle observations carry the task
    vector, and shorter horizons truncate as the sync path does."""
    env_id = "metaworld/ML1-reach-v3"
    native = make_batched(env_id, 3, oracle=True, max_episode_steps=30, num_threads=1)
    sync = make_batched(env_id, 3, engine="sync", oracle=True, max_episode_steps=30)
    tasks = native.sample_tasks(3, seed=4)
    assert native.sample_tasks(3, seed=4) == sync.sample_tasks(3, seed=4) == tasks
    assert native.observation_dim == sync.observation_dim == 39 + 7
    first = run(native, tasks, random_actions(3), 30)
    _assert_same(run(sync, tasks, random_actions(3), 30), first)
    assert first[2][29].all() and not first[2][:29].any()
    env = make_batched(env_id, 3, oracle=True, max_episode_steps=30, num_threads=1)
    env.set_tasks(tasks)
    act = random_actions(3, seed=1)
    for _ in range(2):  # another episode in between
        env.reset(seed=0)
        for t in range(30):
            env.step(act(t, None))
    second = run(env, tasks, random_actions(3), 30)
    _assert_same(first, second)

    env = make_batched(env_id, 3, num_threads=1)
    env.set_tasks(tasks)
    env.reset(seed=0)
    act = random_actions(3)
    for t in range(5):
        env.step(act(t, None))
    frozen, *_ = env.step(act(5, None), active=torch.tensor([True, False, True]))
    again, *_ = env.step(act(6, None), active=torch.tensor([True, False, True]))
    assert torch.equal(frozen[1, :18], again[1, :18]) and not torch.equal(frozen[0], again[0])
    env.close()


@pytest.mark.parametrize("task", TASKS)
def test_a_tasks_initial_state_does_not_depend_on_what_ran_before(task):
    """The engine keeps one snapshot per task: metaworld's reset after other episodes gives the same full
    integration state (warm start included) and observation as a fresh env's."""
    env_id = f"metaworld/ML1-{task}"
    target = {"class": task, "index": 3, "split": "test"}
    fresh = gym.make(env_id).unwrapped
    used = gym.make(env_id).unwrapped
    used.reset(options={"task": {"class": task, "index": 11, "split": "train"}})
    rng = np.random.default_rng(0)
    for _ in range(40):
        used.step(rng.uniform(-1, 1, 4))
    obs_a, _ = fresh.reset(options={"task": target})
    obs_b, _ = used.reset(options={"task": target})
    assert np.array_equal(obs_a, obs_b)
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    states = []
    for env in (fresh, used):
        m, d = env._inner.model, env._inner.data
        state = np.empty(mujoco.mj_stateSize(m, spec))
        mujoco.mj_getState(m, d, state, spec)
        states.append(state)
    assert np.array_equal(*states)


def test_the_records_of_the_native_classes_name_the_native_engine():
    from rlmaml.envs.metaworld_native import NATIVE_CLASSES, native_env_ids

    native = set(native_env_ids())
    assert {f"metaworld/ML1-{t}" for t in NATIVE_CLASSES} <= native and set(TASKS) <= set(NATIVE_CLASSES)
    for record in mwt.METAWORLD_FAMILIES:  # the registered records: with the native engines added
        assert (family(record.env_id).engine is not None) == (record.env_id in native), record.env_id
    assert family("metaworld/ML1-push-v3").engine is not None and family("metaworld/ML45").engine is None


def _error(call, kind=UserError) -> str:
    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_input_is_a_one_line_error():
    env = make_batched("metaworld/ML1-reach-v3", 3, num_threads=1)
    env.set_tasks(env.sample_tasks(3, seed=0))
    assert _error(lambda: env.step(torch.zeros(3, 4))).startswith("reset() must be called before the first step")
    env.reset()
    assert _error(lambda: env.step(torch.zeros(3, 3)), ValueError) == "actions must have shape (3, 4), got (3, 3)"
    assert _error(lambda: env.step(torch.zeros(4)), ValueError) == "actions must have shape (3, 4), got (4,)"
    assert _error(lambda: env.set_tasks([{"class": "push-v3", "index": 0, "split": "train"}] * 3)) == (
        "Meta-World task class 'push-v3' is not in metaworld/ML1-reach-v3's train classes ['reach-v3']")
    env.close()
    from rlmaml.envs.metaworld_native import NATIVE_CLASSES, native_env_ids

    allowed = f"{sorted(NATIVE_CLASSES)} ({', '.join(native_env_ids())}) only"
    assert _error(lambda: _native("metaworld/ML1-assembly-v3", 2)) == (
        f"the native Meta-World engine steps the task classes {allowed}, got task class 'assembly-v3' "
        "('metaworld/ML1-assembly-v3'); use engine='sync' or 'processes'")
    assert _error(lambda: _native("metaworld/ML45", 2)) == (
        f"the native Meta-World engine steps the task classes {allowed}, got env 'metaworld/ML45'; "
        "use engine='sync' or 'processes'")
    message = _error(lambda: make_batched("metaworld/ML1-assembly-v3", 2, engine="native"))
    assert message.startswith("env 'metaworld/ML1-assembly-v3' has no native batched engine; native engines exist")
    assert "metaworld/ML1-push-v3, metaworld/ML1-reach-v3" in message
    assert _error(lambda: make_batched("metaworld/ML1-push-v3", 2, max_episode_steps=501)) == (
        "max_episode_steps must be an integer in [1, 500] (metaworld's max_path_length), got 501")


@pytest.mark.parametrize("task", TASKS)
def test_recorded_states_replay_the_episode_in_the_tasks_scene_and_render_a_video(task, tmp_path):
    """``record_state``: both engines record the same joint states (native float64, sync float32). Replayed in the
    task's scene (:func:`~rlmaml.envs.metaworld_tasks.replay_scene`: the model after the task's reset), the
    recorded qpos put the hand and the object where the observations say they were, for a held-out
    task; the video has a frame per step and phase."""
    from rlmaml.viz import video

    env_id = f"metaworld/ML1-{task}"
    tasks = mwt.held_out_tasks(family(env_id).entry_point().benchmark, 2, seed=3)
    recorded = []
    for engine in ("native", "sync"):
        env = make_batched(env_id, 2, engine=engine, num_threads=1, record_state=True)
        recorded.append(rollout(env, lambda obs: torch.rand(obs.shape[0], 4) * 2 - 1, tasks, 1, horizon=12, seed=5))
        env.close()
    native, sync = recorded
    assert native.infos["qpos"].dtype == torch.float64 and native.infos["qpos"].shape[:3] == (12, 2, 1)
    assert torch.equal(native.infos["qpos"].float(), sync.infos["qpos"]) and torch.equal(native.observations, sync.observations)
    assert (native.infos["qpos"][-1] - native.infos["qpos"][0]).abs().max() > 1e-3  # the random actions move the arm
    model, (goal,) = family(env_id).render.scene(env_id, tasks[1])
    data = mujoco.MjData(model)
    for h in range(11):  # the state after step h is what step h + 1 observes
        data.qpos[:] = native.infos["qpos"][h, 1, 0].numpy()
        mujoco.mj_kinematics(model, data)
        np.testing.assert_allclose(data.body("hand").xpos, native.observations[h + 1, 1, 0, :3].double().numpy(),
                                   atol=1e-6)
        np.testing.assert_allclose(data.body("obj").xpos, native.observations[h + 1, 1, 0, 4:7].double().numpy(),
                                   atol=1e-6)
    sampler = family(env_id).entry_point()
    sampler.reset(options={"task": tasks[1]})
    np.testing.assert_allclose(goal, sampler._inner._target_pos)  # the mark is the task's goal
    try:
        written = video.render_adaptation(env_id, [native, native], tasks, tmp_path, num_tasks=1, width=64, height=48)
    except video.RenderError as exc:  # pragma: no cover - only on machines without EGL/OSMesa
        pytest.skip(str(exc))
    assert [p.name for p in written] == [f"ML1-{task}_task0.mp4"] and video.read_video_frame_count(written[0]) == 24


def test_ml10_copies_of_all_15_classes_give_the_sync_paths_episodes():
    """ML10 on the native engine (its record's engine): one copy of each train and held-out class, 120 steps of
    random actions on 2 threads, equal to the sync path's (observations, terminations and success bit for bit,
    rewards to float32 rounding); then the same copies on other tasks (each copy another class, two copies of one
    task sharing its model), equal again, and the recorded joint states zero-padded to the longest model."""
    from test_metaworld_classes import assert_same_episodes

    ml10 = [(c, "train") for c in mwt.ML10_CLASSES["train"]] + [(c, "test") for c in mwt.ML10_CLASSES["test"]]
    tasks = [{"class": c, "index": i % 50, "split": s} for i, (c, s) in enumerate(ml10)]
    native = make_batched("metaworld/ML10", 15, num_threads=2)
    assert type(native).__name__ == "MetaWorldNativeEnv" and native.physics_threads == 2
    sync = make_batched("metaworld/ML10", 15, engine="sync", max_episode_steps=120)
    native.max_episode_steps = 120
    native.close = lambda: None  # run() closes; the engine runs again below
    assert_same_episodes(run(sync, tasks, random_actions(15), 120), run(native, tasks, random_actions(15), 120))

    again = tasks[1:] + tasks[:1]
    again[5] = again[4]  # two copies of one task
    sync = make_batched("metaworld/ML10", 15, engine="sync", max_episode_steps=40)
    native.max_episode_steps = 40
    a, b = run(sync, again, random_actions(15, seed=3), 40), run(native, again, random_actions(15, seed=3), 40)
    assert_same_episodes(a, b)
    assert native._models[4] is native._models[5] and native._models[3] is not native._models[4]

    # the recorded states (the sync path cannot stack ML10's: its classes' models differ in size)
    native.record_state = True
    obs, _, _, info = run(native, again, random_actions(15, seed=3), 40)
    nq = [native._models[k].nq for k in range(15)]
    assert info["qpos"].shape == (40, 15, max(nq)) and len(set(nq)) > 1
    for k in (0, 8, 14):  # replayed in the task's scene, the hand is where the observation says
        assert torch.equal(info["qpos"][:, k, nq[k]:], torch.zeros(40, max(nq) - nq[k]))
        model, _ = family("metaworld/ML10").render.scene("metaworld/ML10", again[k])
        data = mujoco.MjData(model)
        data.qpos[:] = info["qpos"][-1, k, :nq[k]].numpy()
        mujoco.mj_kinematics(model, data)
        np.testing.assert_allclose(data.body("hand").xpos, obs[-1, k, :3].double().numpy(), atol=1e-6)


def test_a_reset_changes_no_model_array_but_the_frames_the_engine_keeps():
    """The premise of sharing one model per class: across the tasks of each ML10 class, metaworld's reset changes
    no array of the model outside MODEL_FIELDS (it moves bodies and the goal site)."""
    from rlmaml.envs.metaworld_native import MODEL_FIELDS

    def arrays(model):
        out = {}
        for name in dir(model):
            value = getattr(model, name) if not name.startswith("_") else None
            if isinstance(value, np.ndarray):
                out[name] = value.copy()
        return out

    env = mwt.MetaWorldEnv("ML10")
    changed = {}
    for split, classes in mwt.ML10_CLASSES.items():
        for name in classes:
            env.reset(options={"task": {"class": name, "index": 0, "split": split}})
            first = arrays(env._inner.model)
            for index in (1, 2):
                env.reset(options={"task": {"class": name, "index": index, "split": split}})
                now = arrays(env._inner.model)
                changed[name] = {k for k in first if not np.array_equal(first[k], now[k])} | changed.get(name, set())
    assert all(fields <= set(MODEL_FIELDS) for fields in changed.values()), changed
    assert changed["door-open-v3"] == {"body_pos", "site_pos"}  # the door moved with its task
