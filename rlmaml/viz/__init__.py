"""Pictures of runs: :mod:`rlmaml.viz.curves` (learning and adaptation curves, PNG) and :mod:`rlmaml.viz.video`
(videos, frames and trajectories of recorded episodes). Neither imports the other; both read the task-family
registry (:mod:`rlmaml.envs.registry`) for what they know about a family."""
