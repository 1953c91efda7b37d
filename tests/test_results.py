"""results/ and its manifest agree, the README's at-a-glance tables are the generated ones, and the analysis code
(rlmaml.analysis, ``rlmaml report``) computes its tables as the hand-made inputs say."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rlmaml.analysis import manifest
from rlmaml.analysis.progress import durations_lines, progress_lines, wall_seconds
from rlmaml.analysis.supervised import summarize
from rlmaml.analysis.tables import eval_table_lines, goal_distance_lines
from rlmaml.analysis.terminations import termination_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
MANIFEST = manifest.load(RESULTS)


# ------------------------------------------------------------------------------------------------ the manifest
def test_every_manifest_run_exists_with_its_config_and_readme():
    missing = [f"{name}/{f}" for name in MANIFEST["runs"] for f in ("config.yaml", "README.md")
               if not (RESULTS / name / f).is_file()]
    assert missing == []


def test_every_run_folder_is_in_the_manifest():
    listed = set(MANIFEST["runs"]) | set(MANIFEST["studies"])
    assert [name for name in manifest.folders(RESULTS) if name not in listed] == []
    runs = {p.parent.relative_to(RESULTS).as_posix() for p in RESULTS.glob("*/*/config.yaml")}
    assert runs == set(MANIFEST["runs"])


def test_manifest_matches_the_folders_and_their_evaluations():
    """Seeds equal the configs', every eval*.json is listed with the protocol it records, glance rows resolve."""
    assert manifest.problems(MANIFEST, RESULTS) == []


@pytest.mark.parametrize("key", ["batch", "iteration"])
def test_manifest_batches_must_be_the_checkpoints_count(tmp_path, key):
    """An unfinished run's progress lives in ``batches``; a count its checkpoint.pt has moved past is reported."""
    from rlmaml.checkpoint import save_checkpoint

    run = tmp_path / "family" / "run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 3\n")
    (run / "README.md").write_text("a run\n")
    save_checkpoint({key: 7, "params": {"w": torch.zeros(2)}}, run / "checkpoint.pt")
    entry = {"seed": 3, "batches": 5}
    assert manifest.problems({"runs": {"family/run": entry}}, tmp_path) == [
        "family/run: batches 5 in the manifest, 7 in checkpoint.pt"]
    entry["batches"] = 7
    assert manifest.problems({"runs": {"family/run": entry}}, tmp_path) == []


@pytest.mark.parametrize("key", ["navigation", "halfcheetah-vel", "halfcheetah-dir", "ant-vel", "ant-dir"])
def test_manifest_paper_numbers_are_the_task_family_records(key):
    from rlmaml.envs.registry import find_family

    assert find_family(key) is not None and list(find_family(key).paper) == MANIFEST["paper"][key]


def test_manifest_overrides_are_what_the_configs_hold():
    """Each override is the config's value (or, for a key the config predates, absent from it)."""
    wrong = []
    for name, entry in MANIFEST["runs"].items():
        config = __import__("yaml").safe_load((RESULTS / name / "config.yaml").read_text())
        wrong += [f"{name}: {k}" for k, v in entry["overrides"].items() if k in config and config[k] != v]
    assert wrong == []


def test_readme_holds_the_generated_glance_tables():
    readme = (ROOT / "README.md").read_text()
    assert manifest.current_block(readme) == manifest.glance_tables(MANIFEST, RESULTS), (
        "README.md's at-a-glance tables are stale: run `rlmaml report glance --write`")


def test_glance_row_averages_its_runs(tmp_path):
    for seed, means in ((0, [-40.0, -12.0, -5.0]), (1, [-38.0, -11.0, -4.0])):
        (tmp_path / f"nav/s{seed}").mkdir(parents=True)
        (tmp_path / f"nav/s{seed}/eval.json").write_text(json.dumps({"methods": {"maml": {"mean": means}}}))
    data = {"runs": {"nav/s0": {"paper": [-40.4, -11.7, -3.3]}, "nav/s1": {}},
            "glance": {"rl": [{"label": "nav", "runs": ["nav/s0", "nav/s1"], "note": "n"}], "supervised": []}}
    row = manifest.glance_tables(data, tmp_path).splitlines()[2]
    assert row == "| [nav](results/nav/s0/README.md) | −39.0 / −11.5 / −4.5 | −40.4 / −11.7 / −3.3 | n |"


def test_metaworld_glance_row_gives_the_success_rate_over_seeds(tmp_path):
    for seed, success in ((0, [0.1, 0.8]), (1, [0.2, 0.6])):
        (tmp_path / f"ml1/s{seed}").mkdir(parents=True)
        (tmp_path / f"ml1/s{seed}/eval.json").write_text(json.dumps(
            {"methods": {"maml": {"mean": [100.0 * (seed + 1), 300.0], "success": {"mean": success}}}}))
    data = {"runs": {}, "glance": {"rl": [], "supervised": [], "metaworld": [
        {"label": "reach", "runs": ["ml1/s0", "ml1/s1"], "published": "p", "note": "n"}]}}
    row = manifest.glance_tables(data, tmp_path).splitlines()[5]
    assert row == "| [reach](results/ml1/s0/README.md) | 2 seeds | 15.0 % (10, 20) → 70.0 % (80, 60) | 150 → 300 | p | n |"


def test_supervised_glance_row_gives_the_last_steps_accuracy_beside_maml_and_mamlpp(tmp_path):
    (tmp_path / "om/s0").mkdir(parents=True)
    (tmp_path / "om/s0/eval.json").write_text(json.dumps(
        {"eval_steps": [0, 3], "accuracy_by_steps": {"0": 0.2, "3": 0.98123}, "ci95_by_steps": {"0": 0.01, "3": 0.00314}}))
    data = {"runs": {"om/s0": {"paper": {"accuracy_percent": 98.7, "ci95_percent": 0.4}}},
            "glance": {"rl": [], "supervised": [{"label": "om", "runs": ["om/s0"], "mamlpp": "99.47 %"}]}}
    lines = manifest.glance_tables(data, tmp_path).splitlines()
    assert lines[3] == "| supervised benchmark | MAML (ours) | baseline | paper (MAML) | MAML++ (published) |"
    assert lines[5] == "| [om](results/om/s0/README.md) | 98.12 ± 0.31 % | — | 98.7 ± 0.4 % | 99.47 % |"


def test_replace_block_keeps_the_rest():
    text = f"a\n{manifest.BEGIN}\nold\n{manifest.END}\nb\n"
    assert manifest.replace_block(text, "new") == f"a\n{manifest.BEGIN}\nnew\n{manifest.END}\nb\n"
    assert manifest.current_block(manifest.replace_block(text, "new")) == "new"


def test_analysis_imports_neither_the_rl_stack_nor_plotting():
    """(``rlmaml`` itself imports torch for the core API; the analysis modules add nothing of rl/ or viz/.)"""
    code = ("import sys, rlmaml.analysis.manifest, rlmaml.analysis.tables, rlmaml.analysis.progress, "
            "rlmaml.analysis.terminations, rlmaml.analysis.supervised; "
            "print([m for m in sys.modules if m.startswith(('rlmaml.rl', 'rlmaml.viz'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------------ the tables
def test_results_table_follows_the_return_with_the_goal_distance():
    """goal_distance_lines on a hand-made eval.json: goals at distances 5, 1, 2 (3-4-5 and axis goals)."""
    result = {"tasks": [{"goal": [3.0, 4.0]}, {"goal": [0.0, -1.0]}, {"goal": [2.0, 0.0]}],
              "methods": {"maml": {"per_task": [[-10.0, 8.0, 4.0], [0.0, 9.0, 6.0]]}}}
    lines = goal_distance_lines(result, n=1)
    after = np.array([0.0, 9.0, 6.0])
    corr = np.corrcoef([5.0, 1.0, 2.0], after)[0, 1]
    assert lines[0] == f"maml: correlation of the goal's distance with the return after 1 step(s): {corr:.2f}"
    assert lines[4:] == ["| 1.00 | 8.0 | 9.0 | +1.0 |", "| 5.00 | -10.0 | 0.0 | +10.0 |"]  # nearest, farthest
    assert goal_distance_lines({"tasks": [{"velocity": 1.0}], "methods": result["methods"]}) == []


def test_eval_table_orders_methods_and_adds_the_paper_row():
    result = {"env": "rlmaml/HalfCheetahVel-v0", "num_tasks": 2, "seed": 7, "episodes_per_task": 3,
              "grad_steps": [0, 1], "step_sizes": [0.1], "tasks": [{"velocity": 1.0}, {"velocity": 2.0}],
              "methods": {"random": {"mean": [-3.0, -2.0], "ci95": [1.0, 1.0]},
                          "maml": {"mean": [-2.0, -1.0], "ci95": [0.5, 0.25], "trained_batches": 5}}}
    lines = eval_table_lines(result, [-1.5, -0.5, 0.0])
    assert lines[0] == ("rlmaml/HalfCheetahVel-v0: 2 held-out tasks (seed 7), 3 episodes per task and phase, "
                        "inner step sizes 0.1; mean ± 95% CI over tasks.")
    assert lines[2:] == ["| method | 0 steps | 1 step |", "|---|---|---|",
                         "| MAML (ours), 5 batches | -2.0 ± 0.5 | -1.0 ± 0.2 |",
                         "| random init (ours) | -3.0 ± 1.0 | -2.0 ± 1.0 |", "| MAML (paper) | -1.5 | -0.5 |"]


def test_eval_table_adds_success_rates_and_the_classes_of_ml10():
    result = {"env": "metaworld/ML10", "num_tasks": 2, "seed": 7, "episodes_per_task": 3, "grad_steps": [0, 1],
              "step_sizes": [0.1], "tasks": [{"class": "a"}, {"class": "b"}],
              "methods": {"maml": {"mean": [1.0, 2.0], "ci95": [0.5, 0.5],
                                   "success": {"mean": [0.25, 0.5], "ci95": [0.125, 0.25]},
                                   "success_by_class": {"a": [0.5, 1.0], "b": [0.0, 0.0]}},
                          "random": {"mean": [0.0, 0.0], "ci95": [0.0, 0.0],
                                     "success": {"mean": [0.0, 0.0], "ci95": [0.0, 0.0]}}}}
    lines = eval_table_lines(result)
    assert lines[6:] == ["", "| success rate, % | 0 steps | 1 step |", "|---|---|---|",
                         "| MAML (ours) | 25.0 ± 12.5 | 50.0 ± 25.0 |", "| random init (ours) | 0.0 ± 0.0 | 0.0 ± 0.0 |",
                         "| MAML (ours): a | 50.0 | 100.0 |", "| MAML (ours): b | 0.0 | 0.0 |"]


def test_progress_counts_the_checkpoint_batches_and_leaves_pauses_out():
    rows = [{"sample_seconds": 1.0, "update_seconds": 1.0, "returns_before": -b, "returns_after": -b / 2,
             "env_steps": 10 * (b + 1)} for b in range(5)]
    rows[3]["step_accepted"] = False
    written = {0: 100.0, 1: 102.5, 2: 1000.0, 3: 1002.0, 4: 1004.0}  # stopped and resumed after batch 1
    assert wall_seconds(written, [2.0] * 4) == (2.0 + 2.5 + 2.0 + 2.0, 1)
    assert wall_seconds({0: 1.0, 2: 2.0}, [2.0, 2.0]) is None  # the events miss batch 1
    lines = progress_lines(rows, batches=4, env_steps=40, block=2, skip=0, written=written)
    assert lines[0] == ("4 meta-batches, 40 env steps, 3 of 4 TRPO steps accepted; median sampling 1.0 s and update "
                        "1.0 s per batch from batch 0 on")
    assert lines[1] == "wall time 0.1 min (1 pause between sessions left out); logged sampling + update 0.1 min"
    assert lines[3:] == ["| batches | 0–1 | 2–3 |", "|---|---|---|", "| before | −0.5 | −2.5 |",
                         "| after one step | −0.2 | −1.2 |"]
    table = durations_lines([("r", rows, written), ("s", [{"seconds": 120.0}], None)])
    assert table[2:] == ["| r | 5 | 50 | 0.2 | 0.2 |", "| s | 1 | — | 2.0 | — |"]  # 10.5 s of wall time; no events


def test_ant_termination_table_splits_early_ends_by_cause():
    """Horizon 4, one task (d = -1) x 3 episodes that run the full horizon, fall (z = 0.1) after 2 steps and jump
    (z = 1.2) after 3."""
    mask = torch.ones(4, 1, 3)
    mask[2:, 0, 1] = 0
    mask[3:, 0, 2] = 0
    qpos = torch.full((4, 1, 3, 15), 0.5)
    qpos[1, 0, 1, 2] = 0.1
    qpos[2, 0, 2, 2] = 1.2
    velocity = -torch.ones(4, 1, 3)  # 1 m/s in the commanded direction d = -1
    eps = SimpleNamespace(mask=mask, returns=mask.sum(dim=0),  # rewards 1 per step: returns 4, 2, 3
                          infos={"qpos": qpos, "x_velocity": velocity})
    rows = termination_table(4, [{"direction": -1.0}], [eps])
    assert rows[2] == "| 0 | 66.7% | 33.3% | 33.3% | 4.0 | 2.5 | 1.00 |"
    rows = termination_table(4, [{"velocity": 0.5}], [eps])
    assert rows[0].endswith("| \\|v_x − v*\\| (m/s) |") and rows[2].endswith("| 2.5 | 1.50 |")  # |-1 - 0.5|
    # AntGoal, goal (2, 0): the torso walks x = 0, 1, 2, 3 along y = 0. Episodes end at x = 3 (passed the goal at
    # x = 2), x = 1 (the later, closer steps are masked out) and x = 2: final 1, 1, 0 and closest 0, 1, 0.
    qpos[..., 0] = torch.arange(4.0)[:, None, None]
    qpos[..., 1] = 0.0
    rows = termination_table(4, [{"goal": [2.0, 0.0]}], [eps])
    assert len(rows[1].split("|")) == len(rows[0].split("|")) == 10
    assert rows[2] == "| 0 | 66.7% | 33.3% | 33.3% | 4.0 | 2.5 | 0.67 | 0.33 |"


@pytest.mark.parametrize("run", ["sinusoid/preset", "omniglot/5way-1shot", "omniglot/5way-1shot-60k"])
def test_supervised_readmes_are_the_generated_ones(run):
    assert (RESULTS / run / "README.md").read_text() == summarize(RESULTS / run)


# ------------------------------------------------------------------------------------------------ the command
def _report(*argv):
    from rlmaml.cli import main

    return main(["report", *argv])


def test_report_glance_check_passes_and_table_prints(capsys):
    assert _report("glance", "--check") == 0
    assert _report("table", str(RESULTS / "ant-goal/preset/eval.json")) == 0
    out = capsys.readouterr().out
    assert "| MAML (ours), 500 batches | 216.1 ± 71.4 | 307.1 ± 66.8 |" in out
    assert "maml: correlation of the goal's distance with the return after 3 step(s): -0.95" in out


def test_report_rejects_a_missing_file(capsys, tmp_path):
    assert _report("table", str(tmp_path / "eval.json")) == 2
    assert "rlmaml: error: no such file" in capsys.readouterr().err


def test_report_terminations_runs_an_ant_evaluation(capsys):
    pytest.importorskip("mujoco")
    assert _report("terminations", str(RESULTS / "ant-goal/preset"), "--num-tasks", "1",
                   "--episodes-per-task", "1", "--grad-steps", "1") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{RESULTS / 'ant-goal/preset'}: rlmaml/AntGoal-v0, 1 held-out tasks (seed 1000), "
                             "1 episodes per task and phase")
    assert out[-4].startswith("| phase | ended early |") and out[-1].startswith("| 1 |")


def test_in_progress_readme_counts_the_checkpoint_and_shows_the_curve(tmp_path):
    """A run in training: the README counts the iterations its checkpoint holds (those logged after it are
    redone on resume), averages only those, and shows the curve so far once supervised-summary drew it."""
    import json

    import torch
    import yaml

    run = tmp_path / "omniglot" / "20way-1shot-60k"
    run.mkdir(parents=True)
    cfg = yaml.safe_load((RESULTS / "omniglot/20way-1shot-60k/config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    records = [{"iteration": i, "query_loss": 1.0, "skipped": 0, "query_accuracy": 0.5 if i < 100 else 0.9,
                "seconds": 3.6 * (i + 1)} for i in range(130)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    torch.save({"iteration": 100}, run / "checkpoint.pt")
    assert _report("supervised-summary", str(run)) == 0
    text = (run / "README.md").read_text()
    assert "**In progress:** 100 of 60000 meta-iterations of 16 tasks, 0.10 h" in text
    assert "mean of the last 100 meta-batches: 50.00 %" in text
    assert "RESUME=1 scripts/supervised_results.sh omniglot-20way" in text
    assert (run / "learning_curve.png").stat().st_size > 0 and "![learning curve so far](learning_curve.png)" in text
