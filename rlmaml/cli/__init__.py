"""Command line: ``rlmaml train | evaluate | supervised | plot | bench``.

Every command is a module with ``add_arguments(parser)`` and ``run(args) -> int``, named in
:data:`COMMANDS`. Only the module of the command given is imported (``rlmaml supervised`` never
imports the RL stack). This package only parses arguments; the library (everything else under
``rlmaml/``) never imports it.

Shared by every command:

* :class:`IntermixedParser`: ``key=value`` overrides and other positionals may come before,
  between or after options (``rlmaml train navigation --seed 3 num_batches=1``);
* :func:`guarded`: the one error wrapper. A :class:`rlmaml.errors.UserError` prints
  ``rlmaml: error: <message>`` (one line) and exits 2; an interrupt (Ctrl-C, or SIGTERM under
  :func:`rlmaml.run.stop_on_signals`) exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence

from ..errors import UserError
from ..runtime import cpu_allocator

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("rlmaml.cli.train", "meta-train a policy with MAML-TRPO (default: 2D navigation)"),
    "evaluate": ("rlmaml.cli.evaluate", "evaluate a trained run: returns after 0..k inner steps, videos"),
    "supervised": ("rlmaml.cli.supervised", "few-shot supervised MAML (sinusoid, Omniglot)"),
    "plot": ("rlmaml.cli.plot", "learning curves and adaptation curves from run directories"),
    "bench": ("rlmaml.cli.bench", "side-by-side speed benchmarks (supervised, rollouts, meta-step)"),
    "report": ("rlmaml.cli.report", "tables from results/: evaluations, progress, Ant terminations, at a glance"),
}
"""name -> (module with ``add_arguments(parser)`` and ``run(args) -> int``, one line of help)."""

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention


class IntermixedParser(argparse.ArgumentParser):
    """An argument parser whose positionals (``key=value`` overrides) may be intermixed with options.

    Parses with :meth:`argparse.ArgumentParser.parse_known_intermixed_args`, also when it is a
    sub-command's parser; a parser that itself has sub-commands parses as usual (argparse cannot
    intermix those) and hands the rest to the chosen sub-command's parser.
    """

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixing or _has_subcommands(self):
            return super().parse_known_args(args, namespace)
        self._intermixing = True  # the intermixed parser calls parse_known_args itself
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _has_subcommands(parser: argparse.ArgumentParser) -> bool:
    return any(a.nargs in (argparse.PARSER, argparse.REMAINDER) for a in parser._get_positional_actions())


class _LazySubcommands(argparse._SubParsersAction):
    """Sub-commands whose modules are imported, and their arguments added, only when chosen."""

    def __init__(self, *args, table: Mapping[str, tuple[str, str]], run_key: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._table, self._run_key, self._loaded = table, run_key, set()

    def __call__(self, parser, namespace, values, option_string=None):
        name = values[0]
        if name in self._table and name not in self._loaded:
            module = importlib.import_module(self._table[name][0])
            chosen = self._name_parser_map[name]
            module.add_arguments(chosen)
            chosen.set_defaults(**{self._run_key: module.run})
            self._loaded.add(name)
        super().__call__(parser, namespace, values, option_string)


def add_subcommands(parser: argparse.ArgumentParser, table: Mapping[str, tuple[str, str]], dest: str,
                    run_key: str, metavar: str) -> None:
    """Sub-commands of ``parser`` from ``table`` (name -> (module, help)): the chosen module's
    ``add_arguments`` fills its parser and its ``run`` lands in ``args.<run_key>``."""
    sub = parser.add_subparsers(dest=dest, metavar=metavar, action=_LazySubcommands, table=table, run_key=run_key,
                                parser_class=IntermixedParser)
    sub.required = True
    for name, (_, help_text) in table.items():
        sub.add_parser(name, help=help_text, description=help_text)


def build_parser() -> argparse.ArgumentParser:
    """The ``rlmaml`` parser: one sub-command per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(prog="rlmaml", description="Model-Agnostic Meta-Learning for RL and few-shot learning")
    add_subcommands(parser, COMMANDS, "command", "_run", "COMMAND")
    return parser


def guarded(run: Callable[..., int | None], *args) -> int:
    """``run(*args)`` as a command: its return value as exit code (None = 0); a ``UserError`` prints
    ``rlmaml: error: <message>`` on stderr and gives 2; ``KeyboardInterrupt`` gives 130."""
    try:
        return int(run(*args) or 0)
    except UserError as exc:
        print(f"rlmaml: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("rlmaml: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``rlmaml`` command line (``sys.argv[1:]`` by default); returns the exit code."""
    parser = build_parser()

    def parse_and_run():
        args = parser.parse_args(argv)
        cpu_allocator()  # large tensors reuse mapped pages (rlmaml.runtime)
        return args._run(args)

    return guarded(parse_and_run)


if __name__ == "__main__":
    sys.exit(main())
