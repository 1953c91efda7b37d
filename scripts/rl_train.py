#!/usr/bin/env python
"""Same as ``rlmaml train ARGS`` (parses only the train subcommand, so it runs without the other modes installed)."""

import argparse
import sys

from rlmaml.errors import UserError
from rlmaml.rl import train

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="rlmaml train", description=train.__doc__.splitlines()[0])
    train.add_arguments(parser)
    args = parser.parse_args()
    try:
        sys.exit(train.run(args))
    except UserError as exc:
        print(f"rlmaml: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("rlmaml: interrupted (checkpoint written; continue with --resume)", file=sys.stderr)
        sys.exit(130)
