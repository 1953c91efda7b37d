"""The command line itself: key=value overrides anywhere among the options of every subcommand, one error
wrapper (exit 2 with a one-line message, 130 on an interrupt), only the chosen command's module imported
(tests/test_imports.py checks that no library module imports the commands)."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest
import yaml

from rlmaml.bench import BENCHMARKS
from rlmaml.cli import COMMANDS, IntermixedParser, build_parser, main
from rlmaml.errors import UserError


def _parsed(argv):
    args = vars(build_parser().parse_args(argv))
    return {k: v for k, v in args.items() if not k.startswith("_")}


@pytest.mark.parametrize("orders", [
    (["train", "navigation", "--seed", "3", "num_batches=1"],
     ["train", "--seed", "3", "navigation", "num_batches=1"],
     ["train", "navigation", "num_batches=1", "--seed", "3"]),
    (["supervised", "sinusoid", "--out", "runs/x", "seed=3", "--no-eval", "num_iterations=2"],
     ["supervised", "--out", "runs/x", "--no-eval", "sinusoid", "seed=3", "num_iterations=2"],
     ["supervised", "sinusoid", "seed=3", "num_iterations=2", "--out", "runs/x", "--no-eval"]),
    (["bench", "supervised", "--task", "sinusoid", "meta_batch_size=5", "--batches", "2"],
     ["bench", "supervised", "meta_batch_size=5", "--task", "sinusoid", "--batches", "2"]),
], ids=["train", "supervised", "bench-supervised"])
def test_overrides_before_between_or_after_options(orders):
    first = _parsed(orders[0])
    assert all(_parsed(argv) == first for argv in orders[1:])
    positional = first.get("args", first.get("overrides"))
    assert [a for a in positional if "=" in a] == [a for a in orders[0] if "=" in a]


def test_the_issue_command_line_trains(tmp_path):
    """``rlmaml train navigation --seed 3 num_batches=1``: an override after an option reaches the config."""
    tiny = ["meta_batch_size=2", "episodes_per_task=2", "horizon=10", "hidden_sizes=[8]", "num_threads=1"]
    out = tmp_path / "run"
    assert main(["train", "navigation", "--seed", "3", "num_batches=1", "--out", str(out), "--no-progress", *tiny]) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert (config["seed"], config["num_batches"], config["hidden_sizes"]) == (3, 1, [8])


def test_every_subcommand_parser_intermixes():
    """Every command's (and benchmark's) parser is an IntermixedParser, whatever its module."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)
    assert all(isinstance(p, IntermixedParser) for p in sub.choices.values())
    bench = sub.choices["bench"]
    parser.parse_args(["bench", "supervised"])  # fills the bench parser
    inner = next(a for a in bench._actions if a.dest == "benchmark")
    assert set(inner.choices) == set(BENCHMARKS)
    assert all(isinstance(p, IntermixedParser) for p in inner.choices.values())


@pytest.fixture
def fake_command(monkeypatch):
    """A command ``fake`` whose run raises what ``args.raise_`` names."""
    module = types.ModuleType("rlmaml_test_fake_command")

    def add_arguments(parser):
        parser.add_argument("overrides", nargs="*")
        parser.add_argument("--raise", dest="raise_", choices=("user", "interrupt", "none"), default="none")

    def run(args):
        if args.raise_ == "user":
            raise UserError("bad value 'x'; allowed: y, z")
        if args.raise_ == "interrupt":
            raise KeyboardInterrupt
        return 0

    module.add_arguments, module.run = add_arguments, run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(COMMANDS, "fake", (module.__name__, "a test command"))


def test_one_error_wrapper_for_every_command(fake_command, capsys):
    assert main(["fake", "a=1", "--raise", "none", "b=2"]) == 0
    assert main(["fake", "--raise", "user"]) == 2
    assert capsys.readouterr().err == "rlmaml: error: bad value 'x'; allowed: y, z\n"
    assert main(["fake", "--raise", "interrupt"]) == 130
    assert capsys.readouterr().err == "rlmaml: interrupted\n"
    with pytest.raises(SystemExit) as exit_:  # argparse's own errors keep argparse's exit status 2
        main(["fake", "--raise", "other"])
    assert exit_.value.code == 2


def test_only_the_chosen_command_is_imported():
    code = ("import sys; from rlmaml.cli import build_parser; "
            "build_parser().parse_args(['supervised', 'sinusoid']); "
            "print(sorted(m for m in sys.modules if m.startswith(('rlmaml.rl', 'rlmaml.viz', 'rlmaml.bench'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_python_dash_m_rlmaml_is_the_cli():
    result = subprocess.run([sys.executable, "-m", "rlmaml", "supervised", "--resume", "/nonexistent/run"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr == "rlmaml: error: --resume '/nonexistent/run': no such directory; " \
                            "give a run directory written by training\n"
