"""The Meta-World families (rlmaml/envs/metaworld_tasks.py): records, splits, the hidden goal, task dicts, the
scripted experts through the batched path, the presets, and one tiny train + evaluate through the CLI."""

import importlib.util
import json
import pickle
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlmaml.cli import main
from rlmaml.config import load_config
from rlmaml.envs import family, family_ids, make_batched
from rlmaml.envs import metaworld_tasks as mwt
from rlmaml.errors import UserError
from rlmaml.logging import read_metrics
from rlmaml.rl.config import TrainConfig
from rlmaml.rl.evaluation import held_out_tasks
from rlmaml.rl.rollout import rollout

needs_metaworld = pytest.mark.skipif(importlib.util.find_spec("metaworld") is None,
                                     reason=f"metaworld is not installed ({mwt.INSTALL_COMMAND})")
ML10_TEST = {"drawer-open-v3", "door-close-v3", "shelf-place-v3", "sweep-into-v3", "lever-pull-v3"}
PRESETS = {"ml1-reach": "metaworld/ML1-reach-v3", "ml1-push": "metaworld/ML1-push-v3", "ml10": "metaworld/ML10"}
ML10_CLASSES = (*mwt.ML10_CLASSES["train"], *mwt.ML10_CLASSES["test"])
#: the families with a native engine: ML1 of the ML10 classes, and ML10 (tests/test_metaworld_native.py)
NATIVE = {f"metaworld/ML1-{c}" for c in ML10_CLASSES} | {"metaworld/ML10"}


def test_records_register_every_ml1_task_ml10_and_ml45():
    ids = [f"metaworld/ML1-{t}" for t in mwt.ML1_TASKS] + ["metaworld/ML10", "metaworld/ML45"]
    assert len(mwt.ML1_TASKS) == 50 and [i for i in family_ids() if i.startswith("metaworld/")] == ids
    for env_id in ids:
        record = family(env_id)
        assert record.horizon == 500 and record.held_out is not None
        assert (record.engine is not None) == (env_id in NATIVE)  # tests/test_metaworld_native.py
        assert gym.spec(env_id).max_episode_steps == 500


@needs_metaworld
def test_the_ml10_class_list_is_metaworlds():
    import metaworld.env_dict

    assert {split: tuple(classes) for split, classes in metaworld.env_dict.ML10_V3.items()} == mwt.ML10_CLASSES


def test_missing_metaworld_is_a_one_line_error_naming_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "metaworld", None)  # import metaworld raises ImportError
    mwt.import_metaworld.cache_clear()
    try:
        with pytest.raises(UserError, match=r"^the Meta-World families need the metaworld package .*"
                                             r"pip install --no-deps metaworld==3\.1\.1$") as info:
            mwt.import_metaworld()
        assert "\n" not in str(info.value)
    finally:
        mwt.import_metaworld.cache_clear()


@pytest.mark.parametrize(("args", "message"), [
    (("ML2", None), r"^Meta-World benchmark must be one of \['ML1', 'ML10', 'ML45'\], got 'ML2'$"),
    (("ML1", "reach"), r"^ML1 task must be one of the 50 Meta-World task names \(assembly-v3, .*got 'reach'$"),
    (("ML10", "reach-v3"), r"^Meta-World benchmark ML10: a task name goes with ML1 only, got 'reach-v3'$"),
])
def test_bad_benchmarks_are_one_line_errors(args, message):
    with pytest.raises(UserError, match=message):
        mwt.MetaWorldBenchmark(*args)


@needs_metaworld
def test_task_names_and_splits_are_metaworlds():
    metaworld = mwt.import_metaworld()
    assert mwt.ML1_TASKS == tuple(metaworld.env_dict.ALL_V3_ENVIRONMENTS)
    ml10, ml45 = mwt.MetaWorldBenchmark("ML10"), mwt.MetaWorldBenchmark("ML45")
    assert set(ml10.classes("test")) == ML10_TEST and len(ml10.classes("train")) == 10
    assert len(ml45.classes("train")) == 45 and len(ml45.classes("test")) == 5
    for benchmark in (ml10, ml45):
        assert not set(benchmark.classes("train")) & set(benchmark.classes("test"))


@needs_metaworld
def test_held_out_tasks_are_the_test_split_balanced_over_classes():
    ml10 = TrainConfig(env="metaworld/ML10")
    tasks = held_out_tasks(ml10, 40, seed=3)
    assert tasks == held_out_tasks(ml10, 40, seed=3) and {t["split"] for t in tasks} == {"test"}
    assert {c: sum(t["class"] == c for t in tasks) for c in ML10_TEST} == dict.fromkeys(ML10_TEST, 8)
    assert len({(t["class"], t["index"]) for t in tasks}) == 40  # distinct goals
    ml1 = held_out_tasks(TrainConfig(env="metaworld/ML1-reach-v3"), 50, seed=0)
    assert sorted(t["index"] for t in ml1) == list(range(50))  # all 50 held-out goals, once each
    train = make_batched("metaworld/ML10", 1).sample_tasks(20, seed=0)
    assert {t["split"] for t in train} == {"train"} and not {t["class"] for t in train} & ML10_TEST
    assert sorted(sum(t["class"] == c for t in train) for c in {t["class"] for t in train}) == [2] * 10


def _goal(env, task):
    env.reset(options={"task": task})
    return env.unwrapped._inner._target_pos.copy()


@needs_metaworld
def test_ml1_train_and_test_goals_are_disjoint_and_the_goal_is_not_observed():
    env = gym.make("metaworld/ML1-reach-v3")
    train = np.stack([_goal(env, {"class": "reach-v3", "index": i, "split": "train"}) for i in range(50)])
    test = np.stack([_goal(env, {"class": "reach-v3", "index": i, "split": "test"}) for i in range(50)])
    distances = np.linalg.norm(train[:, None] - test[None], axis=-1)
    assert distances.min() > 1e-3 and len(np.unique(train, axis=0)) == 50
    assert np.all(env.observation_space.low[-3:] == 0) and np.all(env.observation_space.high[-3:] == 0)
    obs, _ = env.reset(options={"task": {"class": "reach-v3", "index": 0, "split": "test"}})
    observations = [obs] + [env.step(env.action_space.sample())[0] for _ in range(20)]
    assert np.all(np.stack(observations)[:, -3:] == 0) and obs.shape == (39,)
    seen = gym.make("metaworld/ML1-reach-v3", observe_goal=True)
    obs, _ = seen.reset(options={"task": {"class": "reach-v3", "index": 0, "split": "test"}})
    assert np.allclose(obs[-3:], test[0])


@needs_metaworld
def test_task_dicts_round_trip_and_bad_tasks_are_one_line_errors():
    env = gym.make("metaworld/ML1-push-v3").unwrapped
    tasks = env.sample_tasks(3)
    assert json.loads(json.dumps(tasks)) == tasks and pickle.loads(pickle.dumps(tasks)) == tasks
    a, _ = env.reset(options={"task": tasks[0]})
    b, _ = env.reset(options={"task": json.loads(json.dumps(tasks[0]))})
    assert np.array_equal(a, b)
    assert env.task_vector(tasks[0]).shape == (1 + 6,)
    wrong_class = r"^Meta-World task class 'reach-v3' is not in metaworld/ML1-push-v3's train classes \['push-v3'\]$"
    for bad, message in [({"class": "reach-v3", "index": 0, "split": "train"}, wrong_class),
                         ({"class": "push-v3", "index": 50, "split": "train"}, r"integer in \[0, 50\), got 50$"),
                         ({"class": "push-v3", "index": 0, "split": "val"}, r"split must be one of \['train', 'test'"),
                         ({"class": "push-v3", "index": 0}, r"^task must be a dict with keys")]:
        with pytest.raises(UserError, match=message):
            env.set_task(bad)


@needs_metaworld
def test_episodes_truncate_at_500_and_report_success_every_step():
    env = gym.make("metaworld/ML1-reach-v3")
    env.reset(options={"task": {"class": "reach-v3", "index": 0, "split": "train"}})
    ends = []
    for _ in range(500):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        ends.append((terminated, truncated))
        assert info["success"] in (0.0, 1.0) and 0 <= reward <= 10
    assert ends[-1] == (False, True) and not any(t or u for t, u in ends[:-1])
    assert env.action_space == gym.spaces.Box(-1, 1, (4,), np.float32)


@needs_metaworld
def test_ml10_switches_classes_on_a_held_out_task():
    env = make_batched("metaworld/ML10", 2, max_episode_steps=5, engine="sync")
    env.set_tasks([{"class": "reach-v3", "index": 0, "split": "train"},
                   {"class": "lever-pull-v3", "index": 3, "split": "test"}])
    obs = env.reset(seed=0)
    obs2, _, _, info = env.step(torch.zeros(2, 4))
    assert obs.shape == obs2.shape == (2, 39) and not torch.equal(obs[0], obs[1]) and set(info) >= {"success"}
    assert [type(e.unwrapped._inner).__name__ for e in env._vec.envs] == ["SawyerReachEnvV3", "SawyerLeverPullEnvV3"]
    env.close()


@needs_metaworld
@pytest.mark.parametrize(("task", "expert"), [("reach-v3", "SawyerReachV3Policy"), ("push-v3", "SawyerPushV3Policy"),
                                              ("pick-place-v3", "SawyerPickPlaceV3Policy")])
def test_scripted_experts_succeed_through_the_batched_path(task, expert):
    """metaworld's scripted expert acts through make_batched and rlmaml's rollout; Episodes.successes counts it."""
    mwt.import_metaworld()
    import metaworld.policies

    policy = getattr(metaworld.policies, expert)()

    def act(obs):  # [T, E, 39] float32 -> [T, E, 4]
        flat = obs.reshape(-1, obs.shape[-1]).numpy().astype(np.float64)
        return torch.as_tensor(np.stack([policy.get_action(o) for o in flat]), dtype=torch.float32).reshape(
            *obs.shape[:-1], 4)

    env = make_batched(f"metaworld/ML1-{task}", 4, observe_goal=True, max_episode_steps=100)
    tasks = env.sample_tasks(1, seed=0) + [{"class": task, "index": 0, "split": "test"}]
    episodes = rollout(env, act, tasks, episodes_per_task=2, seed=0)
    env.close()
    assert episodes.successes.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert episodes.num_steps == 4 * 100


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_load_and_carry_the_meta_world_plus_protocol(preset):
    if importlib.util.find_spec("metaworld") is None and preset == "ml10":
        pytest.skip(f"metaworld is not installed ({mwt.INSTALL_COMMAND})")
    cfg = load_config(TrainConfig, preset)
    assert cfg.env == PRESETS[preset]
    assert (cfg.horizon, cfg.episodes_per_task, cfg.meta_batch_size, cfg.num_inner_steps) == (500, 10, 20, 1)
    assert (cfg.fast_lr, cfg.max_kl, cfg.gamma, cfg.gae_lambda) == (0.1, 0.01, 0.99, 1.0)
    assert (tuple(cfg.hidden_sizes), cfg.nonlinearity, cfg.meta_optimizer) == ((100, 100), "tanh", "trpo")


@needs_metaworld
def test_one_meta_batch_of_ml1_reach_trains_and_evaluates_with_success_rates(tmp_path):
    out = tmp_path / "reach"
    assert main(["train", "ml1-reach", "num_batches=1", "meta_batch_size=2", "episodes_per_task=1", "horizon=20",
                 "hidden_sizes=[8]", "num_threads=1", "--out", str(out), "--no-progress"]) == 0
    (record,) = read_metrics(out)
    assert {"success_before", "success_after"} <= set(record) and 0 <= record["success_before"] <= 1
    assert record["env_steps"] == 2 * 2 * 1 * 20
    assert main(["evaluate", str(out), "--num-tasks", "2", "--grad-steps", "1", "--no-random",
                 "--out", str(tmp_path / "eval.json")]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    maml = result["methods"]["maml"]
    assert len(maml["success"]["mean"]) == 2 and list(maml["success_by_class"]) == ["reach-v3"]
    assert [t["split"] for t in result["tasks"]] == ["test", "test"]
