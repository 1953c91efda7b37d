"""End to end through the CLI: rlmaml train (+ exact resume) and rlmaml evaluate on a tiny navigation config."""

import json

import pytest
import torch
import yaml

from rlmaml.checkpoint import load_checkpoint
from rlmaml.cli import main
from rlmaml.config import load_config, preset_names
from rlmaml.logging import read_metrics
from rlmaml.rl.config import TrainConfig
from rlmaml.rl.evaluation import load_run

TINY = ["meta_batch_size=2", "episodes_per_task=2", "horizon=10", "hidden_sizes=[8]", "checkpoint_every=1",
        "num_threads=1"]
TIMING = {"sample_seconds", "update_seconds"}


def _strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_train_resume_is_exact_and_evaluate_writes_eval_json(tmp_path, capsys):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "navigation", *TINY, "num_batches=4", "--out", str(straight), "--no-progress"]) == 0
    assert main(["train", "navigation", *TINY, "num_batches=2", "--out", str(split), "--no-progress"]) == 0
    assert len(read_metrics(split)) == 2
    assert main(["train", "--resume", str(split), "num_batches=4", "--no-progress"]) == 0

    files = {f: f.stat().st_mtime_ns for f in split.rglob("*")}
    assert main(["train", "--resume", str(split), "--no-progress"]) == 0  # complete: a no-op
    assert {f: f.stat().st_mtime_ns for f in split.rglob("*")} == files
    assert "nothing to train" in capsys.readouterr().err
    a, b = read_metrics(straight), read_metrics(split)
    assert [r["batch"] for r in a] == [0, 1, 2, 3]
    assert _strip(a) == _strip(b)
    assert {"env_steps", "returns_before", "returns_after", "kl", "surrogate_before", "surrogate_after",
            "line_search_steps", "sample_seconds", "update_seconds"} <= set(a[0])
    pa = load_checkpoint(straight)["learner"]["params"]
    pb = load_checkpoint(split)["learner"]["params"]
    assert pa.keys() == pb.keys() and all(torch.equal(pa[n], pb[n]) for n in pa)
    assert yaml.safe_load((split / "config.yaml").read_text())["num_batches"] == 4
    assert list((straight / "tb").glob("events.out.tfevents.*"))
    # the policy acts in units of the action box's half-width (navigation: 0.1), and a loaded run keeps them
    assert load_checkpoint(split)["action_scale"] == pytest.approx([0.1, 0.1])
    assert load_run(split)[1].action_scale.tolist() == pytest.approx([0.1, 0.1])

    out = tmp_path / "eval.json"
    args = ["evaluate", str(split), "--num-tasks", "3", "--grad-steps", "2", "--seed", "5"]
    assert main([*args, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["env"] == "rlmaml/Navigation2D-v0" and result["num_tasks"] == 3
    assert result["grad_steps"] == [0, 1, 2]
    assert result["step_sizes"] == pytest.approx([result["fast_lr"], 0.5 * result["fast_lr"]])
    maml = result["methods"]["maml"]
    assert len(maml["mean"]) == 3 and len(maml["ci95"]) == 3 and all(c >= 0 for c in maml["ci95"])
    per_task = torch.tensor(maml["per_task"])
    assert per_task.shape == (3, 3) and (per_task < 0).all()  # navigation rewards are negative distances
    assert main([*args, "--out", str(tmp_path / "again.json")]) == 0  # same seed: same tasks, same numbers
    assert json.loads((tmp_path / "again.json").read_text())["methods"] == result["methods"]


@pytest.mark.parametrize("override,needle", [
    ("max_kl=0", "max_kl"),
    ("meta_batch_size=-2", "meta_batch_size"),
    ("env=rlmaml/Nope-v0", "env"),
    ("bogus_key=1", "bogus_key"),
    ("algorithm=reptile", "algorithm"),
    ("hidden_sizes=[64,-1]", "hidden_sizes"),
    ("ls_backtrack_ratio=1.5", "ls_backtrack_ratio"),
    ("fisher_tasks=-1", "fisher_tasks"),
    ("fisher_tasks=21", "fisher_tasks"),
    ("frame_skip=1", "frame_skip"),    # navigation has no physics substeps
    ("frame_skip=-1", "frame_skip"),
    ("timestep=0.02", "timestep"),      # nor a physics timestep
    ("timestep=-1", "timestep"),
])
def test_invalid_config_is_a_one_line_error(override, needle, tmp_path, capsys):
    assert main(["train", override, "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlmaml: error:") and needle in err and "\n" not in err


def test_evaluate_without_checkpoint_and_resume_without_run(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("env: rlmaml/Navigation2D-v0\n")
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "checkpoint" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "missing")]) == 2
    assert "rlmaml: error:" in capsys.readouterr().err


def test_oracle_baseline_with_adam_meta_optimizer(tmp_path):
    out = tmp_path / "oracle"
    assert main(["train", "navigation", *TINY, "num_batches=1", "algorithm=oracle", "meta_optimizer=adam",
                 "--out", str(out), "--no-progress"]) == 0
    state = load_checkpoint(out)
    assert state["obs_dim"] == 4  # position + goal appended to the observation
    record = read_metrics(out)[0]
    assert record["returns_before"] == record["returns_after"]  # no inner adaptation
    assert record["step_accepted"]


def test_runs_saved_before_action_scaling_load_in_raw_units(tmp_path, capsys):
    """A checkpoint without ``action_scale`` (and ``normalize_actions=false`` runs) use c = 1; resuming one with
    normalize_actions=true keeps the checkpoint's units and says so."""
    run = tmp_path / "raw"
    assert main(["train", "navigation", *TINY, "num_batches=1", "normalize_actions=false", "--out", str(run),
                 "--no-progress"]) == 0
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert state["action_scale"] == [1.0, 1.0]
    del state["action_scale"]
    torch.save(state, run / "checkpoint.pt")
    assert load_run(run)[1].action_scale.tolist() == [1.0, 1.0]
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "num_batches=2", "normalize_actions=true", "--no-progress"]) == 0
    assert load_checkpoint(run)["action_scale"] == [1.0, 1.0]
    assert "continuing in the checkpoint's units" in capsys.readouterr().err


def test_frame_skip_and_timestep_reach_the_training_and_evaluation_envs(tmp_path, monkeypatch):
    """``frame_skip`` and ``timestep`` (here 3 steps of 0.005 s, dt = 0.015 s, unlike any default) are used for
    training and for evaluation."""
    import rlmaml.envs
    from rlmaml.rl import evaluation as evaluate

    built = []
    real = rlmaml.envs.make_batched

    def spy(*args, **kwargs):
        env = real(*args, **kwargs)
        built.append(env.dt)
        return env

    monkeypatch.setattr(rlmaml.envs, "make_batched", spy)
    out = tmp_path / "cheetah"
    assert main(["train", "halfcheetah-vel", *TINY, "num_batches=1", "frame_skip=3", "timestep=0.005",
                 "fisher_tasks=0", "--out", str(out), "--no-progress"]) == 0
    config, policy, params = load_run(out)
    assert (config.frame_skip, config.timestep) == (3, 0.005)
    tasks = evaluate.held_out_tasks(config, 1, seed=0)
    evaluate.adaptation_returns(policy, params, config, tasks, grad_steps=0, seed=0, episodes_per_task=1)
    assert len(built) >= 3 and built == [pytest.approx(0.015)] * len(built)


def test_ant_model_reaches_the_training_and_evaluation_envs(tmp_path, monkeypatch):
    """``ant_model=rllab`` builds every training and evaluation env with the original experiments' Ant."""
    import rlmaml.envs
    from rlmaml.rl import evaluation as evaluate

    built = []
    real = rlmaml.envs.make_batched

    def spy(*args, **kwargs):
        env = real(*args, **kwargs)
        built.append((env.single.ant_model, float(env.model.geom_solimp[0, 0]), float(env.single.init_qpos[2])))
        return env

    monkeypatch.setattr(rlmaml.envs, "make_batched", spy)
    out = tmp_path / "ant"
    assert main(["train", "ant-vel", *TINY, "num_batches=1", "ant_model=rllab", "fisher_tasks=0", "--out", str(out),
                 "--no-progress"]) == 0
    config, policy, params = load_run(out)
    assert config.ant_model == "rllab"
    tasks = evaluate.held_out_tasks(config, 1, seed=0)
    evaluate.adaptation_returns(policy, params, config, tasks, grad_steps=0, seed=0, episodes_per_task=1)
    assert len(built) >= 3 and built == [("rllab", 0.8, 0.55)] * len(built)


RL_PRESETS = {  # preset: (tasks per meta-batch, episodes per task, horizon) of the paper
    "navigation": (20, 20, 100),
    "halfcheetah-vel": (40, 20, 200),
    "halfcheetah-dir": (40, 20, 200),
    "ant-vel": (40, 20, 200),
    "ant-dir": (40, 20, 200),
    "ant-goal": (40, 20, 200),
}


@pytest.mark.parametrize("preset", sorted(RL_PRESETS))
def test_rl_presets_carry_the_paper_configuration(preset):
    cfg = load_config(TrainConfig, preset)
    assert (cfg.meta_batch_size, cfg.episodes_per_task, cfg.horizon) == RL_PRESETS[preset]
    assert (cfg.meta_optimizer, cfg.first_order, cfg.num_inner_steps) == ("trpo", False, 1)
    assert (cfg.max_kl, cfg.cg_iters, cfg.cg_damping, cfg.gamma, cfg.gae_lambda) == (0.01, 10, 1e-5, 0.99, 1.0)
    assert (cfg.ls_max_steps, cfg.ls_backtrack_ratio, cfg.fast_lr) == (15, 0.8, 0.1)
    assert (tuple(cfg.hidden_sizes), cfg.nonlinearity) == ((100, 100), "relu")
    if preset.startswith("ant"):
        assert cfg.ant_model == "rllab"
        # a goal needs the absolute position in the observation (v5's observation leaves it out)
        assert cfg.ant_obs == ("rllab" if preset == "ant-goal" else "gymnasium")


def test_every_shipped_rl_preset_is_covered():
    supervised = {"sinusoid", "omniglot", "omniglot-20way", "omniglot-mamlpp"}
    meta_world = {"ml1-reach", "ml1-push", "ml10"}  # tests/test_metaworld.py checks their protocol
    assert set(preset_names()) - supervised - meta_world == set(RL_PRESETS)
