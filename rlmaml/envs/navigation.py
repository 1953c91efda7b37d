"""2D navigation (Finn et al., 2017, sec. 5.3): a point mass moves to a goal in the plane.

State ``p ∈ R²`` starts at the origin; the task is a goal ``g ~ U[-0.5, 0.5]²``. An action ``a`` is clipped
to ``[-0.1, 0.1]²`` and moves the point, ``p' = p + clip(a)``. The reward is the negative distance after the
move, ``r = -‖p' - g‖₂``; the episode terminates when ``|p'_x - g_x| < 0.01`` and ``|p'_y - g_y| < 0.01``
(as in the original implementation) and is truncated after 100 steps. The observation is ``p'``.

:class:`Navigation2DEnv` is the Gymnasium env; :class:`BatchedNavigation2D` steps ``num_envs`` copies as
torch tensor operations (float64 state, identical arithmetic).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from rlmaml.errors import UserError

from .batched import BatchedEnv
from .task_env import TaskEnvMixin

GOAL_LOW, GOAL_HIGH = -0.5, 0.5
MAX_STEP = 0.1
SUCCESS_RADIUS = 0.01


class Navigation2DEnv(TaskEnvMixin, gym.Env):
    """Point-mass navigation to a goal; task ``{"goal": [x, y]}``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}  # noqa: RUF012 (gymnasium convention)
    task_keys = ("goal",)

    def __init__(self, render_mode: str | None = None, task: dict | None = None, image_size: int = 256):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UserError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.image_size = int(image_size)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-MAX_STEP, MAX_STEP, shape=(2,), dtype=np.float32)
        self._position = np.zeros(2, dtype=np.float64)
        self._goal = np.zeros(2, dtype=np.float64)
        self._trail: list[np.ndarray] = []
        if task is not None:
            self.set_task(task)

    # ---- task protocol -------------------------------------------------------------------------------
    @classmethod
    def sample_tasks_from(cls, rng, n):
        goals = rng.uniform(GOAL_LOW, GOAL_HIGH, size=(n, 2))
        return [{"goal": [float(g[0]), float(g[1])]} for g in goals]

    @classmethod
    def validate_task(cls, task):
        task = super().validate_task(task)
        goal = np.asarray(task["goal"], dtype=np.float64)
        if goal.shape != (2,) or not np.all(np.isfinite(goal)):
            raise UserError(f"navigation task goal must be 2 finite numbers, got {task['goal']!r}")
        return task

    def _on_task_set(self):
        self._goal = np.asarray(self._task["goal"], dtype=np.float64)

    @classmethod
    def task_vector(cls, task):
        return np.asarray(task["goal"], dtype=np.float64)

    # ---- dynamics --------------------------------------------------------------------------------------
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._select_task_on_reset(options)
        self._position = np.zeros(2, dtype=np.float64)
        self._trail = [self._position.copy()]
        return self._position.astype(np.float32), {"position": self._position.copy(), "goal": self._goal.copy()}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -MAX_STEP, MAX_STEP)
        self._position = self._position + action
        delta = self._position - self._goal
        reward = -float(np.sqrt(delta[0] ** 2 + delta[1] ** 2))
        terminated = bool(abs(delta[0]) < SUCCESS_RADIUS and abs(delta[1]) < SUCCESS_RADIUS)
        self._trail.append(self._position.copy())
        info = {"position": self._position.copy(), "goal": self._goal.copy()}
        return self._position.astype(np.float32), reward, terminated, False, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        from PIL import Image, ImageDraw

        size = self.image_size
        extent = max(1.0, float(np.max(np.abs(np.asarray(self._trail)))) + 0.1) if self._trail else 1.0

        def px(p):
            return (float((p[0] / extent + 1) * size / 2), float((1 - p[1] / extent) * size / 2))

        img = Image.new("RGB", (size, size), (255, 255, 255))
        draw = ImageDraw.Draw(img)
        lo, hi = px((GOAL_LOW, GOAL_HIGH)), px((GOAL_HIGH, GOAL_LOW))
        draw.rectangle([lo, hi], outline=(200, 200, 200))
        gx, gy = px(self._goal)
        draw.ellipse([gx - 6, gy - 6, gx + 6, gy + 6], fill=(220, 50, 50))
        if len(self._trail) > 1:
            draw.line([px(p) for p in self._trail], fill=(80, 80, 200), width=2)
        x, y = px(self._position)
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(20, 20, 120))
        return np.asarray(img, dtype=np.uint8)


class BatchedNavigation2D(BatchedEnv):
    """``num_envs`` copies of :class:`Navigation2DEnv` as batched torch tensor operations on ``device``."""

    env_id = "rlmaml/Navigation2D-v0"

    def __init__(self, num_envs: int, *, device="cpu", oracle: bool = False, max_episode_steps: int | None = None,
                 num_threads: int | None = None, record_state: bool = False) -> None:
        super().__init__()
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.oracle = bool(oracle)
        self.max_episode_steps = int(max_episode_steps or 100)
        self.observation_dim = 2 + (2 if self.oracle else 0)
        self.action_dim = 2
        self.action_low = np.full(2, -MAX_STEP)
        self.action_high = np.full(2, MAX_STEP)
        self._position = torch.zeros(self.num_envs, 2, dtype=torch.float64, device=self.device)
        self._goal = torch.zeros(self.num_envs, 2, dtype=torch.float64, device=self.device)

    def _sample_tasks(self, n, rng):
        return Navigation2DEnv.sample_tasks_from(rng, n)

    def task_vector(self, task):
        return Navigation2DEnv.task_vector(task)

    def _apply_tasks(self, tasks):
        goals = np.stack([Navigation2DEnv.task_vector(Navigation2DEnv.validate_task(t)) for t in tasks])
        self._goal = torch.as_tensor(goals, dtype=torch.float64, device=self.device)

    def reset(self, seed=None):
        self._require_tasks()
        if seed is not None:
            self._task_rng = np.random.default_rng(seed)
        self._position = torch.zeros(self.num_envs, 2, dtype=torch.float64, device=self.device)
        return self._with_task(self._position.to(torch.float32))

    def step(self, actions, active=None):
        if actions.shape != (self.num_envs, 2):
            raise ValueError(f"actions must have shape ({self.num_envs}, 2), got {tuple(actions.shape)}")
        step = actions.to(device=self.device, dtype=torch.float64).clamp(-MAX_STEP, MAX_STEP)
        self._position = self._position + step
        delta = self._position - self._goal
        reward = -torch.sqrt(delta[:, 0] ** 2 + delta[:, 1] ** 2)
        terminated = (delta.abs() < SUCCESS_RADIUS).all(dim=1)
        obs = self._position.to(torch.float32)
        return self._with_task(obs), reward.to(torch.float32), terminated, {"position": obs}
