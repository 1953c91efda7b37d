"""`rlmaml bench rollouts`: one JSON object, at the env's own timing or the one a preset trains at."""

from __future__ import annotations

import json

import pytest

from rlmaml.cli import main

TINY = ["--num-tasks", "1", "--episodes-per-task", "2", "--horizon", "3", "--repeats", "1", "--skip-vector",
        "--num-threads", "1"]


@pytest.mark.parametrize("timing, expected", [([], (5, 0.01)), (["--frame-skip", "1", "--timestep", "0.02"], (1, 0.02))])
def test_bench_rollouts_reports_the_timing_it_measured(capsys, timing, expected):
    assert main(["bench", "rollouts", "--env", "rlmaml/AntVel-v0", *TINY, *timing]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["frame_skip"], result["timestep"]) == pytest.approx(expected)
    assert result["ours"]["env_steps"] == 2 * 3 and result["ours"]["steps_per_s"] > 0
    assert result["limit"]["steps_per_s"] > 0


def test_bench_rollouts_rejects_a_negative_timing(capsys):
    assert main(["bench", "rollouts", "--env", "rlmaml/AntVel-v0", *TINY, "--timestep", "-0.01"]) == 2
    err = capsys.readouterr().err
    assert "--timestep" in err and "-0.01" in err


def test_bench_rollouts_times_gymnasiums_vector_envs_beside_ours(capsys):
    args = [a for a in TINY if a != "--skip-vector"]
    assert main(["bench", "rollouts", "--env", "rlmaml/HalfCheetahVel-v0", *args, "--vector-steps", "4",
                 "--async-envs", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    for engine in ("sync", "async"):
        assert result[engine]["steps_per_s"] > 0
    assert result["ours_over_sync"] == pytest.approx(result["ours"]["steps_per_s"] / result["sync"]["steps_per_s"])
