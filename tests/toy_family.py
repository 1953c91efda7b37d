"""A task family of one's own: a module that defines a Gymnasium env with the task protocol (here by changing
2D navigation's step and goals) and registers it on import (``docs/extending/task-family.md`` walks through a
family written from scratch). ``tests/test_task_families.py`` trains and evaluates it
through the CLI as ``env=toy_family:toy/PointGoal-v0``.

``toy/PointGoal-v0`` has a record (:class:`~rlmaml.envs.registry.TaskFamily`); ``toy/PlainPointGoal-v0`` is the
same env registered with Gymnasium alone, which rlmaml turns into a generic record.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlmaml.envs import TaskFamily, register_family
from rlmaml.envs.navigation import Navigation2DEnv


class PointGoalEnv(Navigation2DEnv):
    """A point in the plane walks to a goal: 2D navigation's env (its task protocol, reset and observation) with
    a larger step, a wider goal box and no early end.

    ## Task
    ``{"goal": [x, y]}``, ``g ~ U[-1, 1]²``.

    ## Action Space
    ``Box(-0.2, 0.2, (2,))``: the step, clipped to the box, ``p' = p + clip(a)``.

    ## Observation Space
    ``Box(-inf, inf, (2,))``: the position ``p'``; it starts at the origin.

    ## Rewards
    ``r = -‖p' - g‖₂``.

    ## Episode End
    Never terminates; truncated after the horizon (20 steps).
    """

    def __init__(self, render_mode=None):
        super().__init__(render_mode)
        self.action_space = spaces.Box(-0.2, 0.2, shape=(2,), dtype=np.float32)

    @classmethod
    def sample_tasks_from(cls, rng, n):
        return [{"goal": [float(x), float(y)]} for x, y in rng.uniform(-1.0, 1.0, size=(n, 2))]

    def step(self, action):
        self._position = self._position + np.clip(action, -0.2, 0.2)
        reward = -float(np.linalg.norm(self._position - np.asarray(self.task["goal"])))
        return self._position.astype(np.float32), reward, False, False, {"position": self._position.copy()}


register_family(TaskFamily(env_id="toy/PointGoal-v0", entry_point=f"{__name__}:PointGoalEnv", horizon=20,
                           description="a point walks to a goal g ~ U[-1, 1]^2, horizon 20"))

if "toy/PlainPointGoal-v0" not in gym.registry:
    gym.register(id="toy/PlainPointGoal-v0", entry_point=PointGoalEnv, max_episode_steps=20)
