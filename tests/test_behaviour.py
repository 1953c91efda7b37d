"""Behaviour pinned by fixtures: the same command and seed give the same metrics as when they were recorded.

Each case runs real commands through the CLI (real physics, real TRPO steps, real files) and compares every
logged number, timings aside, with ``tests/fixtures/behaviour/<case>.json``. The fixtures were recorded with
the commands below; ``RLMAML_RECORD_FIXTURES=1 python -m pytest tests/test_behaviour.py`` records them again
(only do that for an intended change of behaviour, and say so in the commit).

The tolerance (1e-6 relative) leaves room for another CPU's kernels only: on the machine that recorded
them the numbers repeat bit for bit. On a Xeon with AMX tiles the same versions of torch and mujoco give the
first TRPO step's KL a different third digit (navigation: 0.009816 against 0.009775), and the runs diverge
from there; that kind of CPU has its own set, recorded on it, in ``tests/fixtures/behaviour/amx/``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from rlmaml.cli import main


def _cpu_kind() -> str:
    """``"amx"`` on a CPU with AMX tiles (its own fixture set), ``""`` elsewhere (the set the fixtures began with)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return ""
    return "amx" if "amx_tile" in flags else ""


FIXTURES = Path(__file__).parent / "fixtures" / "behaviour" / _cpu_kind()
RECORD = os.environ.get("RLMAML_RECORD_FIXTURES") == "1"
REL_TOL, ABS_TOL = 1e-6, 1e-9
SMALL = ["num_threads=1", "checkpoint_every=1"]
TRAIN_CASES = {
    "navigation-5-batches": ["navigation", "num_batches=5", "meta_batch_size=4", "episodes_per_task=5",
                             "horizon=20", "hidden_sizes=[16,16]", "fisher_tasks=2", "--seed", "3"],
    "navigation-adam-2-steps": ["navigation", "num_batches=3", "meta_batch_size=3", "episodes_per_task=4",
                                "horizon=15", "hidden_sizes=[12]", "num_inner_steps=2", "meta_optimizer=adam",
                                "meta_lr=0.01", "nonlinearity=tanh", "--seed", "1"],
    "navigation-fomaml": ["navigation", "num_batches=2", "meta_batch_size=3", "episodes_per_task=3", "horizon=10",
                          "hidden_sizes=[8]", "first_order=true", "--seed", "2"],
    "halfcheetah-vel-2-batches": ["halfcheetah-vel", "num_batches=2", "meta_batch_size=3", "episodes_per_task=2",
                                  "horizon=20", "hidden_sizes=[16,16]", "fisher_tasks=2", "--seed", "4"],
    "ant-goal-2-batches": ["ant-goal", "num_batches=2", "meta_batch_size=2", "episodes_per_task=2",
                           "horizon=20", "hidden_sizes=[16,16]", "fisher_tasks=0", "--seed", "5"],
}
TIMING = ("seconds",)


def _strip(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in records]


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _close(a, b, where: str) -> None:
    """a == b, numbers to REL_TOL; NaNs equal NaNs; raises with the path of the first difference."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isnan(a) and math.isnan(b):
            return
        assert math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _check(case: str, observed) -> None:
    path = FIXTURES / f"{case}.json"
    if RECORD:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(observed, indent=1) + "\n")
        pytest.skip(f"recorded {path}")
    assert path.is_file(), f"missing fixture {path}; record it with RLMAML_RECORD_FIXTURES=1"
    _close(observed, json.loads(path.read_text()), case)


def _train(out: Path, args: list[str]) -> list[dict]:
    assert main(["train", args[0], *SMALL, *args[1:], "--out", str(out), "--no-progress"]) == 0
    return _strip(_read_jsonl(out / "metrics.jsonl"))


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_training_metrics_are_unchanged(case, tmp_path):
    _check(case, _train(tmp_path / case, TRAIN_CASES[case]))


def test_evaluate_with_compare_is_unchanged(tmp_path):
    tiny = ["meta_batch_size=3", "episodes_per_task=3", "horizon=12", "hidden_sizes=[8]"]
    maml, pretrained, oracle = (tmp_path / name for name in ("maml", "pretrained", "oracle"))
    _train(maml, ["navigation", "num_batches=2", *tiny])
    _train(pretrained, ["navigation", "num_batches=2", "algorithm=pretrained", "num_inner_steps=0", *tiny])
    _train(oracle, ["navigation", "num_batches=2", "algorithm=oracle", "num_inner_steps=0", *tiny])
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(maml), "--compare", str(pretrained), str(oracle), "--num-tasks", "4",
                 "--grad-steps", "2", "--seed", "7", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for method in result["methods"].values():
        method.pop("run_dir")
    _check("evaluate-compare", result)


def test_supervised_sinusoid_is_unchanged(tmp_path):
    out = tmp_path / "sinusoid"
    assert main(["supervised", "sinusoid", "num_iterations=6", "meta_batch_size=4", "hidden_sizes=[16,16]",
                 "eval_tasks=8", "eval_steps=[0,1,3]", "checkpoint_every=3", "--seed", "2", "--out", str(out),
                 "--no-progress"]) == 0
    evaluation = json.loads((out / "eval.json").read_text())
    evaluation.pop("run_dir", None)
    _check("supervised-sinusoid", {"metrics": _strip(_read_jsonl(out / "metrics.jsonl")),
                                   "eval": _strip([evaluation])[0]})
