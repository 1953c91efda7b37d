#!/usr/bin/env python
"""Same as ``rlmaml train ARGS`` (builds only the train subcommand, so it runs without the other modes installed)."""

import sys

from rlmaml.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]], commands=["train"]))
