"""User-facing errors: each carries a one-line message naming the bad value and what is allowed.
The CLI prints them as ``rlmaml: error: <message>`` and exits with status 2."""


class UserError(Exception):
    """Bad input from the user (config, paths, data, checkpoints)."""
