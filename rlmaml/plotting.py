"""Temporary alias: the curves moved to :mod:`rlmaml.viz.curves` and ``rlmaml plot``'s arguments to
:mod:`rlmaml.cli.plot`; this module re-exports both until every caller imports the new paths."""

from .cli.plot import add_arguments, run  # noqa: F401
from .viz import curves as _curves

globals().update({k: v for k, v in vars(_curves).items() if not k.startswith("__")})
