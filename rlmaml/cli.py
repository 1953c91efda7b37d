"""Command line: ``rlmaml train | evaluate | supervised | plot | bench``.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; this file only wires them up and turns user errors into
one-line messages.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import UserError
from .runtime import cpu_allocator

COMMANDS = {
    "train": ("rlmaml.rl.train", "meta-train a policy with MAML-TRPO (default: 2D navigation)"),
    "evaluate": ("rlmaml.rl.evaluate", "evaluate a trained run: returns after 0..k inner steps, videos"),
    "supervised": ("rlmaml.supervised.train", "few-shot supervised MAML (sinusoid, Omniglot)"),
    "plot": ("rlmaml.plotting", "learning curves and adaptation curves from run directories"),
    "bench": ("rlmaml.bench", "side-by-side speed benchmarks (supervised, rollouts, meta-step)"),
}


def build_parser(commands=tuple(COMMANDS)) -> argparse.ArgumentParser:
    """The parser for ``commands`` (all by default; importing only their modules)."""
    parser = argparse.ArgumentParser(prog="rlmaml", description="Model-Agnostic Meta-Learning for RL and few-shot learning")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in commands:
        module_name, help_text = COMMANDS[name]
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None, commands=tuple(COMMANDS)) -> int:
    """Run one command line; ``commands`` limits the subcommands built (scripts/ use one)."""
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    try:
        cpu_allocator()  # large tensors reuse mapped pages (rlmaml.runtime)
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"rlmaml: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rlmaml: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
