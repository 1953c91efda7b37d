#!/usr/bin/env python
"""Same as ``rlmaml evaluate ARGS`` (parses only the evaluate subcommand)."""

import argparse
import sys

from rlmaml.errors import UserError
from rlmaml.rl import evaluate

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="rlmaml evaluate", description=evaluate.__doc__.splitlines()[0])
    evaluate.add_arguments(parser)
    args = parser.parse_args()
    try:
        sys.exit(evaluate.run(args))
    except UserError as exc:
        print(f"rlmaml: error: {exc}", file=sys.stderr)
        sys.exit(2)
