#!/usr/bin/env python
"""Same as ``rlmaml evaluate ARGS`` (builds only the evaluate subcommand)."""

import sys

from rlmaml.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]], commands=["evaluate"]))
