"""The task protocol shared by every rlmaml task family.

A task family is a ``gymnasium.Env`` whose dynamics or reward depend on a task dict:

* ``sample_tasks(n)`` draws ``n`` task dicts from the env's ``np_random`` (seed it with ``reset(seed=...)``);
* ``set_task(task)`` (or ``reset(options={"task": task})``, or assigning ``env.task``) fixes the task;
* ``task_vector(task)`` returns the task parameters as a float array (appended to observations by oracles).

Until a task is set explicitly, every ``reset`` draws a fresh task from ``np_random``.
:class:`TaskEnvMixin` implements the bookkeeping; an env of your own may define the three methods itself
(``GymVectorBatchedEnv`` sets each copy's task by assigning ``env.task``, so ``task`` must apply it).
"""

from __future__ import annotations

import numpy as np

from rlmaml.errors import UserError

TASK_PROTOCOL = ("sample_tasks", "set_task", "task_vector")


def missing_task_protocol(env) -> list[str]:
    """The names of :data:`TASK_PROTOCOL` that ``env`` (an env, its unwrapped env or its class) lacks."""
    env = getattr(env, "unwrapped", env) if not isinstance(env, type) else env
    return [name for name in TASK_PROTOCOL if not callable(getattr(env, name, None))]


def task_protocol_error(env_id: str, missing: list[str]) -> str:
    """The one-line error for an env that lacks the names ``missing`` of the task protocol."""
    return (f"env {env_id!r} does not implement the task protocol (missing {', '.join(map(repr, missing))}); "
            "subclass rlmaml.envs.task_env.TaskEnvMixin or define sample_tasks(n), set_task(task) and "
            "task_vector(task)")


class TaskEnvMixin:
    """Task bookkeeping; subclasses implement ``_sample_task(rng)``, ``_validate_task`` and ``task_vector``."""

    task_keys: tuple[str, ...] = ()
    _task: dict | None = None
    _task_fixed: bool = False

    def sample_tasks(self, n: int) -> list[dict]:
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise UserError(f"number of tasks must be a non-negative integer, got {n!r}")
        return self.sample_tasks_from(self.np_random, int(n))

    @classmethod
    def sample_tasks_from(cls, rng: np.random.Generator, n: int) -> list[dict]:
        raise NotImplementedError

    @classmethod
    def validate_task(cls, task) -> dict:
        if not isinstance(task, dict) or set(task) != set(cls.task_keys):
            raise UserError(f"task must be a dict with keys {list(cls.task_keys)}, got {task!r}")
        return task

    def set_task(self, task: dict) -> None:
        self._task = dict(self.validate_task(task))
        self._task_fixed = True
        self._on_task_set()

    def _on_task_set(self) -> None:
        pass

    @property
    def task(self) -> dict | None:
        return self._task

    @task.setter
    def task(self, task: dict) -> None:
        self.set_task(task)

    def _select_task_on_reset(self, options: dict | None) -> None:
        if options and "task" in options:
            self.set_task(options["task"])
        elif not self._task_fixed:
            self._task = self.sample_tasks_from(self.np_random, 1)[0]
            self._on_task_set()

    @classmethod
    def task_vector(cls, task: dict) -> np.ndarray:
        raise NotImplementedError
