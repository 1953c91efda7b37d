"""Temporary alias: videos, frames and trajectories moved to :mod:`rlmaml.viz.video`; ``rlmaml.rl.render`` is
that module until every caller imports the new path."""

import sys

from ..viz import video

sys.modules[__name__] = video
