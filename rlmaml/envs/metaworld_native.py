"""A native batched engine for Meta-World: every copy's physics in one loop of ``mujoco.mj_step`` calls, and the
observations, v2 rewards and success of each task class computed in numpy over that class's copies.

A task class plugs in as a :class:`~rlmaml.envs.metaworld_rewards.NativeClass` (its ``_get_pos_objects``/
``_get_quat_objects`` and its ``evaluate_state``, vectorised), registered with ``native_class``; ``NATIVE_CLASSES``
holds them (``rlmaml/envs/metaworld_classes/``). An ML1 family has the engine when its class is registered, ML10 when all 15 of
its classes are. ``docs/extending/metaworld-class.md`` walks through adding one.

Reset is metaworld's own: a task's initial state is the metaworld env's state after ``reset()`` with that task
set (its hand settles for 50 × ``frame_skip`` substeps, then the objects are placed), which depends on the task
only (``mj_resetData`` comes first, metaworld freezes each task's random vector), so it is taken once per task
from one :class:`~rlmaml.envs.metaworld_tasks.MetaWorldEnv` and kept (:class:`_Start`): the model's frames as the
reset left them (:data:`MODEL_FIELDS`: many classes move bodies of the model and the goal site to the task's
positions, and nothing else of the model changes, as a test checks), its integration state
(``mj_getState(mjSTATE_INTEGRATION)``: time, joints, controls, mocap, the solver's warm start), the reset
observation and the per-episode constants the rewards read (``_target_pos``, ``obj_init_pos``, ``init_tcp``,
``hand_init_pos`` and the class's own). The copies of one task share a model (a
metaworld model is about 18 MB, mostly meshes), the class's model with the task's frames written in; a reset copies
the snapshot's state into the copy's own ``MjData`` (``mj_setState``).

A step does what ``SawyerXYZEnv.step`` does:

* ``set_xyz_action``: the mocap position moves by ``clip(action[:3], -1, 1) * action_scale`` (float32, as the env
  receives float32 actions), clipped to the class's ``[mocap_low, mocap_high]``; the mocap quaternion stays
  ``[1, 0, 1, 0]`` (set by the reset and never changed);
* the gripper's controls ``[action[3], -action[3]]`` and ``mj_step`` with ``nstep = frame_skip`` on the copy's own
  ``MjData`` (one per copy, so the solver's warm start carries over as in the single env);
* ``mj_kinematics`` for the positions the observation and the reward read (body, site and geom frames).
  metaworld calls ``mj_forward`` there; it does not change the state the next ``mj_step`` starts from, and the
  positions are the same numbers ``mj_kinematics`` computes. Where a reward reads contact forces
  (``touching_object``), :meth:`Copies.touching` runs ``mj_forward`` for the copies where they matter;
* ``_get_obs`` (hand, gripper opening, the class's objects' positions and quaternions padded to 18, the previous
  18, the goal slot: zero, or the target with ``observe_goal``) clipped to the class's observation space, and the
  class's v2 reward, success and info entries.

``tests/test_metaworld_native.py`` checks the trajectories against ``make_batched(env_id, n, engine="sync")``:
observations and success bit for bit, the rewards and the other info entries to float32 rounding (metaworld
computes some terms in float32, depending on the types its arithmetic meets; ``reach-v3`` and ``push-v3`` follow
them exactly and are equal bit for bit). Episodes are truncated at ``max_episode_steps`` (default 500,
metaworld's ``max_path_length``), reported as terminated, as the Gymnasium-vector path does. With
``num_threads`` > 1 the copies are split into contiguous chunks stepped on a thread pool (``mj_step`` releases the
GIL).
"""

from __future__ import annotations

import copy
import importlib.metadata
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import mujoco
import numpy as np
import torch

from rlmaml.errors import UserError

from . import metaworld_classes  # noqa: F401  (registers the task classes)
from .batched import BatchedEnv, _as_numpy_actions
from .batched_mujoco import default_num_threads
from .metaworld_rewards import (
    INFO_KEYS,
    NATIVE_CLASSES,
    ON_REGISTER,
    NativeClass,
    gripper_caging,
    gripper_effort,
    hamacher,
    native_class,
    native_env_error,
    native_env_ids,
    norm,
    object_caging,
    quat_from_xmat,
    tolerance,
)
from .metaworld_tasks import HORIZON, import_metaworld
from .process_vector import chunk_bounds

METAWORLD_VERSION = "3.1.1"  # the version whose reward code this engine reproduces
OBJECT_SLOTS = 14  # SawyerXYZEnv._obs_obj_max_len: the objects' positions and quaternions, zero-padded
STARTS_KEPT = 4096  # task snapshots kept (a few kB each), the least recently used dropped first
#: what a task's snapshot keeps: everything the next mj_step reads (the test of the premise compares the same)
INTEGRATION_STATE = mujoco.mjtState.mjSTATE_INTEGRATION
#: the model arrays metaworld's reset_model writes (bodies and the goal site moved to the task's positions)
MODEL_FIELDS = ("body_pos", "body_quat", "site_pos", "site_quat", "geom_pos", "geom_quat")


# ----------------------------------------------------------------------------- the copies of one class
class _Views(NamedTuple):
    """A copy's MjData arrays (views, made once: pybind's attribute access is slow)."""

    xpos: np.ndarray
    xquat: np.ndarray
    site_xpos: np.ndarray
    site_xmat: np.ndarray
    geom_xpos: np.ndarray
    geom_xmat: np.ndarray
    qpos: np.ndarray
    qvel: np.ndarray
    mocap_pos: np.ndarray
    ctrl: np.ndarray


def _views(d: mujoco.MjData) -> _Views:
    return _Views(d.xpos, d.xquat, d.site_xpos, d.site_xmat, d.geom_xpos, d.geom_xmat, d.qpos, d.qvel, d.mocap_pos, d.ctrl)


class Copies:
    """The copies of one task class in a step (what :class:`NativeClass` methods read): their positions after the
    step, gathered from each copy's ``MjData`` on first use, and the per-episode constants ``const[key]`` ``[n, …]``.

    ``body(name)`` is ``data.body(name).xpos`` (metaworld's ``get_body_com`` too), ``body_quat`` its ``xquat``,
    ``site``/``geom`` the site's and geom's ``xpos``, ``site_xmat``/``geom_xmat`` their frames ``[n, 9]``, ``qpos(joint)``
    the joint's coordinates, ``tcp_center`` the middle of the two end-effector sites."""

    def __init__(self, engine: MetaWorldNativeEnv, name: str, index: np.ndarray) -> None:
        self.name = name
        self.index = index
        self.n = len(index)
        self._engine = engine
        self._model = engine._models[index[0]]
        self._cache: dict[tuple, np.ndarray] = {}
        starts = [engine._start_of[k] for k in index]
        self.const = {key: np.stack([np.asarray(s.const[key], dtype=np.float64) for s in starts])
                      for key in starts[0].const}

    def refresh(self) -> None:
        """Forget the gathered positions (the engine calls it after each step)."""
        self._cache.clear()

    @property
    def _ids(self) -> dict:
        """{(kind, name): id} in this class's model (the same XML for every copy of the class)."""
        return self._engine._ids.setdefault(self.name, {})

    def _lookup(self, kind: str, name: str) -> int:
        ids = self._ids
        found = ids.get((kind, name))
        if found is None:
            found = ids[(kind, name)] = getattr(self._model, kind)(name).id
        return found

    def _gather(self, field_name: str, kind: str, name: str) -> np.ndarray:
        key = (field_name, name)
        out = self._cache.get(key)
        if out is None:
            i = self._lookup(kind, name)
            views = self._engine._views
            out = np.stack([getattr(views[k], field_name)[i] for k in self.index])
            self._cache[key] = out
        return out

    def body(self, name: str) -> np.ndarray:
        return self._gather("xpos", "body", name)

    def body_quat(self, name: str) -> np.ndarray:
        return self._gather("xquat", "body", name)

    def site(self, name: str) -> np.ndarray:
        return self._gather("site_xpos", "site", name)

    def site_xmat(self, name: str) -> np.ndarray:
        return self._gather("site_xmat", "site", name)

    def geom(self, name: str) -> np.ndarray:
        return self._gather("geom_xpos", "geom", name)

    def geom_xmat(self, name: str) -> np.ndarray:
        return self._gather("geom_xmat", "geom", name)

    def qpos(self, joint: str) -> np.ndarray:
        """The joint's ``qpos`` entries ``[n, width]`` (1 for a hinge or slide joint)."""
        key = ("qpos", joint)
        out = self._cache.get(key)
        if out is None:
            j = self._lookup("joint", joint)
            start = int(self._model.jnt_qposadr[j])
            width = {0: 7, 1: 4, 2: 1, 3: 1}[int(self._model.jnt_type[j])]
            views = self._engine._views
            out = self._cache[key] = np.stack([views[k].qpos[start:start + width] for k in self.index])
        return out

    @property
    def tcp_center(self) -> np.ndarray:
        """``SawyerMocapBase.tcp_center``: the middle of the two end-effector sites ``[n, 3]``."""
        return (self.site("rightEndEffector") + self.site("leftEndEffector")) / 2.0

    def geom_id(self, name: str) -> int:
        return self._lookup("geom", name)

    def touching(self, geom: str | int, where: np.ndarray | None = None) -> np.ndarray:
        """``SawyerXYZEnv.touching_object(geom)`` of the copies where ``where`` holds (False elsewhere): both pads
        press on the geom (``mj_forward`` first: the step computed kinematics only)."""
        g = self.geom_id(geom) if isinstance(geom, str) else int(geom)
        pads = (self.geom_id("leftpad_geom"), self.geom_id("rightpad_geom"))
        out = np.zeros(self.n, dtype=bool)
        for i in np.flatnonzero(np.ones(self.n, dtype=bool) if where is None else where):
            k = self.index[i]
            m, d = self._engine._models[k], self._engine._datas[k]
            mujoco.mj_forward(m, d)
            contact = d.contact
            g1, g2, address = np.asarray(contact.geom1), np.asarray(contact.geom2), np.asarray(contact.efc_address)
            on_object = (g1 == g) | (g2 == g)
            forces = [sum(float(d.efc_force[r]) for r in address[on_object & ((g1 == pad) | (g2 == pad))])
                      for pad in pads]
            out[i] = 0 < forces[0] and 0 < forces[1]
        return out


# ----------------------------------------------------------------------------- the engine
@dataclass(frozen=True)
class _Start:
    """A task's model and state after metaworld's reset, with the numbers its steps and rewards read."""

    name: str  # the task class
    key: tuple  # (class, index, split)
    fields: dict  # the MODEL_FIELDS arrays after the reset
    state: np.ndarray  # mj_getState(mjSTATE_INTEGRATION): time, qpos, qvel, act, mocap, ctrl, warm start, ...
    obs: np.ndarray  # metaworld's reset observation (39 numbers, float64)
    obs_low: np.ndarray
    obs_high: np.ndarray
    mocap_low: np.ndarray
    mocap_high: np.ndarray
    action_scale: float
    frame_skip: int
    const: dict = field(default_factory=dict)


def _standard_constants(inner) -> dict[str, np.ndarray]:
    """The per-episode numbers of every class (zeros where a class has none)."""
    out = {}
    for key, attribute in (("target", "_target_pos"), ("obj_init", "obj_init_pos"), ("init_tcp", "init_tcp"),
                           ("hand_init", "hand_init_pos")):
        value = getattr(inner, attribute, None)
        out[key] = np.zeros(3) if value is None else np.array(value, dtype=np.float64).reshape(3)
    return out


class MetaWorldNativeEnv(BatchedEnv):
    """``num_envs`` copies of a Meta-World family whose classes are all in :data:`NATIVE_CLASSES` (the module
    docstring says how a step is computed).

    ``env_kwargs`` go to :class:`~rlmaml.envs.metaworld_tasks.MetaWorldEnv` (``benchmark_seed``,
    ``observe_goal``); ``record_state`` puts every copy's ``qpos``/``qvel`` after each step in its info
    (zero-padded to the longest of the copies' models when classes differ)."""

    def __init__(self, env_id: str, num_envs: int, *, device="cpu", oracle: bool = False,
                 num_threads: int | None = None, max_episode_steps: int | None = None, record_state: bool = False,
                 **env_kwargs) -> None:
        super().__init__()
        from .registry import family

        if isinstance(env_id, str) and ":" in env_id:  # module:EnvId imports the module, which may add a class
            env_id = family(env_id).env_id
        error = native_env_error(env_id)
        if error:
            raise UserError(error)
        import_metaworld()
        version = importlib.metadata.version("metaworld")
        if version != METAWORLD_VERSION:
            raise UserError(f"the native Meta-World engine reproduces metaworld {METAWORLD_VERSION}'s rewards, "
                            f"found metaworld {version}; use engine='sync' or 'processes'")
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs <= 0:
            raise UserError(f"num_envs must be a positive integer, got {num_envs!r}")
        if max_episode_steps is None:
            max_episode_steps = HORIZON
        if (isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, (int, np.integer))
                or not 0 < max_episode_steps <= HORIZON):
            raise UserError(f"max_episode_steps must be an integer in [1, {HORIZON}] (metaworld's max_path_length), "
                            f"got {max_episode_steps!r}")
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                        or num_threads < 0):
            raise UserError(f"num_threads must be a non-negative integer or None, got {num_threads!r}")
        self.env_id = env_id
        self.record_state = bool(record_state)
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.oracle = bool(oracle)
        self.max_episode_steps = int(max_episode_steps)
        self._single = family(env_id).entry_point(**env_kwargs)  # a MetaWorldEnv: resets, tasks, task vectors
        self.observe_goal = self._single.observe_goal
        space = self._single.action_space
        self.action_dim = int(np.prod(space.shape))
        self.action_low = np.asarray(space.low, dtype=np.float64).reshape(-1)
        self.action_high = np.asarray(space.high, dtype=np.float64).reshape(-1)
        self._starts: OrderedDict[tuple, _Start] = OrderedDict()
        self._ids: dict[str, dict] = {}  # class -> {(kind, name): id} in its model
        self._base_models: dict[str, mujoco.MjModel] = {}  # class -> its model (a copy, frames of any task)
        self._model_pool: dict[str, list[mujoco.MjModel]] = {}  # class -> the models its copies step
        first = self._single.sample_tasks_from(np.random.default_rng(0), 1)[0]
        self.observation_dim = len(self._start(first).obs) + (len(self.task_vector(first)) if self.oracle else 0)

        N = self.num_envs
        self._models: list[mujoco.MjModel | None] = [None] * N
        self._datas: list[mujoco.MjData | None] = [None] * N
        self._views: list[_Views | None] = [None] * N
        self._data_class: list[str | None] = [None] * N
        self._start_of: list[_Start] = []
        self._groups: list[Copies] = []
        self._mocap = np.zeros((N, 3))
        self._prev = np.zeros((N, 18))
        self._steps = np.zeros(N, dtype=np.int64)
        self._reset_done = False

        self.num_threads = default_num_threads() if num_threads is None else int(num_threads)
        nthread = max(1, min(self.num_threads, N))
        self._pool = ThreadPoolExecutor(nthread) if nthread > 1 else None
        self._chunks = chunk_bounds(N, nthread)
        self.physics_threads = nthread if nthread > 1 else 0

    # ---- tasks -------------------------------------------------------------------------------------
    def _sample_tasks(self, n, rng):
        return self._single.sample_tasks_from(rng, n)

    def task_vector(self, task):
        return np.asarray(self._single.task_vector(task), dtype=np.float64)

    def _start(self, task: dict) -> _Start:
        """The task's model and state after metaworld's reset (computed once per task and kept; the env validates
        the task against the benchmark's classes)."""
        task = self._single.validate_task(task)
        key = (task["class"], task["index"], task["split"])
        start = self._starts.get(key)
        if start is not None:
            self._starts.move_to_end(key)
            return start
        spec = NATIVE_CLASSES[task["class"]]
        obs, _ = self._single.reset(options={"task": task})
        inner = self._single._inner
        if type(inner).__name__ != spec.env_class or inner.reward_function_version != "v2":
            raise UserError(f"the native Meta-World engine expects metaworld's {spec.env_class} with the v2 reward "
                            f"for {task['class']}, got {type(inner).__name__} ({inner.reward_function_version})")
        if inner.model.nmocap != 1:
            raise UserError(f"the native Meta-World engine expects one mocap body, {task['class']}'s model has "
                            f"{inner.model.nmocap}")
        if task["class"] not in self._base_models:
            self._base_models[task["class"]] = copy.deepcopy(inner.model)
        state = np.empty(mujoco.mj_stateSize(inner.model, INTEGRATION_STATE))
        mujoco.mj_getState(inner.model, inner.data, state, INTEGRATION_STATE)
        fields = {name: np.array(getattr(inner.model, name)) for name in MODEL_FIELDS}
        space = inner.sawyer_observation_space
        const = {**_standard_constants(inner), **{k: np.asarray(v, dtype=np.float64)
                                                  for k, v in spec.constants(inner).items()}}
        start = _Start(task["class"], key, fields, state, np.asarray(obs, dtype=np.float64).copy(),
                       np.asarray(space.low, dtype=np.float64), np.asarray(space.high, dtype=np.float64),
                       np.asarray(inner.mocap_low, dtype=np.float64), np.asarray(inner.mocap_high, dtype=np.float64),
                       inner.action_scale, int(inner.frame_skip), const)
        self._starts[key] = start
        while len(self._starts) > STARTS_KEPT:
            self._starts.popitem(last=False)
        return start

    def _apply_tasks(self, tasks):
        starts = [self._start(t) for t in tasks]
        # one model per distinct task, from a pool per class, with the task's frames written in
        model_of, used = {}, {}
        for start in starts:
            if start.key not in model_of:
                pool = self._model_pool.setdefault(start.name, [])
                i = used[start.name] = used.get(start.name, -1) + 1
                if i == len(pool):
                    pool.append(copy.deepcopy(self._base_models[start.name]))
                model_of[start.key] = pool[i]
                for name, value in start.fields.items():
                    getattr(pool[i], name)[:] = value
        for k, start in enumerate(starts):
            model = model_of[start.key]
            if self._data_class[k] != start.name:  # another class: another structure
                self._datas[k] = mujoco.MjData(model)
                self._views[k] = _views(self._datas[k])
                self._data_class[k] = start.name
            self._models[k] = model
        self._start_of = starts
        self._mocap_low = np.stack([s.mocap_low for s in starts])
        self._mocap_high = np.stack([s.mocap_high for s in starts])
        # metaworld's action_scale is a Python float, which meets the float32 action as a float32
        self._action_scale = np.array([s.action_scale for s in starts], dtype=np.float32)[:, None]
        self._obs_low = np.stack([s.obs_low for s in starts])
        self._obs_high = np.stack([s.obs_high for s in starts])
        self._target = np.stack([s.const["target"] for s in starts])
        names = [s.name for s in starts]
        self._groups = [Copies(self, name, np.array([k for k, n in enumerate(names) if n == name]))
                        for name in dict.fromkeys(names)]
        self._reset_done = False

    # ---- dynamics ------------------------------------------------------------------------------------
    def reset(self, seed=None):
        """Every copy at its task's initial state (metaworld's reset; ``seed`` does not change it, as in the
        single env, where it seeds only the task generator)."""
        self._require_tasks()
        for k, start in enumerate(self._start_of):
            d = self._datas[k]
            mujoco.mj_setState(self._models[k], d, start.state, INTEGRATION_STATE)
            self._mocap[k] = d.mocap_pos[0]
        obs = np.stack([s.obs for s in self._start_of])
        self._prev = obs[:, :18].copy()
        self._steps[:] = 0
        self._reset_done = True
        return self._with_task(torch.as_tensor(obs.astype(np.float32), device=self.device))

    def _physics_chunk(self, lo: int, hi: int, mocap: np.ndarray, ctrl: np.ndarray, active) -> None:
        step, kinematics = mujoco.mj_step, mujoco.mj_kinematics
        for k in range(lo, hi):
            if active is not None and not active[k]:  # finished episode: frozen
                continue
            views, m = self._views[k], self._models[k]
            views.mocap_pos[0] = mocap[k]
            views.ctrl[:] = ctrl[k]
            d = self._datas[k]
            step(m, d, self._start_of[k].frame_skip)
            kinematics(m, d)

    def _physics(self, mocap, ctrl, active) -> None:
        if self._pool is None or len(self._chunks) == 1:
            for lo, hi in self._chunks:
                self._physics_chunk(lo, hi, mocap, ctrl, active)
        else:
            for future in [self._pool.submit(self._physics_chunk, lo, hi, mocap, ctrl, active)
                           for lo, hi in self._chunks]:
                future.result()

    def step(self, actions, active=None):
        """One env step of every copy; copies with ``active[k]`` False are not simulated (their outputs are
        those of the frozen state)."""
        a = _as_numpy_actions(actions, self.num_envs, self.action_dim).astype(np.float32)  # as the generic path
        if not self._reset_done:
            self._require_tasks()
            raise UserError("reset() must be called before the first step of a batched env")
        if active is not None:
            active = np.asarray(torch.as_tensor(active).cpu(), dtype=bool).reshape(self.num_envs)
        # SawyerXYZEnv.set_xyz_action: float32 deltas added to the float64 mocap position, then clipped
        delta = np.clip(a[:, :3], -1, 1) * self._action_scale
        mocap = np.clip(self._mocap + delta, self._mocap_low, self._mocap_high)
        ctrl = np.stack([a[:, 3], -a[:, 3]], axis=1).astype(np.float64)
        if active is not None:
            mocap[~active] = self._mocap[~active]
        self._physics(mocap, ctrl, active)
        self._mocap = mocap
        self._steps += 1 if active is None else active

        for group in self._groups:
            group.refresh()
        obs = self._observe()
        reward = np.zeros(self.num_envs)
        info = {key: np.zeros(self.num_envs) for key in INFO_KEYS}
        for group in self._groups:
            r, i = NATIVE_CLASSES[group.name].evaluate(group, obs[group.index], a[group.index])
            reward[group.index] = r
            for key in INFO_KEYS:
                info[key][group.index] = i[key]
        terminated = self._steps >= self.max_episode_steps
        out_info = {k: torch.as_tensor(info[k].astype(np.float32), device=self.device) for k in INFO_KEYS}
        if self.record_state:
            for key in ("qpos", "qvel"):
                rows = [getattr(v, key) for v in self._views]
                width = max(len(r) for r in rows)
                state = np.zeros((self.num_envs, width))
                for k, r in enumerate(rows):
                    state[k, :len(r)] = r
                out_info[key] = torch.as_tensor(state, device=self.device)
        return (self._with_task(torch.as_tensor(obs.astype(np.float32), device=self.device)),
                torch.as_tensor(reward.astype(np.float32), device=self.device),
                torch.as_tensor(terminated, device=self.device), out_info)

    # ---- observations ----------------------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        """``SawyerXYZEnv._get_obs`` clipped to the observation space, as ``step`` returns it ``[N, 39]``."""
        N = self.num_envs
        curr = np.zeros((N, 18))
        for group in self._groups:
            index = group.index
            curr[index, 0:3] = group.body("hand")
            distance = norm(group.body("rightclaw") - group.body("leftclaw"))
            curr[index, 3] = np.clip(distance / 0.1, 0.0, 1.0)
            pos, quat = NATIVE_CLASSES[group.name].objects(group)
            slots = np.zeros((group.n, OBJECT_SLOTS))
            for j in range(pos.shape[1] // 3):  # position, quaternion of each object in turn
                slots[:, 7 * j:7 * j + 3] = pos[:, 3 * j:3 * j + 3]
                slots[:, 7 * j + 3:7 * j + 7] = quat[:, 4 * j:4 * j + 4]
            curr[index, 4:] = slots
        goal = self._target if self.observe_goal else np.zeros((N, 3))
        obs = np.clip(np.concatenate([curr, self._prev, goal], axis=1), self._obs_low, self._obs_high)
        self._prev = curr
        return obs

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        self._single.close()


def native_engine(env_id: str, num_envs: int, **kwargs) -> MetaWorldNativeEnv:
    """The engine factory of a native family's record (:class:`~rlmaml.envs.registry.TaskFamily`'s ``engine``)."""
    return MetaWorldNativeEnv(env_id, num_envs, **kwargs)


def compare_with_metaworld(env_id: str, num_envs: int = 4, steps: int = 200, seed: int = 0,
                           observe_goal: bool = False) -> dict[str, float]:
    """Step this engine and metaworld's own env (``GymVectorBatchedEnv``, as ``make_batched(env_id, n,
    engine="sync")`` builds it) on ``num_envs`` train tasks with the same random actions (uniform on [−1.2, 1.2], a
    little beyond the box) for ``steps`` steps: the largest absolute difference of the observations, the rewards,
    the terminations and each info entry (all compared as the float32 tensors ``step`` returns). A new
    :class:`NativeClass` should give 0 for the observations, terminations and ``success``, and float32 rounding
    for the rest."""
    from .batched import GymVectorBatchedEnv

    sync = GymVectorBatchedEnv(env_id, num_envs, vectorization="sync", observe_goal=observe_goal)
    native = MetaWorldNativeEnv(env_id, num_envs, num_threads=1, observe_goal=observe_goal)
    tasks = sync.sample_tasks(num_envs, seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.2, 1.2, size=(steps, num_envs, 4))
    out: dict[str, float] = {}

    def worst(key, a, b):
        out[key] = max(out.get(key, 0.0), float((a.double() - b.double()).abs().max()))

    for env in (sync, native):
        env.set_tasks(tasks)
    worst("observations", sync.reset(seed=seed), native.reset(seed=seed))
    for t in range(steps):
        (obs_a, rew_a, done_a, info_a), (obs_b, rew_b, done_b, info_b) = (
            env.step(torch.as_tensor(actions[t])) for env in (sync, native))
        worst("observations", obs_a, obs_b)
        worst("reward", rew_a, rew_b)
        worst("terminated", done_a, done_b)
        for key in INFO_KEYS:
            worst(key, info_a[key], info_b[key])
    sync.close()
    native.close()
    return out


def _offer_engine(spec: NativeClass) -> None:
    """Give the registered families a class registered after ``rlmaml.envs`` makes them (a plugin) the engine."""
    from .registry import family_ids, set_engine

    registered = set(family_ids())  # empty while rlmaml.envs is being imported: it adds the engines itself
    for env_id in native_env_ids():
        if env_id in registered:
            set_engine(env_id, native_engine)


ON_REGISTER.append(_offer_engine)


def with_native_engines(records):
    """The Meta-World records, those of :func:`native_env_ids` with :func:`native_engine` as their engine."""
    import dataclasses

    native = set(native_env_ids())
    return tuple(dataclasses.replace(r, engine=native_engine) if r.env_id in native else r for r in records)


__all__ = ["INFO_KEYS", "NATIVE_CLASSES", "Copies", "MetaWorldNativeEnv", "NativeClass", "compare_with_metaworld",
           "gripper_caging", "gripper_effort", "hamacher", "native_class", "native_engine", "native_env_error",
           "native_env_ids", "norm", "object_caging", "quat_from_xmat", "tolerance", "with_native_engines"]
