"""The batched-environment interface and the generic Gymnasium-vector implementation.

A :class:`BatchedEnv` steps ``num_envs`` copies of one task family at once; copy ``k`` runs the task
given to it by :meth:`BatchedEnv.set_tasks`. Observations, rewards and terminations are torch tensors on
``device``. Copies are never reset automatically: after termination a copy keeps stepping and the
rollout's mask removes those steps.

``GymVectorBatchedEnv`` is the fallback for any Gymnasium env id that implements the task protocol
(``sample_tasks(n)``, ``set_task(task)``, ``task_vector(task)``): it runs ``gymnasium.vector.SyncVectorEnv``
or ``AsyncVectorEnv`` with autoreset disabled behind the same interface.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlmaml.errors import UserError

from .task_env import missing_task_protocol, task_protocol_error


class BatchedEnv:
    """Common interface of the native engines and of the Gymnasium-vector fallback.

    Subclasses set ``num_envs``, ``observation_dim``, ``action_dim``, ``action_low``, ``action_high``,
    ``max_episode_steps``, ``device`` and ``oracle`` and implement ``_sample_tasks``, ``task_vector``,
    ``_apply_tasks``, ``reset`` and ``step``.
    """

    env_id: str = ""
    num_envs: int
    observation_dim: int
    action_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    max_episode_steps: int
    device: torch.device
    oracle: bool = False
    #: threads the engine steps its physics on beside the caller (native MuJoCo engine: its pool)
    physics_threads: int = 0
    #: the index of this engine's first copy in a larger batch split across engines (a shard): ``reset(seed)``
    #: gives copy k the initial state copy ``copy_offset + k`` of one engine holding the whole batch would get
    copy_offset: int = 0
    #: or, for a shard whose copies are not contiguous in the whole batch, the whole batch's index of each copy
    copy_indices: list[int] | None = None

    def whole_batch_copies(self) -> list[int]:
        """The index in the whole batch of each of this engine's copies (``copy_indices``, or from
        ``copy_offset``): copy k's reset is that copy's of one engine holding the whole batch."""
        if self.copy_indices is not None:
            return list(self.copy_indices)
        return list(range(self.copy_offset, self.copy_offset + self.num_envs))

    def __init__(self) -> None:
        self._task_rng = np.random.default_rng()
        self.tasks: list[dict] | None = None
        self._task_vectors: torch.Tensor | None = None

    # ---- tasks -------------------------------------------------------------------------------------
    def sample_tasks(self, n: int, seed: int | None = None) -> list[dict]:
        """Draw ``n`` tasks from the family's task distribution (the single env's ``sample_tasks``).
        With ``seed`` the draw is reproducible; otherwise the engine's own task generator is used."""
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise UserError(f"number of tasks must be a non-negative integer, got {n!r}")
        rng = np.random.default_rng(seed) if seed is not None else self._task_rng
        return self._sample_tasks(int(n), rng)

    def _sample_tasks(self, n: int, rng: np.random.Generator) -> list[dict]:
        raise NotImplementedError

    def task_vector(self, task: dict) -> np.ndarray:
        raise NotImplementedError

    def set_tasks(self, tasks: list[dict]) -> None:
        """Give copy ``k`` the task ``tasks[k]``; takes effect immediately (and persists across resets)."""
        tasks = list(tasks)
        if len(tasks) != self.num_envs:
            raise UserError(f"set_tasks needs one task per env copy: got {len(tasks)} tasks for num_envs={self.num_envs}")
        if self.tasks is not None and tasks == self.tasks:
            return
        self._apply_tasks(tasks)
        self.tasks = tasks
        if self.oracle:
            vecs = np.stack([np.asarray(self.task_vector(t), dtype=np.float32).reshape(-1) for t in tasks])
            self._task_vectors = torch.as_tensor(vecs, device=self.device)

    def _apply_tasks(self, tasks: list[dict]) -> None:
        raise NotImplementedError

    def _require_tasks(self) -> None:
        if self.tasks is None:
            raise UserError("set_tasks(tasks) must be called before reset/step of a batched env")

    def _with_task(self, obs: torch.Tensor) -> torch.Tensor:
        """Append the task parameters to the observation when ``oracle=True``."""
        if self.oracle:
            return torch.cat([obs, self._task_vectors], dim=-1)
        return obs

    # ---- dynamics ------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> torch.Tensor:
        raise NotImplementedError

    def step(self, actions: torch.Tensor, active: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Advance every copy one step: ``(obs, reward, terminated, info)``.

        ``active`` (optional bool ``[N]``): copies marked False have finished their episode and their outputs
        will be masked out; an env may then skip their physics and return the outputs of the frozen state
        (the MuJoCo engine does when stepping copy by copy; the others step every copy regardless)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env_id!r}, num_envs={self.num_envs}, device={str(self.device)!r})"


def _as_numpy_actions(actions: Any, num_envs: int, action_dim: int) -> np.ndarray:
    if isinstance(actions, torch.Tensor):
        actions = actions.detach().to("cpu", torch.float64).numpy()
    actions = np.asarray(actions, dtype=np.float64)
    if actions.shape != (num_envs, action_dim):
        raise ValueError(f"actions must have shape ({num_envs}, {action_dim}), got {tuple(actions.shape)}")
    return actions


VECTORIZATIONS = ("sync", "async", "processes")


def _takes(env_id: str, key: str) -> bool:
    """Whether the registered env's constructor takes the keyword ``key``."""
    import inspect

    try:
        creator = gym.spec(env_id).entry_point
        if isinstance(creator, str):
            creator = gym.envs.registration.load_env_creator(creator)
        return key in inspect.signature(creator).parameters
    except (gym.error.Error, TypeError, ValueError):
        return False


class GymVectorBatchedEnv(BatchedEnv):
    """Any registered Gymnasium env with the task protocol, through ``gymnasium.vector``.

    ``vectorization="sync"`` uses ``SyncVectorEnv`` (one process), ``"async"`` uses ``AsyncVectorEnv``
    (one worker process per copy), ``"processes"`` a :class:`~rlmaml.envs.process_vector.ProcessVectorEnv`
    of ``num_threads`` worker processes, each stepping a contiguous chunk of the copies (the same trajectories
    as ``"sync"``, on every core). Per-copy tasks are set through the env's ``task`` attribute.
    """

    def __init__(self, env_id: str, num_envs: int, *, device="cpu", oracle: bool = False,
                 vectorization: str = "sync", max_episode_steps: int | None = None, num_threads: int | None = None,
                 record_state: bool = False, **env_kwargs) -> None:
        super().__init__()
        if vectorization not in VECTORIZATIONS:
            raise UserError(f"vectorization must be one of {list(VECTORIZATIONS)}, got {vectorization!r}")
        self.env_id = env_id
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.oracle = bool(oracle)
        make_kwargs = dict(env_kwargs)
        if max_episode_steps is not None:
            make_kwargs["max_episode_steps"] = int(max_episode_steps)
        if record_state and _takes(env_id, "record_state"):  # envs that can put their joint state in the info
            make_kwargs["record_state"] = True
        self._probe = gym.make(env_id, **make_kwargs)
        missing = missing_task_protocol(self._probe)
        if missing:
            self._probe.close()
            raise UserError(task_protocol_error(env_id, missing))
        self.max_episode_steps = int(self._probe.spec.max_episode_steps or 0) if self._probe.spec else 0
        obs_space, act_space = self._probe.observation_space, self._probe.action_space
        self.observation_dim = int(np.prod(obs_space.shape)) + (
            len(self.task_vector(self._probe.unwrapped.sample_tasks(1)[0])) if self.oracle else 0)
        self.action_dim = int(np.prod(act_space.shape))
        self.action_low = np.asarray(act_space.low, dtype=np.float64).reshape(-1)
        self.action_high = np.asarray(act_space.high, dtype=np.float64).reshape(-1)
        if vectorization == "processes":
            from .process_vector import ProcessVectorEnv, make_env, registering_module

            module = registering_module(env_id)
            fns = [functools.partial(make_env, module, env_id, **make_kwargs) for _ in range(self.num_envs)]
            self._vec = ProcessVectorEnv(fns, processes=max(1, num_threads or 1))
        else:
            fns = [functools.partial(gym.make, env_id, **make_kwargs) for _ in range(self.num_envs)]
            vector = gym.vector.SyncVectorEnv if vectorization == "sync" else gym.vector.AsyncVectorEnv
            self._vec = vector(fns, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
        #: worker processes stepping the copies ("processes"; 0 when they step in this process or one each)
        self.physics_threads = self._vec.processes if vectorization == "processes" else 0

    def _sample_tasks(self, n, rng):
        self._probe.unwrapped.np_random = rng
        return self._probe.unwrapped.sample_tasks(n)

    def task_vector(self, task):
        return np.asarray(self._probe.unwrapped.task_vector(task), dtype=np.float64)

    def _apply_tasks(self, tasks):
        self._vec.set_attr("task", tasks)

    def reset(self, seed=None):
        self._require_tasks()
        seeds = None if seed is None else [int(seed) + c for c in self.whole_batch_copies()]
        obs, _ = self._vec.reset(seed=seeds)
        return self._with_task(torch.as_tensor(np.asarray(obs, np.float32).reshape(self.num_envs, -1),
                                               device=self.device))

    def step(self, actions, active=None):
        a = _as_numpy_actions(actions, self.num_envs, self.action_dim).astype(np.float32)
        obs, reward, terminated, truncated, info = self._vec.step(a)
        # a time-limit truncation ends the episode too (the copy restarts on the next step)
        terminated = np.logical_or(terminated, truncated)
        out_info = {}
        for key, value in info.items():
            if key.startswith("_"):
                continue
            arr = np.asarray(value)
            if arr.dtype.kind in "fiub" and arr.shape[:1] == (self.num_envs,):
                out_info[key] = torch.as_tensor(arr.astype(np.float32) if arr.dtype.kind == "f" else arr,
                                                device=self.device)
        obs_t = torch.as_tensor(np.asarray(obs, np.float32).reshape(self.num_envs, -1), device=self.device)
        return (self._with_task(obs_t), torch.as_tensor(np.asarray(reward, np.float32), device=self.device),
                torch.as_tensor(np.asarray(terminated, bool), device=self.device), out_info)

    def close(self):
        self._vec.close()
        self._probe.close()
