"""Goal-velocity / direction / goal-position MuJoCo task families (Finn et al., 2017, sec. 5.3),
built on Gymnasium's v5 HalfCheetah and Ant models (same XML, ``frame_skip = 5`` by default, observations
and reset noise as v5). Actions are clipped to the action space before they are applied and costed, as
rllab's normalised envs did in the original experiments. Those experiments stepped rllab's models once per
env step: HalfCheetah (Euler, timestep 0.01 s, as v5) at dt = 0.01 s and Ant with one RK4 step of 0.02 s
(v5: RK4, 0.01 s). ``frame_skip=1`` (a v5 constructor argument) gives the HalfCheetah timing and
``frame_skip=1, timestep=0.02`` (``timestep`` overrides the model's ``opt.timestep``) the Ant one. Below, dt is
``timestep · frame_skip`` (0.05 s by default).

HalfCheetah (``v_x = (x_after - x_before) / dt`` from the root slider ``qpos[0]`` as in v5,
observation ``[qpos[1:], qvel]``, never terminates)::

    HalfCheetahVel:  r = -|v_x - v*| - 0.05 ‖a‖²        task {"velocity": v*},  v* ~ U[0, 2]
    HalfCheetahDir:  r = d · v_x - 0.05 ‖a‖²            task {"direction": d},  d ~ U{-1, +1}

Ant (as in v5 the torso position ``p = xpos_torso[:2]`` is read after the step and
``v = (p_after - p_before) / dt``; observation ``[qpos[2:], qvel, clip(cfrc_ext[1:], -1, 1)]``; contact and
survive terms of the original MAML ant tasks)::

    ctrl    = 0.5 · 1e-2 ‖a‖²
    contact = 0.5 · 1e-3 Σ clip(cfrc_ext, -1, 1)²
    AntVel:   r = (-|v_x - v*| + 1) - ctrl - contact + 0.05      task {"velocity": v*},   v* ~ U[0, 3]
    AntDir:   r = d · v_x - ctrl - contact + 0.05                 task {"direction": d},   d ~ U{-1, +1}
    AntGoal:  r = (-‖p_after - g‖₁ + 4) - ctrl - contact + 0.05   task {"goal": [x, y]},   g ~ U[-3, 3]²

An Ant episode terminates when the state is unhealthy: non-finite ``qpos``/``qvel`` or torso height
``qpos[2]`` outside ``[0.2, 1.0]``. ``ant_model="rllab"`` puts the Ant of the original experiments in the v5
model's place: the standing initial pose stored in the XML, rllab's contact softness and reset noise (see
``_AntTaskEnv._use_rllab_model``); the velocity estimate stays as above. ``ant_obs="rllab"`` gives the original
tasks' observation (``AntEnvRandDirec.get_current_obs``), 125 numbers against v5's 105::

    [qpos, qvel, clip(cfrc_ext, -1, 1), xmat_torso, com]

with the absolute ``x, y`` of the root, the contact forces of every body (the world body's too), the torso's
rotation matrix (row-major) and the centre of mass of the whole ant (``subtree_com`` of the torso), all after
the step.

The reward, observation and termination formulas are vectorised class methods shared by the single
Gymnasium envs here and by the batched ``mujoco.rollout`` engine in ``batched_mujoco.py``.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from rlmaml.errors import UserError

from .registry import ANT_MODEL, ANT_OBS
from .task_env import TaskEnvMixin

# Gymnasium's half_cheetah.xml fixes the total mass with the compiler attribute ``settotalmass``, which MuJoCo
# reports as deprecated on every load; the mass it sets is right, and the notice concerns Gymnasium's asset.
_GYMNASIUM_ASSET_NOTICES = ("compiler attribute 'settotalmass' is deprecated",)


@contextlib.contextmanager
def _asset_notices_silenced():
    """While loading a Gymnasium model: drop MuJoCo's deprecation notices about the asset itself, pass any other
    MuJoCo warning on (to the handler installed before, else as a Python ``RuntimeWarning``)."""
    previous = mujoco.get_mju_user_warning()

    def handler(message: str) -> None:
        if any(notice in message for notice in _GYMNASIUM_ASSET_NOTICES):
            return
        if previous is not None:
            previous(message)
        else:
            warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)

    mujoco.set_mju_user_warning(handler)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def _scalar_task(cls, task, key):
    task = TaskEnvMixin.validate_task.__func__(cls, task)
    value = task[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
        raise UserError(f"task {key!r} must be a finite number, got {value!r}")
    return task


class _DirectionTask:
    """Task protocol of the direction families: ``{"direction": d}``, ``d ~ U{-1, +1}``."""

    task_keys = ("direction",)

    @classmethod
    def sample_tasks_from(cls, rng, n):
        return [{"direction": float(d)} for d in rng.choice([-1.0, 1.0], size=n)]

    @classmethod
    def validate_task(cls, task):
        task = _scalar_task(cls, task, "direction")
        if task["direction"] not in (-1, 1):
            raise UserError(f"task 'direction' must be -1 or 1, got {task['direction']!r}")
        return task

    @classmethod
    def task_vector(cls, task):
        return np.array([task["direction"]], dtype=np.float64)


class _VelocityTask:
    """Task protocol of the velocity families: ``{"velocity": v*}``, ``v* ~ U[velocity_range]``."""

    task_keys = ("velocity",)
    velocity_range = (0.0, 2.0)

    @classmethod
    def sample_tasks_from(cls, rng, n):
        return [{"velocity": float(v)} for v in rng.uniform(*cls.velocity_range, size=n)]

    @classmethod
    def validate_task(cls, task):
        return _scalar_task(cls, task, "velocity")

    @classmethod
    def task_vector(cls, task):
        return np.array([task["velocity"]], dtype=np.float64)


class _MujocoTaskEnv(TaskEnvMixin):
    """Shared step/reset logic; subclasses provide the vectorised formulas."""

    needs_contact_forces = False
    needs_torso_kinematics = False  # whether observations() reads the torso's xmat and the centre of mass
    position_dims = 1  # how many root coordinates the velocity/position terms read

    @staticmethod
    def _check_frame_skip(frame_skip) -> None:
        """Gymnasium's base env takes any ``frame_skip``; 0 divides by zero and a negative one runs backwards."""
        if frame_skip is not None and (isinstance(frame_skip, bool) or not isinstance(frame_skip, (int, np.integer))
                                       or frame_skip < 1):
            raise UserError(f"frame_skip must be a positive integer (physics steps per env step), got {frame_skip!r}")

    def initial_state(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A random initial ``(qpos, qvel)`` drawn from ``rng``: Gymnasium v5's ``qpos0 + U(-s, s)``,
        ``qvel0 + s·N(0, 1)`` with ``s = reset_noise_scale`` (the batched engine draws each copy with this too)."""
        s = self._reset_noise_scale
        qpos = self.init_qpos + rng.uniform(low=-s, high=s, size=self.model.nq)
        qvel = self.init_qvel + s * rng.standard_normal(self.model.nv)
        return qpos, qvel

    def reset_model(self):
        self.set_state(*self.initial_state(self.np_random))
        return self._get_obs()

    def _set_timestep(self, timestep: float | None) -> None:
        """Replace the model's physics timestep ``opt.timestep`` (seconds; None keeps the XML's); dt follows."""
        if timestep is None:
            return
        if isinstance(timestep, bool) or not isinstance(timestep, (int, float)) or not 0 < timestep < math.inf:
            raise UserError(f"timestep must be a positive number of seconds, got {timestep!r}")
        self.model.opt.timestep = float(timestep)
        self.metadata = {**self.metadata, "render_fps": int(np.round(1.0 / self.dt))}

    # ---- vectorised formulas (arrays with a leading batch axis) -----------------------------------------
    @classmethod
    def observations(cls, qpos, qvel, cfrc_ext=None, torso=None):
        """Observations ``[n, obs]`` from the state after a step; ``torso`` ``[n, 12]``: the torso's rotation
        matrix and the centre of mass (:meth:`_AntTaskEnv.torso_kinematics`), for the layouts that observe them
        (``needs_torso_kinematics``)."""
        raise NotImplementedError

    @classmethod
    def rewards(cls, velocity, position, action, cfrc_ext, params):
        """-> (reward [n], dict of reward terms [n]); ``velocity``/``position`` are ``[n, position_dims]``."""
        raise NotImplementedError

    @classmethod
    def terminations(cls, qpos, qvel):
        return np.zeros(qpos.shape[0], dtype=bool)

    @classmethod
    def task_params(cls, tasks):
        return np.stack([np.asarray(cls.task_vector(t), dtype=np.float64).reshape(-1) for t in tasks])

    # ---- gymnasium API ---------------------------------------------------------------------------------
    def reset(self, *, seed=None, options=None):
        obs, info = super().reset(seed=seed, options=options)
        self._select_task_on_reset(options)
        return obs, info

    def _root_position(self):
        raise NotImplementedError

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64), self.action_space.low, self.action_space.high)
        position_before = self._root_position().copy()
        self.do_simulation(action, self.frame_skip)
        position_after = self._root_position().copy()
        velocity = (position_after - position_before) / self.dt
        qpos, qvel = self.data.qpos[None].copy(), self.data.qvel[None].copy()
        cfrc = self.data.cfrc_ext[None].copy() if self.needs_contact_forces else None
        params = self.task_params([self._task])
        reward, terms = self.rewards(velocity[None], position_after[None], action[None], cfrc, params)
        terminated = bool(self.terminations(qpos, qvel)[0])
        torso = self.torso_kinematics(qpos) if self.needs_torso_kinematics else None
        observation = self.observations(qpos, qvel, cfrc, torso)[0]
        info = {"x_position": float(self.data.qpos[0]), "x_velocity": float(velocity[0]),
                **{k: float(v[0]) for k, v in terms.items()}}
        if self.render_mode == "human":
            self.render()
        return observation, float(reward[0]), terminated, False, info


class _HalfCheetahTaskEnv(_MujocoTaskEnv, HalfCheetahEnv):
    ctrl_cost_weight = 0.05

    def __init__(self, render_mode=None, task=None, timestep=None, **kwargs):
        self._check_frame_skip(kwargs.get("frame_skip"))
        with _asset_notices_silenced():
            HalfCheetahEnv.__init__(self, render_mode=render_mode, **kwargs)
        self._set_timestep(timestep)
        if task is not None:
            self.set_task(task)

    def _root_position(self):
        return self.data.qpos[:1]

    @classmethod
    def observations(cls, qpos, qvel, cfrc_ext=None, torso=None):
        return np.concatenate([qpos[:, 1:], qvel], axis=1)

    @classmethod
    def forward_reward(cls, x_velocity, params):
        raise NotImplementedError

    @classmethod
    def rewards(cls, velocity, position, action, cfrc_ext, params):
        forward = cls.forward_reward(velocity[:, 0], params)
        ctrl = cls.ctrl_cost_weight * np.sum(np.square(action), axis=1)
        return forward - ctrl, {"reward_forward": forward, "reward_ctrl": -ctrl}


class HalfCheetahVelEnv(_VelocityTask, _HalfCheetahTaskEnv):
    """HalfCheetah running at a target velocity: ``r = -|v_x - v*| - 0.05‖a‖²``, ``v* ~ U[0, 2]``."""

    velocity_range = (0.0, 2.0)

    @classmethod
    def forward_reward(cls, x_velocity, params):
        return -np.abs(x_velocity - params[:, 0])


class HalfCheetahDirEnv(_DirectionTask, _HalfCheetahTaskEnv):
    """HalfCheetah running forward or backward: ``r = d · v_x - 0.05‖a‖²``, ``d ~ U{-1, +1}``."""

    @classmethod
    def forward_reward(cls, x_velocity, params):
        return params[:, 0] * x_velocity


class _AntTaskEnv(_MujocoTaskEnv, AntEnv):
    needs_contact_forces = True
    position_dims = 2
    ctrl_cost_weight = 0.5 * 1e-2
    contact_cost_weight = 0.5 * 1e-3
    survive_reward = 0.05
    healthy_z_range = (0.2, 1.0)
    contact_force_range = (-1.0, 1.0)

    # the original experiments' ant.xml (rllab): every geom's contact softness, and its reset noise on qpos/qvel
    rllab_geom_solref = (0.02, 1.0)
    rllab_geom_solimp = (0.8, 0.8, 0.01)
    rllab_reset_noise = (0.01, 0.1)

    def __init__(self, render_mode=None, task=None, timestep=None, ant_model="gymnasium", ant_obs="gymnasium",
                 **kwargs):
        self._check_frame_skip(kwargs.get("frame_skip"))
        for option, value in ((ANT_MODEL, ant_model), (ANT_OBS, ant_obs)):
            if value not in option.allowed:
                raise UserError(f"{option.key} must be one of {', '.join(option.allowed)}, got {value!r}")
        AntEnv.__init__(self, render_mode=render_mode, **kwargs)
        self._set_timestep(timestep)
        self.ant_model, self.ant_obs = ant_model, ant_obs
        if ant_model == "rllab":
            self._use_rllab_model()
        self.needs_torso_kinematics = ant_obs == "rllab"
        if self.needs_torso_kinematics:
            self._kinematics_data = mujoco.MjData(self.model)  # scratch kinematics: leaves self.data as mj_step left it
            size = self.model.nq + self.model.nv + 6 * self.model.nbody + 9 + 3
            self.observation_space = spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float64)
        if task is not None:
            self.set_task(task)

    def _use_rllab_model(self) -> None:
        """The Ant of the original MAML experiments (rllab's ant.xml, same bodies, joints and gears as v5): the
        standing initial pose the XML stores as ``init_qpos`` (torso at 0.55 m, ankles at ±1 rad inside their
        limits; v5 ignores it and starts from ``qpos0``: torso at 0.75 m, legs flat against the ankle limits),
        softer contacts (every geom ``solref 0.02 1``, ``solimp 0.8 0.8 0.01``; v5: MuJoCo's defaults
        ``0.9 0.95 0.001``) and rllab's reset noise ``qpos + 0.01·N(0, 1)``, ``qvel + 0.1·N(0, 1)``."""
        self.model.geom_solref[:] = self.rllab_geom_solref
        self.model.geom_solimp[:, :3] = self.rllab_geom_solimp
        self.init_qpos = np.array(self.model.numeric("init_qpos").data, dtype=np.float64)

    def initial_state(self, rng):
        if self.ant_model != "rllab":
            return super().initial_state(rng)
        qpos_scale, qvel_scale = self.rllab_reset_noise
        qpos = self.init_qpos + qpos_scale * rng.standard_normal(self.model.nq)
        qvel = self.init_qvel + qvel_scale * rng.standard_normal(self.model.nv)
        return qpos, qvel

    def _root_position(self):
        return self.data.body(self._main_body).xpos[:2]

    def torso_kinematics(self, qpos: np.ndarray, data: mujoco.MjData | None = None) -> np.ndarray:
        """``[n, 12]``: the torso's rotation matrix ``xmat`` (row-major) and the whole ant's centre of mass (the
        torso's ``subtree_com``) at each row of ``qpos``, from forward kinematics on the scratch ``data`` (one per
        thread in the batched engine)."""
        data = self._kinematics_data if data is None else data
        body = self._main_body
        m, positions, xmat, subtree_com = self.model, data.qpos, data.xmat[body], data.subtree_com[body]  # views
        out = np.empty((qpos.shape[0], 12))
        for k, q in enumerate(qpos):
            positions[:] = q
            mujoco.mj_kinematics(m, data)
            mujoco.mj_comPos(m, data)
            out[k, :9], out[k, 9:] = xmat, subtree_com
        return out

    def _get_obs(self):
        if not self.needs_torso_kinematics:
            return super()._get_obs()
        qpos = self.data.qpos[None].copy()
        return self.observations(qpos, self.data.qvel[None].copy(), self.data.cfrc_ext[None].copy(),
                                 self.torso_kinematics(qpos))[0]

    def observations(self, qpos, qvel, cfrc_ext=None, torso=None):
        """v5's ``[qpos[2:], qvel, clip(cfrc_ext[1:])]``, or with ``ant_obs="rllab"`` the original experiments'
        ``[qpos, qvel, clip(cfrc_ext), xmat_torso, com]`` (module docstring)."""
        n = qpos.shape[0]
        contact = np.clip(cfrc_ext, *self.contact_force_range)
        if not self.needs_torso_kinematics:
            return np.concatenate([qpos[:, 2:], qvel, contact[:, 1:].reshape(n, -1)], axis=1)
        return np.concatenate([qpos, qvel, contact.reshape(n, -1), torso], axis=1)

    @classmethod
    def terminations(cls, qpos, qvel):
        finite = np.isfinite(qpos).all(axis=1) & np.isfinite(qvel).all(axis=1)
        z = qpos[:, 2]
        healthy = finite & (z >= cls.healthy_z_range[0]) & (z <= cls.healthy_z_range[1])
        return ~healthy

    @classmethod
    def forward_reward(cls, velocity, position, params):
        raise NotImplementedError

    @classmethod
    def rewards(cls, velocity, position, action, cfrc_ext, params):
        forward = cls.forward_reward(velocity, position, params)
        ctrl = cls.ctrl_cost_weight * np.sum(np.square(action), axis=1)
        contact = cls.contact_cost_weight * np.sum(
            np.square(np.clip(cfrc_ext, *cls.contact_force_range)), axis=(1, 2))
        survive = np.full_like(forward, cls.survive_reward)
        reward = forward - ctrl - contact + survive
        return reward, {"reward_forward": forward, "reward_ctrl": -ctrl, "reward_contact": -contact,
                        "reward_survive": survive}


class AntVelEnv(_VelocityTask, _AntTaskEnv):
    """Ant at a target forward velocity: forward term ``-|v_x - v*| + 1``, ``v* ~ U[0, 3]``."""

    velocity_range = (0.0, 3.0)

    @classmethod
    def forward_reward(cls, velocity, position, params):
        return -np.abs(velocity[:, 0] - params[:, 0]) + 1.0


class AntDirEnv(_DirectionTask, _AntTaskEnv):
    """Ant running forward or backward: forward term ``d · v_x``, ``d ~ U{-1, +1}``."""

    @classmethod
    def forward_reward(cls, velocity, position, params):
        return params[:, 0] * velocity[:, 0]


class AntGoalEnv(_AntTaskEnv):
    """Ant walking to a goal position: goal term ``-‖p - g‖₁ + 4``, ``g ~ U[-3, 3]²``.

    The constant 4 is the original task's (``AntEnvRandGoal``: "make it happy, not suicidal"): an episode ends
    when the ant falls or jumps out of its healthy height range, so with a mostly negative reward per step
    ending early would pay; with it a step within 4 (L1) of the goal is worth living.

    Use ``ant_obs="rllab"`` (as the ``ant-goal`` preset does): the default v5 observation leaves out the torso's
    absolute x, y, so a policy could walk towards the goal but could not see when it got there."""

    task_keys = ("goal",)
    goal_range = (-3.0, 3.0)
    alive_bonus = 4.0

    @classmethod
    def sample_tasks_from(cls, rng, n):
        return [{"goal": [float(g[0]), float(g[1])]} for g in rng.uniform(*cls.goal_range, size=(n, 2))]

    @classmethod
    def validate_task(cls, task):
        task = TaskEnvMixin.validate_task.__func__(cls, task)
        goal = np.asarray(task["goal"], dtype=np.float64)
        if goal.shape != (2,) or not np.all(np.isfinite(goal)):
            raise UserError(f"ant goal must be 2 finite numbers, got {task['goal']!r}")
        return task

    @classmethod
    def task_vector(cls, task):
        return np.asarray(task["goal"], dtype=np.float64)

    @classmethod
    def forward_reward(cls, velocity, position, params):
        return -np.sum(np.abs(position - params), axis=1) + cls.alive_bonus
