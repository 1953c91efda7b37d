"""A native batched engine for Meta-World ML1 ``reach-v3`` and ``push-v3``: every copy's physics in one loop of
``mujoco.mj_step`` calls, observations, v2 rewards and success computed in numpy over the copies.

Reset is metaworld's own: a task's initial state is the metaworld env's state after ``reset()`` with that task
set (its hand settles for 50 × ``frame_skip`` substeps, then the object is put at the task's position), which
depends on the task only (``mj_resetData`` comes first, metaworld freezes each task's random vector), so it is
taken once per task from one :class:`~rlmaml.envs.metaworld_tasks.MetaWorldEnv` and kept: the whole ``MjData``
(``mj_copyData``: state, mocap, warm start), the reset observation and the per-episode constants the rewards read
(``_target_pos``, ``obj_init_pos``, ``init_tcp``, ``hand_init_pos``). A reset copies that snapshot into each
copy's own ``MjData``.

A step does what ``SawyerXYZEnv.step`` does, in the same floating-point operations:

* ``set_xyz_action``: the mocap position moves by ``clip(action[:3], -1, 1) * action_scale`` (float32, as the env
  receives float32 actions), clipped to ``[mocap_low, mocap_high]``; the mocap quaternion stays ``[1, 0, 1, 0]``
  (set by the reset and never changed);
* the gripper's controls ``[action[3], -action[3]]`` and ``mj_step`` with ``nstep = frame_skip`` on the copy's own
  ``MjData`` (one per copy, so the solver's warm start carries over as in the single env);
* ``mj_kinematics`` for the positions the observation and the reward read (body and site positions, the object
  geom's frame). metaworld calls ``mj_rnePostConstraint`` and ``mj_forward`` there; neither changes the state the
  next ``mj_step`` starts from, and the positions are the same numbers ``mj_kinematics`` computes. ``push-v3``'s
  ``info["grasp_success"]`` also reads the contact forces: ``mj_forward`` runs for the copies where they matter
  (a gripper opening above 0 and the object lifted 2 cm);
* ``_get_obs`` (hand, gripper opening, object position and scipy's quaternion of its geom frame, padded to 18, the
  previous 18, the goal slot: zero, or the target with ``observe_goal``) clipped to the env's observation space,
  and ``evaluate_state``'s v2 reward, success and info entries, vectorised; the distance thresholds and the
  caging-reward parameters are those written in ``SawyerReachEnvV3.compute_reward`` and
  ``SawyerPushEnvV3.compute_reward`` of metaworld 3.1.1, the sigmoid is ``metaworld.utils.reward_utils``'. Where
  metaworld's arithmetic runs in float32 (push's caging reward when the gripper's effort, a float32 action, is in
  (0, 1] and the hand cages the puck), so does the engine's.

Episodes are truncated at ``max_episode_steps`` (default 500, metaworld's ``max_path_length``), reported as
terminated, as the Gymnasium-vector path does. ``tests/test_metaworld_native.py`` checks the trajectories against
``make_batched(env_id, n, engine="sync")``. With ``num_threads`` > 1 the copies are split into contiguous chunks
stepped on a thread pool (``mj_step`` releases the GIL).
"""

from __future__ import annotations

import copy
import importlib.metadata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from rlmaml.errors import UserError

from .batched import BatchedEnv, _as_numpy_actions
from .batched_mujoco import default_num_threads
from .metaworld_tasks import HORIZON, NATIVE_ML1_TASKS, import_metaworld
from .process_vector import chunk_bounds

NATIVE_CLASSES = NATIVE_ML1_TASKS
NATIVE_ENV_IDS = tuple(f"metaworld/ML1-{c}" for c in NATIVE_CLASSES)
METAWORLD_VERSION = "3.1.1"  # the version whose reward code this engine reproduces
_ENV_CLASSES = {"reach-v3": "SawyerReachEnvV3", "push-v3": "SawyerPushEnvV3"}
_BODIES = ("hand", "rightclaw", "leftclaw", "obj", "leftpad", "rightpad")
_HAND, _RCLAW, _LCLAW, _OBJ, _LPAD, _RPAD = range(len(_BODIES))
_SITES = ("rightEndEffector", "leftEndEffector")
_XZ = [0, 2]
INFO_KEYS = ("success", "near_object", "grasp_success", "grasp_reward", "in_place_reward", "obj_to_target",
             "unscaled_reward")

# metaworld 3.1.1's numbers, written in its compute_reward methods
REACH_TARGET_RADIUS = 0.05  # SawyerReachEnvV3.compute_reward's _TARGET_RADIUS, also its success radius
PUSH_NEAR_OBJECT = 0.03  # SawyerPushEnvV3.evaluate_state: near_object
PUSH_REACH = 0.02  # SawyerPushEnvV3.compute_reward: tcp_to_obj below which the push term is added
PUSH_LIFT = 0.02  # SawyerPushEnvV3.evaluate_state: grasp_success needs the object this much above its start
PUSH_CAGING = {"obj_radius": 0.015, "pad_success_thresh": 0.05, "xz_thresh": 0.005}  # _gripper_caging_reward args
CAGING_GRIP_THRESHOLD = 0.97  # SawyerXYZEnv._gripper_caging_reward: caging above which gripping counts


@dataclass(frozen=True)
class _Start:
    """A task's state after metaworld's reset and the per-episode constants its rewards read."""

    data: mujoco.MjData
    obs: np.ndarray  # metaworld's reset observation (39 numbers, float64)
    target: np.ndarray  # _target_pos
    obj_init: np.ndarray  # obj_init_pos
    in_place_margin: float  # reach: |hand_init_pos - target|; push: |obj_init_pos - target|
    caging_xz_margin: float  # push: |obj_init_pos[xz] - init_tcp[xz]| - xz_thresh


def _long_tail(x: np.ndarray, lower: float, upper: float, margin: np.ndarray) -> np.ndarray:
    """``reward_utils.tolerance(x, bounds=(lower, upper), margin, sigmoid="long_tail")`` for arrays of ``x`` and
    ``margin`` (one per copy), in the same operations."""
    from metaworld.utils import reward_utils

    in_bounds = np.logical_and(lower <= x, x <= upper)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(x < lower, lower - x, x - upper) / margin
        value = np.where(in_bounds, 1.0, reward_utils._sigmoids(d, reward_utils._DEFAULT_VALUE_AT_MARGIN,
                                                                "long_tail"))
    return np.where(margin == 0, np.where(in_bounds, 1.0, 0.0), value)


def _norm(x: np.ndarray) -> np.ndarray:
    """``np.linalg.norm`` of each row: ``sqrt(x · x)`` through matmul's dot kernel, the one ``np.linalg.norm`` of a
    single vector uses (the reductions of ``np.linalg.norm(x, axis=-1)`` may round differently)."""
    return np.sqrt(np.matmul(x[..., None, :], x[..., :, None])[..., 0, 0])


def _hamacher(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``reward_utils.hamacher_product`` element-wise."""
    denominator = a + b - (a * b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (a * b) / denominator, 0.0)


def native_env_error(env_id) -> str | None:
    """The one-line error for an env id this engine does not step, or None."""
    if env_id in NATIVE_ENV_IDS:
        return None
    name = env_id.removeprefix("metaworld/ML1-") if isinstance(env_id, str) else env_id
    what = f"task class {name!r} ({env_id!r})" if name != env_id else f"env {env_id!r}"
    return (f"the native Meta-World engine steps the task classes {list(NATIVE_CLASSES)} "
            f"({', '.join(NATIVE_ENV_IDS)}) only, got {what}; use engine='sync' or 'processes'")


class MetaWorldNativeEnv(BatchedEnv):
    """``num_envs`` copies of ``metaworld/ML1-reach-v3`` or ``metaworld/ML1-push-v3`` (see the module docstring).

    ``env_kwargs`` go to :class:`~rlmaml.envs.metaworld_tasks.MetaWorldEnv` (``benchmark_seed``,
    ``observe_goal``); ``record_state`` puts every copy's ``qpos``/``qvel`` after each step in its info."""

    def __init__(self, env_id: str, num_envs: int, *, device="cpu", oracle: bool = False,
                 num_threads: int | None = None, max_episode_steps: int | None = None, record_state: bool = False,
                 **env_kwargs) -> None:
        super().__init__()
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
        from .registry import family

        self.env_id = env_id
        self.record_state = bool(record_state)
        self.task_class = env_id.removeprefix("metaworld/ML1-")
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.oracle = bool(oracle)
        self.max_episode_steps = int(max_episode_steps)
        self._single = family(env_id).entry_point(**env_kwargs)  # a MetaWorldEnv: resets, tasks, task vectors
        self.observe_goal = self._single.observe_goal
        inner = self._single._inner
        if type(inner).__name__ != _ENV_CLASSES[self.task_class] or inner.reward_function_version != "v2":
            raise UserError(f"the native Meta-World engine expects metaworld's {_ENV_CLASSES[self.task_class]} "
                            f"with the v2 reward, got {type(inner).__name__} ({inner.reward_function_version})")
        self.model = copy.deepcopy(inner.model)  # its own: the probe's moves the goal site at each reset
        m = self.model
        if m.nmocap != 1:
            raise UserError(f"the native Meta-World engine expects one mocap body, the model has {m.nmocap}")
        self.frame_skip = int(inner.frame_skip)
        self.action_scale = inner.action_scale
        self.mocap_low = np.asarray(inner.mocap_low, dtype=np.float64)
        self.mocap_high = np.asarray(inner.mocap_high, dtype=np.float64)
        self._body_ids = np.array([m.body(b).id for b in _BODIES])
        self._site_ids = np.array([m.site(s).id for s in _SITES])
        self._obj_geom = m.geom("objGeom").id
        self._pad_geoms = (m.geom("leftpad_geom").id, m.geom("rightpad_geom").id)
        self._target_radius = float(getattr(type(inner), "TARGET_RADIUS", REACH_TARGET_RADIUS))

        space = self._single.action_space
        self.action_dim = int(np.prod(space.shape))
        self.action_low = np.asarray(space.low, dtype=np.float64).reshape(-1)
        self.action_high = np.asarray(space.high, dtype=np.float64).reshape(-1)
        first = self._single.sample_tasks_from(np.random.default_rng(0), 1)[0]
        self._starts: dict[tuple, _Start] = {}
        self._obs_low = self._obs_high = None
        self._start(first)  # also fixes the observation bounds (they depend on the observability)
        self.observation_dim = len(self._obs_low) + (len(self.task_vector(first)) if self.oracle else 0)

        N = self.num_envs
        self._datas = [mujoco.MjData(m) for _ in range(N)]
        self._views = [(d, d.mocap_pos, d.ctrl, d.xpos, d.site_xpos, d.geom_xmat) for d in self._datas]
        self._mocap = np.zeros((N, 3))
        self._xpos = np.zeros((N, len(_BODIES), 3))
        self._sites = np.zeros((N, len(_SITES), 3))
        self._xmat = np.zeros((N, 9))
        self._prev = np.zeros((N, 18))
        self._steps = np.zeros(N, dtype=np.int64)
        self._target = np.zeros((N, 3))
        self._obj_init = np.zeros((N, 3))
        self._in_place_margin = np.zeros(N)
        self._caging_xz_margin = np.zeros(N)
        self._start_of: list[_Start] = []
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
        """The task's state after metaworld's reset (computed once per task; the ML1 env validates the task, which
        names its one class)."""
        task = self._single.validate_task(task)
        key = (task["class"], task["index"], task["split"])
        start = self._starts.get(key)
        if start is not None:
            return start
        obs, _ = self._single.reset(options={"task": task})
        inner = self._single._inner
        data = mujoco.MjData(self.model)
        mujoco.mj_copyData(data, self.model, inner.data)
        target = np.array(inner._target_pos, dtype=np.float64)
        obj_init = np.array(inner.obj_init_pos, dtype=np.float64)
        if self.task_class == "reach-v3":  # SawyerReachEnvV3.compute_reward
            in_place_margin = float(np.linalg.norm(inner.hand_init_pos - target))
            caging_xz_margin = 0.0
        else:  # SawyerPushEnvV3.compute_reward, SawyerXYZEnv._gripper_caging_reward
            in_place_margin = float(np.linalg.norm(inner.obj_init_pos - inner._target_pos))
            caging_xz_margin = np.linalg.norm(inner.obj_init_pos[_XZ] - inner.init_tcp[_XZ])
            caging_xz_margin -= PUSH_CAGING["xz_thresh"]
            caging_xz_margin = float(caging_xz_margin)
        start = _Start(data, np.asarray(obs, dtype=np.float64).copy(), target, obj_init, in_place_margin,
                       caging_xz_margin)
        if self._obs_low is None:
            space = inner.sawyer_observation_space
            self._obs_low = np.asarray(space.low, dtype=np.float64)
            self._obs_high = np.asarray(space.high, dtype=np.float64)
        self._starts[key] = start
        return start

    def _apply_tasks(self, tasks):
        starts = [self._start(t) for t in tasks]
        self._start_of = starts
        self._target = np.stack([s.target for s in starts])
        self._obj_init = np.stack([s.obj_init for s in starts])
        self._in_place_margin = np.array([s.in_place_margin for s in starts])
        self._caging_xz_margin = np.array([s.caging_xz_margin for s in starts])

    # ---- dynamics ------------------------------------------------------------------------------------
    def reset(self, seed=None):
        """Every copy at its task's initial state (metaworld's reset; ``seed`` does not change it, as in the
        single env, where it seeds only the task generator)."""
        self._require_tasks()
        for k, start in enumerate(self._start_of):
            d = self._datas[k]
            mujoco.mj_copyData(d, self.model, start.data)
            self._mocap[k] = d.mocap_pos[0]
        self._gather(np.arange(self.num_envs))
        obs = np.stack([s.obs for s in self._start_of])
        self._prev = obs[:, :18].copy()
        self._steps[:] = 0
        self._reset_done = True
        return self._with_task(torch.as_tensor(obs.astype(np.float32), device=self.device))

    def _gather(self, copies) -> None:
        for k in copies:
            _, _, _, xpos, site_xpos, geom_xmat = self._views[k]
            xpos.take(self._body_ids, axis=0, out=self._xpos[k])
            site_xpos.take(self._site_ids, axis=0, out=self._sites[k])
            self._xmat[k] = geom_xmat[self._obj_geom]

    def _physics_chunk(self, lo: int, hi: int, mocap: np.ndarray, ctrl: np.ndarray, active) -> None:
        m, nstep = self.model, self.frame_skip
        step, kinematics = mujoco.mj_step, mujoco.mj_kinematics
        body_ids, site_ids, obj_geom = self._body_ids, self._site_ids, self._obj_geom
        out_xpos, out_sites, out_xmat = self._xpos, self._sites, self._xmat
        for k in range(lo, hi):
            if active is not None and not active[k]:  # finished episode: frozen
                continue
            d, mocap_pos, d_ctrl, xpos, site_xpos, geom_xmat = self._views[k]
            mocap_pos[0] = mocap[k]
            d_ctrl[:] = ctrl[k]
            step(m, d, nstep)
            kinematics(m, d)
            xpos.take(body_ids, axis=0, out=out_xpos[k])
            site_xpos.take(site_ids, axis=0, out=out_sites[k])
            out_xmat[k] = geom_xmat[obj_geom]

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
        delta = np.clip(a[:, :3], -1, 1) * self.action_scale
        mocap = np.clip(self._mocap + delta, self.mocap_low, self.mocap_high)
        ctrl = np.stack([a[:, 3], -a[:, 3]], axis=1).astype(np.float64)
        if active is not None:
            mocap[~active] = self._mocap[~active]
        self._physics(mocap, ctrl, active)
        self._mocap = mocap
        self._steps += 1 if active is None else active

        obs = self._observe()
        if self.task_class == "reach-v3":
            reward, info = self._reach(obs)
        else:
            reward, info = self._push(obs, a)
        terminated = self._steps >= self.max_episode_steps
        out_info = {k: torch.as_tensor(info[k].astype(np.float32), device=self.device) for k in INFO_KEYS}
        if self.record_state:
            for key in ("qpos", "qvel"):
                out_info[key] = torch.as_tensor(np.stack([getattr(d, key) for d in self._datas]), device=self.device)
        return (self._with_task(torch.as_tensor(obs.astype(np.float32), device=self.device)),
                torch.as_tensor(reward.astype(np.float32), device=self.device),
                torch.as_tensor(terminated, device=self.device), out_info)

    # ---- observations and rewards ---------------------------------------------------------------------
    @property
    def tcp_center(self) -> np.ndarray:
        """``SawyerMocapBase.tcp_center`` of every copy ``[N, 3]``."""
        return (self._sites[:, 0] + self._sites[:, 1]) / 2.0

    def _observe(self) -> np.ndarray:
        """``SawyerXYZEnv._get_obs`` clipped to the observation space, as ``step`` returns it ``[N, 39]``."""
        from scipy.spatial.transform import Rotation

        N = self.num_envs
        curr = np.zeros((N, 18))
        curr[:, 0:3] = self._xpos[:, _HAND]
        distance = _norm(self._xpos[:, _RCLAW] - self._xpos[:, _LCLAW])
        curr[:, 3] = np.clip(distance / 0.1, 0.0, 1.0)
        curr[:, 4:7] = self._xpos[:, _OBJ]
        curr[:, 7:11] = Rotation.from_matrix(self._xmat.reshape(N, 3, 3)).as_quat()
        goal = self._target if self.observe_goal else np.zeros((N, 3))
        obs = np.clip(np.concatenate([curr, self._prev, goal], axis=1), self._obs_low, self._obs_high)
        self._prev = curr
        return obs

    def _reach(self, obs):
        """``SawyerReachEnvV3.evaluate_state`` (v2)."""
        tcp_to_target = _norm(self.tcp_center - self._target)
        in_place = _long_tail(tcp_to_target, 0.0, REACH_TARGET_RADIUS, self._in_place_margin)
        reward = 10 * in_place
        info = {"success": (tcp_to_target <= REACH_TARGET_RADIUS).astype(np.float64), "near_object": tcp_to_target,
                "grasp_success": np.ones(self.num_envs), "grasp_reward": tcp_to_target, "in_place_reward": in_place,
                "obj_to_target": tcp_to_target, "unscaled_reward": reward}
        return reward, info

    def _push(self, obs, action):
        """``SawyerPushEnvV3.evaluate_state`` (v2), with ``_gripper_caging_reward(high_density=True)``."""
        obj, tcp_opened, tcp = obs[:, 4:7], obs[:, 3], self.tcp_center
        tcp_to_obj = _norm(obj - tcp)
        target_to_obj = _norm(obj - self._target)
        in_place = _long_tail(target_to_obj, 0.0, self._target_radius, self._in_place_margin)

        # SawyerXYZEnv._gripper_caging_reward
        radius, pad_thresh, xz_thresh = (PUSH_CAGING[k] for k in ("obj_radius", "pad_success_thresh", "xz_thresh"))
        pad_y_lr = np.stack([self._xpos[:, _LPAD, 1], self._xpos[:, _RPAD, 1]], axis=1)
        pad_to_obj_lr = np.abs(pad_y_lr - obj[:, 1:2])
        pad_to_objinit_lr = np.abs(pad_y_lr - self._obj_init[:, 1:2])
        caging_lr_margin = np.abs(pad_to_objinit_lr - pad_thresh)
        caging_lr = [_long_tail(pad_to_obj_lr[:, i], radius, pad_thresh, caging_lr_margin[:, i]) for i in range(2)]
        caging_y = _hamacher(*caging_lr)
        caging_xz = _long_tail(_norm(tcp[:, _XZ] - obj[:, _XZ]), 0.0, xz_thresh,
                               self._caging_xz_margin)
        caging = _hamacher(caging_y, caging_xz)
        # gripping = min(max(0, action[-1]), 1.0) / 1.0 if caging > 0.97 else 0.0, where action[-1] is a float32:
        # for 0 < action[-1] <= 1 it stays a float32 and so do the caging reward and the reward made from it
        effort = action[:, -1]
        gripped = (caging > CAGING_GRIP_THRESHOLD) & (effort > 0)
        gripping = np.where(gripped, np.minimum(effort, 1.0).astype(np.float64), 0.0)
        object_grasped = (_hamacher(caging, gripping) + caging) / 2
        reward = 2 * object_grasped
        pushing = (tcp_to_obj < PUSH_REACH) & (tcp_opened > 0)
        reward = np.where(pushing, reward + (1.0 + reward + 5.0 * in_place), reward)
        in_float32 = gripped & (effort <= 1.0)
        if in_float32.any():
            object_grasped[in_float32], reward[in_float32] = self._push_float32(
                caging[in_float32], effort[in_float32], in_place[in_float32], pushing[in_float32])
        reward = np.where(target_to_obj < self._target_radius, 10.0, reward)

        grasp = (tcp_opened > 0) & (obj[:, 2] - PUSH_LIFT > self._obj_init[:, 2])
        for k in np.flatnonzero(grasp):  # touching_main_object needs the contacts at the new state
            grasp[k] = self._touching_object(k)
        info = {"success": (target_to_obj <= self._target_radius).astype(np.float64),
                "near_object": (tcp_to_obj <= PUSH_NEAR_OBJECT).astype(np.float64),
                "grasp_success": grasp.astype(np.float64), "grasp_reward": object_grasped,
                "in_place_reward": in_place, "obj_to_target": target_to_obj, "unscaled_reward": reward}
        return reward, info

    @staticmethod
    def _push_float32(caging, effort, in_place, pushing):
        """The caging reward and the reward of the copies whose gripping is the float32 action: metaworld's
        ``hamacher_product(caging, gripping)``, ``(… + caging) / 2``, ``2 * …`` and ``reward += 1.0 + reward +
        5.0 * in_place`` then compute in float32, the Python floats cast to float32 (numpy's promotion rules)."""
        f32 = np.float32
        a, b = caging.astype(f32), effort.astype(f32)
        product = a * b
        denominator = a + b - product
        with np.errstate(divide="ignore", invalid="ignore"):
            caging_and_gripping = np.where(denominator > 0, product / denominator, f32(0))
        object_grasped = (caging_and_gripping + a) / f32(2)
        reward = f32(2) * object_grasped
        reward = np.where(pushing, reward + (f32(1.0) + reward + (5.0 * in_place).astype(f32)), reward)
        return object_grasped.astype(np.float64), reward.astype(np.float64)

    def _touching_object(self, k: int) -> bool:
        """``SawyerXYZEnv.touching_main_object`` of copy ``k``: both pads press on the object (``mj_forward`` first:
        the step computed kinematics only)."""
        d = self._datas[k]
        mujoco.mj_forward(self.model, d)
        contact = d.contact
        g1, g2, address = np.asarray(contact.geom1), np.asarray(contact.geom2), np.asarray(contact.efc_address)
        on_object = (g1 == self._obj_geom) | (g2 == self._obj_geom)
        forces = []
        for pad in self._pad_geoms:
            rows = address[on_object & ((g1 == pad) | (g2 == pad))]
            forces.append(sum(float(d.efc_force[r]) for r in rows))
        return 0 < forces[0] and 0 < forces[1]

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        self._single.close()


__all__ = ["INFO_KEYS", "NATIVE_CLASSES", "NATIVE_ENV_IDS", "MetaWorldNativeEnv", "native_env_error"]


def native_engine(env_id: str, num_envs: int, **kwargs) -> MetaWorldNativeEnv:
    """The engine factory of a native task's record (:class:`~rlmaml.envs.registry.TaskFamily`'s ``engine``)."""
    return MetaWorldNativeEnv(env_id, num_envs, **kwargs)


def with_native_engines(records):
    """The Meta-World records, those of ML1 :data:`NATIVE_CLASSES` with :func:`native_engine` as their engine."""
    import dataclasses

    native = {f"metaworld/ML1-{task}" for task in NATIVE_CLASSES}
    return tuple(dataclasses.replace(r, engine=native_engine) if r.env_id in native else r for r in records)
