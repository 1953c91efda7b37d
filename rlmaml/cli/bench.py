"""``rlmaml bench <name> [options]``: one benchmark of :data:`rlmaml.bench.BENCHMARKS`, printed as one JSON object."""

from __future__ import annotations

import argparse

from ..bench import BENCHMARKS
from . import add_subcommands


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_subcommands(parser, BENCHMARKS, "benchmark", "_bench", "BENCHMARK")


def run(args) -> int:
    return args._bench(args)
