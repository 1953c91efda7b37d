"""Plots: learning curves (RL and supervised), adaptation curves, aggregation over seeds, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rlmaml.errors import UserError
from rlmaml.viz.curves import (
    adaptation_figure,
    adaptation_runs_figure,
    aggregate,
    default_label,
    env_key,
    figure_texts,
    learning_curve_figure,
    load_run,
    paper_reference,
    plot_runs,
    supervised_curve_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _rl_run(root: Path, name: str, offset: float, n: int = 6) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("env: rlmaml/Navigation2D-v0\nseed: 1\n")
    with (d / "metrics.jsonl").open("w") as f:
        for b in range(n):
            f.write(json.dumps({"batch": b, "env_steps": (b + 1) * 1000,
                                "returns_before": -40.0 + offset, "returns_after": -20.0 + b + offset}) + "\n")
    return d


def _eval_run(root: Path, methods: dict) -> Path:
    d = root / "evaluation"
    d.mkdir(parents=True)
    (d / "eval.json").write_text(json.dumps({"env": "rlmaml/HalfCheetahVel-v0", "num_tasks": 5,
                                             "grad_steps": [0, 1, 2, 3], "methods": methods}))
    return d


def test_aggregate_mean_minmax_std_against_hand_values():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([3.0, 6.0, 5.0, 100.0])
    mean, lo, hi = aggregate([a, b], "minmax")
    np.testing.assert_allclose(mean, [2.0, 4.0, 4.0])  # truncated to the shorter run
    np.testing.assert_allclose(lo, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(hi, [3.0, 6.0, 5.0])
    mean, lo, hi = aggregate([a, b], "std")
    np.testing.assert_allclose(hi - mean, [1.0, 2.0, 1.0])
    mean, _, _ = aggregate([np.array([1.0, np.nan]), np.array([3.0, 4.0])])
    np.testing.assert_allclose(mean, [2.0, 4.0])


def test_seed_suffix_groups_runs_and_env_names_map_to_the_paper_table(tmp_path):
    assert default_label(tmp_path / "nav-seed3") == "nav"
    assert default_label(tmp_path / "cheetah_s12") == "cheetah"
    assert default_label(tmp_path / "plain") == "plain"
    assert env_key("rlmaml/HalfCheetahVel-v0") == "halfcheetahvel"
    assert paper_reference("rlmaml/Navigation2D-v0") == [-40.4, -11.7, -3.3]
    assert paper_reference("AntDir-v0") == [8.7, 499.0, 501.0]
    assert paper_reference("Unknown-v0") is None


def test_learning_curve_aggregates_seeds_into_one_labelled_mean(tmp_path):
    runs = [load_run(_rl_run(tmp_path, f"nav-seed{s}", offset=2.0 * s)) for s in range(3)]
    fig = learning_curve_figure(runs)
    (ax,) = fig.axes
    texts = figure_texts(fig)
    assert ax.get_xlabel() == "environment steps"
    assert ax.get_ylabel() == "average return per episode"
    assert "Navigation2D" in ax.get_title()
    assert any("nav: after adaptation (mean of 3" in t for t in texts)
    after = next(line for line in ax.get_lines() if "after" in line.get_label())  # smooth=1: raw means
    np.testing.assert_allclose(after.get_xdata(), [1000, 2000, 3000, 4000, 5000, 6000])
    np.testing.assert_allclose(after.get_ydata(), -20.0 + np.arange(6) + 2.0)  # mean of offsets 0, 2, 4


def test_explicit_labels_keep_runs_apart(tmp_path):
    dirs = [_rl_run(tmp_path, f"r{s}", offset=s) for s in range(2)]
    written = plot_runs(dirs, tmp_path / "curves.png", labels=["first", "second"])
    assert written == [tmp_path / "curves.png"]
    assert written[0].read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(UserError, match="--labels has 1 names for 2"):
        plot_runs(dirs, tmp_path / "x.png", labels=["only"])


def test_supervised_curves_have_loss_and_accuracy_axes(tmp_path):
    d = tmp_path / "omniglot"
    d.mkdir()
    with (d / "metrics.jsonl").open("w") as f:
        for i in range(5):
            f.write(json.dumps({"iteration": i, "query_loss": 1.0 / (i + 1), "query_accuracy": 0.2 * i}) + "\n")
    fig = supervised_curve_figure([load_run(d)])
    assert [ax.get_ylabel() for ax in fig.axes] == ["query loss", "query accuracy"]
    assert all(ax.get_xlabel() == "meta-iteration" for ax in fig.axes)
    written = plot_runs([d])
    assert written == [d / "supervised_curve.png"] and written[0].read_bytes()[:8] == PNG_MAGIC


def test_adaptation_curve_methods_oracle_reference_and_paper_markers(tmp_path):
    methods = {"maml": {"mean": [-130.0, -80.0, -70.0, -62.0], "ci95": [8.0, 6.0, 5.0, 5.0]},
               "random": {"mean": [-300.0, -250.0, -230.0, -220.0], "ci95": [10.0] * 4},
               "oracle": {"mean": [-30.0], "ci95": [3.0]}}
    d = _eval_run(tmp_path, methods)
    fig = adaptation_figure(json.loads((d / "eval.json").read_text()), reference="paper")
    (ax,) = fig.axes
    texts = figure_texts(fig)
    assert ax.get_xlabel() == "number of gradient steps"
    assert ax.get_ylabel() == "average return per episode"
    assert "HalfCheetahVel" in ax.get_title()
    assert {"MAML", "random init", "oracle (-30.0)", "MAML, paper (Finn et al. 2017)"} <= set(texts)
    oracle = next(line for line in ax.get_lines() if line.get_label().startswith("oracle"))
    assert list(oracle.get_ydata()) == [-30.0, -30.0]  # horizontal reference
    paper = next(line for line in ax.get_lines() if "paper" in line.get_label())
    np.testing.assert_allclose(paper.get_ydata(), [-129.5, -78.6, -66.6, -60.8])
    written = plot_runs([d], reference="paper")
    assert written == [d / "adaptation_curve.png"] and written[0].read_bytes()[:8] == PNG_MAGIC


def test_missing_or_empty_run_dirs_give_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist") as exc:
        plot_runs([tmp_path / "nope"])
    assert "\n" not in str(exc.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="has neither metrics.jsonl nor eval.json") as exc:
        plot_runs([empty])
    assert "\n" not in str(exc.value)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "eval.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        plot_runs([bad])


def test_cli_run_prints_written_paths(tmp_path, capsys):
    import argparse

    from rlmaml.cli import plot as plotting

    parser = argparse.ArgumentParser()
    plotting.add_arguments(parser)
    d = _rl_run(tmp_path, "nav", 0.0)
    args = parser.parse_args([str(d), "--out", str(tmp_path / "plots"), "--band", "std"])
    assert plotting.run(args) == 0
    assert (tmp_path / "plots" / "learning_curve.png").is_file()
    assert "learning_curve.png" in capsys.readouterr().out


def test_only_one_kind_of_plot(tmp_path):
    methods = {"maml": {"mean": [-40.0, -10.0], "ci95": [1.0, 1.0]}}
    d = _eval_run(tmp_path, methods)
    with (d / "metrics.jsonl").open("w") as f:
        f.write(json.dumps({"batch": 0, "env_steps": 10, "returns_before": -1.0, "returns_after": 0.0}) + "\n")
    assert [p.name for p in plot_runs([d])] == ["learning_curve.png", "adaptation_curve.png"]
    assert plot_runs([d], tmp_path / "lc.png", only="learning") == [tmp_path / "lc.png"]
    with pytest.raises(UserError, match="no supervised runs"):
        plot_runs([d], only="supervised")
    with pytest.raises(UserError, match="--only 'bogus' is not allowed"):
        plot_runs([d], only="bogus")


def test_runs_without_inner_steps_draw_one_curve(tmp_path):
    d = tmp_path / "pretrained"
    d.mkdir()
    with (d / "metrics.jsonl").open("w") as f:
        for b in range(3):
            f.write(json.dumps({"batch": b, "env_steps": b + 1, "returns_before": -b, "returns_after": -b}) + "\n")
    maml = _rl_run(tmp_path, "maml", 0.0, n=3)
    fig = learning_curve_figure([load_run(maml), load_run(d)])
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["maml: after adaptation", "maml: before adaptation", "pretrained: no adaptation"]


def test_moving_average_against_hand_values():
    from rlmaml.stats import moving_average
    from rlmaml.viz.curves import smoothing_window

    np.testing.assert_allclose(moving_average(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(moving_average(np.array([1.0, np.nan, 5.0]), 3), [1.0, 1.0, 3.0])
    assert smoothing_window(None, 400) == 10 and smoothing_window(None, 10) == 1 and smoothing_window(3, 10) == 3
    with pytest.raises(UserError, match="--smooth must be a positive"):
        smoothing_window(0, 10)


def test_supervised_eval_json_becomes_an_adaptation_curve(tmp_path):
    d = tmp_path / "sinusoid"
    d.mkdir()
    (d / "eval.json").write_text(json.dumps({
        "task": "sinusoid", "algorithm": "maml", "num_tasks": 600, "num_shots": 10, "eval_steps": [0, 1, 10],
        "mse_by_steps": {"0": 3.0, "1": 2.0, "10": 1.2}, "mse_ci95_by_steps": {"0": 0.2, "1": 0.1, "10": 0.1},
        "pretrained": {"mse_by_steps": {"0": 3.1, "1": 2.7, "10": 2.2},
                       "mse_ci95_by_steps": {"0": 0.2, "1": 0.2, "10": 0.2}}}))
    run = load_run(d)
    assert run.evaluation["grad_steps"] == [0, 1, 10] and run.evaluation["metric"] == "mse"
    fig = adaptation_figure(run.evaluation)
    (ax,) = fig.axes
    assert ax.get_ylabel() == "query mean squared error" and "sinusoid 10-shot" in ax.get_title()
    assert list(ax.get_xticks()) == [0, 1, 10]
    maml = next(c for c in ax.containers if c.get_label() == "MAML")  # the errorbar of the MAML method
    np.testing.assert_allclose(maml.lines[0].get_ydata(), [3.0, 2.0, 1.2])
    (d / "eval.json").write_text(json.dumps({"task": "omniglot"}))
    with pytest.raises(UserError, match="no 'methods' mapping"):
        load_run(d)


def test_adaptation_curves_of_several_runs_average_runs_sharing_a_label(tmp_path):
    """Seeds 0 and 1 share a label: their mean with the min-max band; a single run keeps its CI over tasks."""
    dirs = []
    for name, own in (("a-seed0", [-40.0, -12.0, -6.0]), ("a-seed1", [-38.0, -10.0, -4.0]),
                      ("b", [-39.0, -20.0, -15.0])):
        root = tmp_path / name
        d = _eval_run(root, {"maml": {"mean": own, "ci95": [2.0, 1.0, 0.5]},
                             "random": {"mean": [-70.0] * 3, "ci95": [1.0] * 3}})
        eval_json = json.loads((d / "eval.json").read_text())
        (d / "eval.json").write_text(json.dumps({**eval_json, "env": "rlmaml/Navigation2D-v0",
                                                 "grad_steps": [0, 1, 2]}))
        dirs.append(d)
    labels = ["alpha 0.5", "alpha 0.5", "alpha 0.1"]
    fig = adaptation_runs_figure([load_run(d, lab) for d, lab in zip(dirs, labels)], reference="paper")
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["alpha 0.5 (mean of 2, min–max)"].get_ydata(), [-39.0, -11.0, -5.0])
    np.testing.assert_allclose(lines["alpha 0.1 (95% CI over tasks)"].get_ydata(), [-39.0, -20.0, -15.0])
    np.testing.assert_allclose(lines["MAML, paper (Finn et al. 2017)"].get_ydata(), [-40.4, -11.7, -3.3])
    bands = [c.get_paths()[0].vertices for c in ax.collections]
    np.testing.assert_allclose(bands[0][:, 1].min(), -40.0)  # min over the two seeds at step 0
    np.testing.assert_allclose(bands[0][:, 1].max(), -4.0)   # max over the two seeds at step 2
    np.testing.assert_allclose(bands[1][:, 1].min(), -41.0)  # the single run: mean - CI at step 0
    written = plot_runs(dirs, tmp_path / "cmp.png", labels=labels, only="adaptation")
    assert written == [tmp_path / "cmp.png"] and written[0].read_bytes()[:8] == PNG_MAGIC


def test_success_panels_for_envs_that_report_success(tmp_path):
    """Meta-World runs log success_before/after and eval.json carries success (per class for ML10): both figures
    get a success-rate panel beside the return, with the logged values as the curve and a line per class."""
    d = tmp_path / "ml10-seed0"
    d.mkdir()
    (d / "config.yaml").write_text("env: metaworld/ML10\nseed: 0\n")
    with (d / "metrics.jsonl").open("w") as f:
        for b in range(4):
            f.write(json.dumps({"batch": b, "env_steps": (b + 1) * 200_000, "returns_before": 100.0 + b,
                                "returns_after": 150.0 + b, "success_before": 0.1 * b,
                                "success_after": 0.2 * b}) + "\n")
    fig = learning_curve_figure([load_run(d)])
    ret, success = fig.axes
    assert ret.get_ylabel() == "average return per episode"
    assert success.get_ylabel() == "success rate (episodes with a success)"
    after = next(line for line in success.get_lines() if "after" in line.get_label())
    np.testing.assert_allclose(after.get_ydata(), [0.0, 0.2, 0.4, 0.6])
    np.testing.assert_allclose(after.get_xdata(), [2e5, 4e5, 6e5, 8e5])
    assert "metaworld/ML10: meta-training" in figure_texts(fig)

    success_block = {"mean": [0.2, 0.5], "ci95": [0.05, 0.06]}
    by_class = {"door-close-v3": [0.4, 0.9], "lever-pull-v3": [0.0, 0.1]}
    methods = {"maml": {"mean": [10.0, 30.0], "ci95": [1.0, 2.0], "success": success_block,
                        "success_by_class": by_class},
               "random": {"mean": [1.0, 2.0], "ci95": [0.5, 0.5], "success": {"mean": [0.0, 0.02], "ci95": [0, 0.01]},
                          "success_by_class": {"door-close-v3": [0.0, 0.0]}}}
    evaluation = {"env": "metaworld/ML10", "num_tasks": 50, "grad_steps": [0, 1], "methods": methods}
    fig = adaptation_figure(evaluation, reference="paper")
    ret, success = fig.axes
    assert success.get_ylabel() == "success rate (episodes with a success)"
    maml = next(c for c in success.containers if c.get_label() == "MAML")  # errorbar: a labelled container
    np.testing.assert_allclose(maml.lines[0].get_ydata(), [0.2, 0.5])
    door = next(line for line in success.get_lines() if line.get_label() == "MAML: door-close-v3")
    np.testing.assert_allclose(door.get_ydata(), [0.4, 0.9])
    assert not any("random init: " in line.get_label() for line in success.get_lines())  # one class: no lines
    assert success.get_ylim() == (-0.02, 1.02)
    (d / "eval.json").write_text(json.dumps(evaluation))
    written = plot_runs([d])
    assert written == [d / "learning_curve.png", d / "adaptation_curve.png"]
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in written)
