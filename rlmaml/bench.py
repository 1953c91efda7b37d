"""``rlmaml bench <name>``: side-by-side speed benchmarks printed as one JSON object.

Each benchmark lives in the module that owns the code it measures and exposes
``add_arguments(parser)`` and ``run(args)``.
"""

from __future__ import annotations

import importlib

BENCHMARKS = {
    "supervised": "rlmaml.supervised.bench",
    "rollouts": "rlmaml.rl.bench_rollouts",
    "meta-step": "rlmaml.rl.bench_meta_step",
}


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    sub.required = True
    for name, module_name in BENCHMARKS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(p)
        p.set_defaults(_bench=module.run)


def run(args) -> int:
    return args._bench(args)
