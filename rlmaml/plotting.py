"""Temporary alias: the curves moved to :mod:`rlmaml.viz.curves` (``rlmaml plot``'s arguments to
:mod:`rlmaml.cli.plot`); this module re-exports the curves until every caller imports the new path."""

from .viz import curves as _curves

globals().update({k: v for k, v in vars(_curves).items() if not k.startswith("__")})
