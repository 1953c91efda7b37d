"""The guides in docs/extending/ run as written: each ``python`` block that a "Save as `FILE`" line introduces is
written to FILE, and each ``bash`` block is run, in a fresh directory, in the order of the page; then the results
the page describes are checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "extending"
BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.DOTALL)
SAVE_AS = re.compile(r"Save as `([^`]+\.py)`")


def walk_guide(name: str, workdir: Path) -> list[str]:
    """Run the page ``docs/extending/<name>``; returns the bash commands it ran."""
    text = (DOCS / name).read_text()
    ran, position = [], 0
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    for match in BLOCK.finditer(text):
        kind, body = match.groups()
        before = text[position:match.start()]
        position = match.end()
        if kind == "python":
            saved = SAVE_AS.findall(before)
            assert saved, f"{name}: a python block without a 'Save as `FILE`' line before it"
            (workdir / saved[-1]).write_text(body)
        else:
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=workdir, env=env,
                                    capture_output=True, text=True, timeout=600, check=False)
            assert result.returncode == 0, f"{name}: {body}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            ran.append(body)
    assert ran, f"{name} runs nothing"
    return ran


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_meta_optimizer_guide(tmp_path):
    walk_guide("meta-optimizer.md", tmp_path)
    run = tmp_path / "runs" / "sgd"
    records = _metrics(run)
    assert [r["batch"] for r in records] == [0, 1, 2]  # two batches, then resumed to three
    for r in records:
        assert r["step_accepted"] and r["surrogate_after"] < r["surrogate_before"]
    evaluation = json.loads((run / "eval.json").read_text())
    assert set(evaluation["methods"]) == {"maml", "random"} and evaluation["grad_steps"] == [0, 1]
    assert "meta_optimizer: my_algos:sgd" in (run / "config.yaml").read_text()
    sys.path.insert(0, str(tmp_path))  # the registered class, built as the trainer builds it, has the protocol
    try:
        from rlmaml.config import build_config
        from rlmaml.rl.algos import MetaOptimizer, make_meta_optimizer
        from rlmaml.rl.config import TrainConfig
        from rlmaml.rl.policies import build_policy

        cfg = build_config(TrainConfig, {"meta_optimizer": "my_algos:sgd"})
        policy = build_policy(2, 2, [4])
        learner = make_meta_optimizer(cfg, policy, dict(policy.named_parameters()))
        assert type(learner).__name__ == "SGD" and isinstance(learner, MetaOptimizer)
    finally:
        sys.path.remove(str(tmp_path))


def test_an_unknown_or_unimportable_plugin_is_a_one_line_error(tmp_path, capsys):
    from rlmaml.cli import main

    assert main(["train", "navigation", "meta_optimizer=nope", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'meta_optimizer': 'nope' is not allowed" in err and "trpo, adam" in err
    assert main(["train", "navigation", "sampler=no_such_module:x", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "module 'no_such_module' does not import" in err
    assert main(["train", "navigation", "inner_loss=rlmaml.rl.objectives:dice", "--out", str(tmp_path / "c")]) == 2
    assert "registers no 'dice'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(p.name for p in DOCS.glob("*.md")))
def test_every_guide_is_walked_by_a_test(name):
    assert f'walk_guide("{name}"' in Path(__file__).read_text()


def test_sampler_guide(tmp_path):
    walk_guide("sampler.md", tmp_path)
    records = _metrics(tmp_path / "runs" / "chunked")
    assert [r["batch"] for r in records] == [0, 1] and all(r["step_accepted"] for r in records)
    assert records[0]["env_steps"] > 0
    evaluation = json.loads((tmp_path / "runs" / "chunked" / "eval.json").read_text())
    assert len(evaluation["methods"]["maml"]["per_task"][0]) == 4  # 4 tasks: chunks of 2 and 2

    def without_timing(run):
        return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in _metrics(tmp_path / "runs" / run)]

    assert without_timing("two-tasks-local") == without_timing("two-tasks-chunked")


def test_task_family_guide(tmp_path):
    walk_guide("task-family.md", tmp_path)
    run = tmp_path / "runs" / "velocity"
    records = _metrics(run)
    assert [r["batch"] for r in records] == [0, 1]
    for r in records:  # rewards are −|v − v*| ≤ 0 per step, 50 steps
        assert -50 <= r["returns_before"] < 0 and -50 <= r["returns_after"] < 0
    assert records[-1]["env_steps"] == 2 * 2 * 5 * 5 * 50  # batches × phases × tasks × episodes × H
    assert "env: my_tasks:my/PointVelocity-v0" in (run / "config.yaml").read_text()
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["env"] == "my_tasks:my/PointVelocity-v0" and set(evaluation["methods"]) == {"maml", "random"}
    assert [len(m) for m in evaluation["methods"]["maml"]["per_task"]] == [5, 5, 5]
    assert (run / "learning_curve.png").stat().st_size > 0
    sys.path.insert(0, str(tmp_path))
    try:
        from rlmaml.envs import family

        record = family("my_tasks:my/PointVelocity-v0")
        assert record.env_id == "my/PointVelocity-v0" and record.horizon == 50 and record.engine is None
    finally:
        sys.path.remove(str(tmp_path))


def test_metaworld_class_guide(tmp_path):
    pytest.importorskip("metaworld")
    ran = walk_guide("metaworld-class.md", tmp_path)
    records = _metrics(tmp_path / "runs" / "wall")
    assert [r["batch"] for r in records] == [0] and {"success_before", "success_after"} <= set(records[0])
    assert records[0]["env_steps"] == 2 * 2 * 2 * 50  # phases × tasks × episodes × H
    assert len(ran) == 2
