"""Batched MuJoCo task families: all copies advance in ONE native ``mujoco.rollout`` call per env step.

The full physics state of every copy (``mjSTATE_FULLPHYSICS``: time, qpos, qvel, ...) lives in one
``[N, nstate]`` array. A step clips the actions, calls ``Rollout.rollout`` with ``nstep = frame_skip`` on a
persistent thread pool (one thread per core), and computes observations, rewards and terminations
vectorised in numpy with the same class methods the single Gymnasium env uses.

Ant also needs the external contact forces ``cfrc_ext`` (observation and contact cost), which MuJoCo only
computes in ``mj_rnePostConstraint`` and ``mujoco.rollout`` does not return, and the torso position the
v5 env reads after ``mj_step``. The Ant model integrates with RK4, so both belong to the last Runge-Kutta
stage of the last substep, which no returned state reproduces. For Ant the engine therefore advances each
copy exactly as the single env does (``mj_setState``, ``mj_step`` with ``nstep = frame_skip``,
``mj_rnePostConstraint``, ``mj_getState``), the copies split into one contiguous chunk per thread of a
persistent thread pool: ``mj_step`` releases the GIL, so the chunks run in parallel on all cores and only
the small per-copy Python glue is serialised. (Running the first ``frame_skip - 1`` substeps in one
``rollout`` call and only the last one per copy measured slower side by side, 0.85 against 0.90 of the
limit: the per-copy glue is the same and the native call adds a state round trip.) ``rlmaml bench rollouts`` measures the cost against the pure-rollout limit.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym
import mujoco
import mujoco.rollout
import numpy as np
import torch

from .batched import BatchedEnv, _as_numpy_actions

FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS.value


def default_num_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


class BatchedMujocoEnv(BatchedEnv):
    """``num_envs`` copies of a MuJoCo task family (``rlmaml/HalfCheetah*-v0``, ``rlmaml/Ant*-v0``)."""

    def __init__(self, env_id: str, num_envs: int, *, device="cpu", num_threads: int | None = None,
                 oracle: bool = False, record_state: bool = False, max_episode_steps: int | None = None,
                 **env_kwargs) -> None:
        super().__init__()
        self.env_id = env_id
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.oracle = bool(oracle)
        self.record_state = bool(record_state)
        single = gym.make(env_id, **env_kwargs)
        self.max_episode_steps = int(max_episode_steps or single.spec.max_episode_steps)
        self.single = single.unwrapped
        self.family = type(self.single)
        self.model = self.single.model
        self.frame_skip = int(self.single.frame_skip)
        self.dt = float(self.single.dt)
        self.num_threads = default_num_threads() if num_threads is None else int(num_threads)
        nthread = max(1, self.num_threads)
        self._datas = [mujoco.MjData(self.model) for _ in range(nthread)]
        self._pool = mujoco.rollout.Rollout(nthread=self.num_threads if self.num_threads > 1 else 0)
        self._models: list | None = None  # the model once per copy, for the pool's unchecked calls
        self._substep_pool = ThreadPoolExecutor(nthread) if nthread > 1 else None
        self.physics_threads = nthread if nthread > 1 else 0

        m = self.model
        self.nq, self.nv, self.nu = m.nq, m.nv, m.nu
        self.nstate = mujoco.mj_stateSize(m, FULLPHYSICS)
        template = mujoco.MjData(m)
        mujoco.mj_resetData(m, template)
        self._template_state = np.empty(self.nstate)
        mujoco.mj_getState(m, template, self._template_state, FULLPHYSICS)
        offset = mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_TIME.value)
        self._qpos = slice(offset, offset + self.nq)
        self._qvel = slice(offset + self.nq, offset + self.nq + self.nv)

        self.action_low = np.asarray(self.single.action_space.low, dtype=np.float64)
        self.action_high = np.asarray(self.single.action_space.high, dtype=np.float64)
        self.action_dim = self.nu
        task_dim = len(self.family.task_vector(self.family.sample_tasks_from(np.random.default_rng(0), 1)[0]))
        self.observation_dim = int(self.single.observation_space.shape[0]) + (task_dim if self.oracle else 0)

        N = self.num_envs
        self._state = np.tile(self._template_state, (N, 1))
        self._buffers: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._warmstart = np.zeros((N, self.nv))
        self._cfrc = np.zeros((N, m.nbody, 6))
        self._needs_torso = bool(getattr(self.single, "needs_torso_kinematics", False))
        self._torso = np.zeros((N, 12)) if self._needs_torso else None
        self._torso_datas = [mujoco.MjData(self.model) for _ in self._datas] if self._needs_torso else []
        self._next = np.empty((N, self.nstate))
        self._xpos = np.zeros((N, self.family.position_dims))
        self._position = np.zeros((N, self.family.position_dims))
        self._params = None

    # ---- tasks ---------------------------------------------------------------------------------------
    def _sample_tasks(self, n, rng):
        return self.family.sample_tasks_from(rng, n)

    def task_vector(self, task):
        return self.family.task_vector(task)

    def _apply_tasks(self, tasks):
        self._params = self.family.task_params([self.family.validate_task(t) for t in tasks])

    # ---- state ---------------------------------------------------------------------------------------
    @property
    def qpos(self) -> np.ndarray:
        return self._state[:, self._qpos]

    @property
    def qvel(self) -> np.ndarray:
        return self._state[:, self._qvel]

    def state(self) -> dict[str, np.ndarray]:
        """Copies of every copy's ``qpos`` ``[N, nq]`` and ``qvel`` ``[N, nv]`` (for replay/rendering)."""
        return {"qpos": self.qpos.copy(), "qvel": self.qvel.copy()}

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> torch.Tensor:
        """Put every copy in the given joint state (as the single env's ``set_state``); returns observations."""
        state = np.tile(self._template_state, (self.num_envs, 1))
        state[:, self._qpos] = qpos
        state[:, self._qvel] = qvel
        self._state = state
        self._warmstart = np.zeros((self.num_envs, self.nv))
        self._cfrc = np.zeros((self.num_envs, self.model.nbody, 6))   # mj_forward does not compute cfrc_ext
        if self._needs_torso:
            self._torso = self.single.torso_kinematics(self.qpos)
        self._position = self._root_position(self._state)
        return self._observe()

    def _root_position(self, state):
        return state[:, self._qpos][:, : self.family.position_dims].copy()

    # ---- dynamics --------------------------------------------------------------------------------------
    def reset(self, seed=None):
        """Initial states from the single env's ``initial_state`` (Gymnasium v5: ``qpos0 + U(-s, s)``,
        ``qvel0 + s·N(0, 1)``), drawn per copy in order from one generator (copy 0 with ``seed`` equals the single
        env's ``reset(seed=seed)``); the draws of the whole batch's other copies (``whole_batch_copies``) are made
        and dropped, so a shard's copies start where the whole batch's would."""
        self._require_tasks()
        rng = np.random.default_rng(seed)
        if seed is not None:
            self._task_rng = np.random.default_rng(seed)
        copies = self.whole_batch_copies()
        qpos = np.empty((self.num_envs, self.nq))
        qvel = np.empty((self.num_envs, self.nv))
        if copies == list(range(copies[0], copies[0] + self.num_envs)):  # contiguous: skip the draws before them
            for _ in range(copies[0]):
                self.single.initial_state(rng)
            for k in range(self.num_envs):
                qpos[k], qvel[k] = self.single.initial_state(rng)
        else:  # draw every copy up to the last one in order and keep this engine's
            where = {c: k for k, c in enumerate(copies)}
            for c in range(max(copies) + 1):
                state = self.single.initial_state(rng)
                if c in where:
                    qpos[where[c]], qvel[where[c]] = state
        return self.set_state(qpos, qvel)

    def _observe(self) -> torch.Tensor:
        cfrc = self._cfrc if self.family.needs_contact_forces else None
        obs = self.single.observations(self.qpos, self.qvel, cfrc, self._torso)
        return self._with_task(torch.as_tensor(obs, dtype=torch.float32).to(self.device))

    def _substeps_with_contact_forces(self, states: np.ndarray, controls: np.ndarray, nstep: int,
                                      active: np.ndarray | None = None) -> None:
        """``nstep`` substeps from ``states[k]`` under ``controls[k]`` per copy, then ``mj_rnePostConstraint``:
        fills ``self._next`` (state), ``self._cfrc`` (``cfrc_ext``), ``self._xpos``, the warm start and, for
        observations that need them, ``self._torso`` (torso xmat and centre of mass after the step, on a scratch MjData).
        Copies with ``active[k]`` False are not simulated: their state and contact forces stay.
        Copies are split into one contiguous chunk per MjData/thread."""
        bounds = np.linspace(0, self.num_envs, len(self._datas) + 1).astype(int)
        torso_datas = self._torso_datas or [None] * len(self._datas)
        chunks = [(lo, hi, d, t) for lo, hi, d, t in zip(bounds[:-1], bounds[1:], self._datas, torso_datas) if hi > lo]
        if self._substep_pool is None or len(chunks) == 1:
            for chunk in chunks:
                self._substep_chunk(states, controls, nstep, active, *chunk)
        else:
            for future in [self._substep_pool.submit(self._substep_chunk, states, controls, nstep, active, *c)
                           for c in chunks]:
                future.result()

    def _substep_chunk(self, states, controls, nstep: int, active, lo: int, hi: int, d, torso_data) -> None:
        m = self.model
        dims = self.family.position_dims
        body = self.single._main_body if hasattr(self.single, "_main_body") else 1
        # views into d, taken once per chunk (each attribute access builds a new array under the GIL)
        ctrl, warmstart, cfrc_ext, xpos = d.ctrl, d.qacc_warmstart, d.cfrc_ext, d.xpos[body, :dims]
        set_state, get_state = mujoco.mj_setState, mujoco.mj_getState
        step, rne = mujoco.mj_step, mujoco.mj_rnePostConstraint
        for k in range(lo, hi):
            if active is not None and not active[k]:  # finished episode: frozen
                self._next[k] = states[k]
                continue
            set_state(m, d, states[k], FULLPHYSICS)
            ctrl[:] = controls[k]
            warmstart[:] = self._warmstart[k]
            step(m, d, nstep)
            rne(m, d)
            get_state(m, d, self._next[k], FULLPHYSICS)
            self._cfrc[k] = cfrc_ext
            self._xpos[k] = xpos
            self._warmstart[k] = warmstart
        if torso_data is not None:
            moved = np.arange(lo, hi) if active is None else lo + np.flatnonzero(active[lo:hi])
            self._torso[moved] = self.single.torso_kinematics(self._next[moved][:, self._qpos], torso_data)

    def physics_step(self, controls: np.ndarray, nstep: int | None = None) -> np.ndarray:
        """Advance every copy by ``nstep`` (default ``frame_skip``) substeps under ``controls [N, nu]`` in one
        native call; returns the states after each substep ``[N, nstep, nstate]``."""
        nstep = self.frame_skip if nstep is None else int(nstep)
        if nstep not in self._buffers:
            self._buffers[nstep] = (np.empty((self.num_envs, nstep, self.nu)),
                                    np.empty((self.num_envs, nstep, self.nstate)),
                                    np.empty((self.num_envs, nstep, self.model.nsensordata)))
        control, out, sensors = self._buffers[nstep]
        control[:] = controls[:, None, :]
        if self._models is None:
            self._models = [self.model] * self.num_envs
        self._state = np.ascontiguousarray(self._state, dtype=np.float64)
        self._warmstart = np.ascontiguousarray(self._warmstart, dtype=np.float64)
        # the native call the checked wrapper makes for these shapes (one model per copy, every buffer given),
        # without its per-call checks
        self._pool.rollout(self._models, self._datas, self._state, control, nstep=nstep,
                           initial_warmstart=self._warmstart, state=out, sensordata=sensors,
                           control_spec=mujoco.mjtState.mjSTATE_CTRL.value, skip_checks=True)
        return out

    def step(self, actions, active=None):
        """One env step of every copy; with ``active`` (bool ``[N]``) the copy-by-copy engine (contact-force
        families: Ant) skips the physics of finished copies, which keep their state (velocity 0)."""
        action = np.clip(_as_numpy_actions(actions, self.num_envs, self.action_dim), self.action_low, self.action_high)
        if self._params is None:
            self._require_tasks()
        position_before = self._position
        if self.family.needs_contact_forces:
            if active is not None:
                active = np.asarray(torch.as_tensor(active).cpu(), dtype=bool).reshape(self.num_envs)
            self._substeps_with_contact_forces(self._state, action, self.frame_skip, active)
            self._state, self._next = self._next, self._state
            self._position = self._xpos.copy()
            if active is not None:  # a frozen copy stays where it was
                self._position[~active] = position_before[~active]
            cfrc = self._cfrc
        else:
            self._state = self.physics_step(action)[:, -1].copy()
            self._position = self._root_position(self._state)
            cfrc = None
        velocity = (self._position - position_before) / self.dt
        qpos, qvel = self.qpos, self.qvel
        reward, _terms = self.family.rewards(velocity, self._position, action, cfrc, self._params)
        terminated = self.family.terminations(qpos, qvel)
        info = {"x_velocity": torch.as_tensor(velocity[:, 0], dtype=torch.float32).to(self.device)}
        if self.record_state:
            info["qpos"] = torch.as_tensor(qpos.copy()).to(self.device)
            info["qvel"] = torch.as_tensor(qvel.copy()).to(self.device)
        return (self._observe(), torch.as_tensor(reward, dtype=torch.float32).to(self.device),
                torch.as_tensor(terminated).to(self.device), info)

    def close(self):
        if self._pool is not None and self._pool.rollout_ is not None:
            self._pool.close()
        if self._substep_pool is not None:
            self._substep_pool.shutdown(wait=False)
        self.single.close()
