#!/usr/bin/env python
"""Every plot of ``rlmaml plot`` for each run directory given (default: every run under results/), written
into that directory, adaptation curves with the paper's reference numbers.

usage: python scripts/plot_results.py [RUN_DIR ...]
"""

import sys
from pathlib import Path

from rlmaml.errors import UserError
from rlmaml.plotting import EVAL_NAME, METRICS_NAME, plot_runs

if __name__ == "__main__":
    dirs = [Path(d) for d in sys.argv[1:]] or sorted(
        d for d in Path("results").iterdir() if (d / METRICS_NAME).is_file() or (d / EVAL_NAME).is_file())
    try:
        for run_dir in dirs:
            for path in plot_runs([run_dir], reference="paper"):
                print(path)
    except UserError as exc:
        print(f"rlmaml: error: {exc}", file=sys.stderr)
        sys.exit(2)
