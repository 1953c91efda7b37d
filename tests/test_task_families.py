"""The task-family registry: rlmaml's six records, the engine each gets, a family of one's own (tests/toy_family.py)
trained and evaluated through the CLI as ``env=module:EnvId``, and the one-line errors around it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import toy_family  # noqa: F401 - registers toy/PointGoal-v0 (with a record) and toy/PlainPointGoal-v0 (without)
import yaml

from rlmaml.cli import main
from rlmaml.config import ConfigError
from rlmaml.envs import GymVectorBatchedEnv, TaskFamily, family, family_ids, make_batched, register_family
from rlmaml.envs.batched_mujoco import BatchedMujocoEnv
from rlmaml.envs.navigation import BatchedNavigation2D
from rlmaml.envs.registry import families_taking
from rlmaml.errors import UserError
from rlmaml.logging import read_metrics
from rlmaml.rl.config import TrainConfig
from rlmaml.viz.curves import paper_reference
from rlmaml.viz.video import render_hints

RLMAML_IDS = ("rlmaml/Navigation2D-v0", "rlmaml/HalfCheetahVel-v0", "rlmaml/HalfCheetahDir-v0", "rlmaml/AntVel-v0",
              "rlmaml/AntDir-v0", "rlmaml/AntGoal-v0")
TOY = "toy_family:toy/PointGoal-v0"
PLAIN_TOY = "toy_family:toy/PlainPointGoal-v0"
TESTS = Path(__file__).parent


def test_rlmaml_records_name_their_engine_options_render_hints_and_paper_numbers():
    assert family_ids()[:6] == RLMAML_IDS
    assert isinstance(make_batched("rlmaml/Navigation2D-v0", 2), BatchedNavigation2D)
    for env_id in RLMAML_IDS[1:]:
        assert family(env_id).engine is not None and family(env_id).horizon == 200
        assert family(env_id).render.kind == "mujoco"
    assert isinstance(make_batched("rlmaml/HalfCheetahDir-v0", 2, num_threads=1), BatchedMujocoEnv)
    assert [f.env_id for f in families_taking("ant_model")] == list(RLMAML_IDS[3:])
    assert [f.env_id for f in families_taking("frame_skip")] == list(RLMAML_IDS[1:])
    assert family("rlmaml/AntGoal-v0").option("ant_obs").allowed == ("gymnasium", "rllab")
    assert family("rlmaml/Navigation2D-v0").render.kind == "planar" and family("rlmaml/AntDir-v0").render.asset == "ant.xml"
    assert family("rlmaml/HalfCheetahVel-v0").paper == (-129.5, -78.6, -66.6, -60.8)
    assert paper_reference("2DNavigation-v0") == [-40.4, -11.7, -3.3]  # an alias of older runs
    assert family("rlmaml/AntGoal-v0").paper is None and paper_reference("rlmaml/AntGoal-v0") is None


def test_a_family_without_a_native_engine_runs_on_gymnasium_vector():
    record = family(TOY)
    assert record == family("toy/PointGoal-v0") and record.engine is None and record.horizon == 20
    env = make_batched(TOY, 3, max_episode_steps=5)
    assert isinstance(env, GymVectorBatchedEnv) and env.max_episode_steps == 5
    tasks = env.sample_tasks(3, seed=0)
    assert tasks == env.sample_tasks(3, seed=0) and all(-1 <= g <= 1 for t in tasks for g in t["goal"])
    env.close()
    with pytest.raises(UserError, match=r"env 'toy_family:toy/PointGoal-v0' has no native batched engine; "
                                        r"native engines exist for rlmaml/Navigation2D-v0, .*rlmaml/AntGoal-v0, "
                                        r"metaworld/ML1-.*metaworld/ML10$"):
        make_batched(TOY, 1, engine="native")
    assert paper_reference(TOY) is None and render_hints(TOY).kind is None


def test_a_gymnasium_registration_alone_gives_a_generic_record():
    record = family(PLAIN_TOY)
    assert record.env_id == PLAIN_TOY and record.horizon == 20 and record.engine is None and record.options == ()
    assert PLAIN_TOY not in family_ids()  # resolved, not registered


def test_module_colon_id_imports_the_module_that_registers_the_env():
    code = ("import sys; from rlmaml.envs import family; assert 'toy_family' not in sys.modules; "
            f"print(family({PLAIN_TOY!r}).horizon, 'toy_family' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["20", "True"]


@pytest.mark.parametrize("env_id,message", [
    ("Nope-v0", r"^unknown env id 'Nope-v0'; registered task families: rlmaml/Navigation2D-v0, .*module:EnvId$"),
    ("no_such_module:toy/PointGoal-v0", (r"^env 'no_such_module:toy/PointGoal-v0': module 'no_such_module' does not "
                                        r"import \(ModuleNotFoundError: .*\); registered task families: rlmaml/")),
    ("toy_family:toy/Missing-v0", (r"^env 'toy_family:toy/Missing-v0': module 'toy_family' registers no env "
                                  r"'toy/Missing-v0'; registered task families: rlmaml/Navigation2D-v0, ")),
    ("CartPole-v1", (r"^env 'CartPole-v1' does not implement the task protocol \(missing 'sample_tasks', 'set_task', "
                    r"'task_vector'\); subclass rlmaml.envs.task_env.TaskEnvMixin")),
])
def test_unknown_ids_unimportable_modules_and_envs_without_the_protocol_are_one_line_errors(env_id, message):
    for call in (lambda: family(env_id), lambda: make_batched(env_id, 1)):
        with pytest.raises(UserError, match=message) as exc:
            call()
        assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="^config key 'env': " + message.lstrip("^")):
        TrainConfig(env=env_id).validate()


def test_the_config_asks_the_record_which_options_a_family_takes():
    TrainConfig(env=TOY, horizon=20).validate()
    with pytest.raises(ConfigError, match=r"'frame_skip': 1 is not allowed; must be 0 for toy_family:toy/PointGoal-v0 "
                                          r"\(it applies to the MuJoCo families: rlmaml/HalfCheetahVel-v0, "):
        TrainConfig(env=TOY, frame_skip=1).validate()
    with pytest.raises(ConfigError, match=r"'ant_obs': 'rllab' is not allowed; must be gymnasium for "
                                          r"toy_family:toy/PointGoal-v0 \(rllab applies to the Ant families: "):
        TrainConfig(env=TOY, ant_obs="rllab").validate()


def test_register_family_keeps_one_record_per_id():
    record = family("toy/PointGoal-v0")
    assert register_family(record) is record  # the same record again: a no-op
    with pytest.raises(UserError, match="task family 'toy/PointGoal-v0' is already registered with another record"):
        register_family(TaskFamily("toy/PointGoal-v0", record.entry_point, horizon=30))
    with pytest.raises(UserError, match="horizon must be a positive integer or None, got 0"):
        register_family(TaskFamily("toy/Other-v0", record.entry_point, horizon=0))
    assert "toy/Other-v0" not in family_ids()


@pytest.mark.parametrize("env_id", [TOY, PLAIN_TOY])
def test_a_family_of_ones_own_trains_and_evaluates_through_the_cli(tmp_path, env_id):
    run = tmp_path / "run"
    assert main(["train", f"env={env_id}", "num_batches=2", "meta_batch_size=2", "episodes_per_task=2", "horizon=20",
                 "hidden_sizes=[8]", "num_threads=1", "--out", str(run), "--no-progress"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["env"] == env_id  # evaluate re-imports the module
    records = read_metrics(run)
    assert [r["batch"] for r in records] == [0, 1]
    for r in records:
        assert r["env_steps"] > 0 and math.isfinite(r["returns_before"]) and math.isfinite(r["returns_after"])
        assert r["returns_before"] < 0 and r["kl"] >= 0  # rewards are negative distances; TRPO took a step
    assert main(["evaluate", str(run), "--num-tasks", "3", "--grad-steps", "1", "--seed", "1"]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert result["env"] == env_id and result["num_tasks"] == 3 and result["grad_steps"] == [0, 1]
    assert "maml" in result["methods"]
    for method in result["methods"].values():
        assert len(method["mean"]) == 2 and all(math.isfinite(m) and m < 0 for m in method["mean"])
    assert main(["plot", str(run), "--out", str(tmp_path / "plots")]) == 0
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["adaptation_curve.png", "learning_curve.png"]
    if env_id == TOY:  # no render hints: drawn as planar from the recorded infos["position"]
        assert main(["evaluate", str(run), "--num-tasks", "1", "--grad-steps", "1", "--render", "1",
                     "--out", str(tmp_path / "rendered.json")]) == 0
        written = sorted(p.stem for p in tmp_path.rglob("PointGoal-v0_*"))  # .mp4, or .gif without ffmpeg
        assert written == ["PointGoal-v0_task0", "PointGoal-v0_trajectories"]


def test_the_unknown_id_error_lists_the_families_in_one_short_line():
    from rlmaml.envs.registry import _family_list, families

    listed = _family_list()
    assert "rlmaml/HalfCheetahVel-v0" in listed and "rlmaml/AntGoal-v0" in listed
    assert all(f.env_id in listed or f.env_id.partition("-")[0] in listed for f in families())
    assert len(listed) < 600
