"""The task-family registry: one :class:`TaskFamily` record per family, the one place rlmaml looks up what it
knows about an env id (which batched engine steps it, which constructor options it takes, how to draw it, the
paper's numbers).

A new family is one module (a ``gymnasium.Env`` with the task protocol of :mod:`rlmaml.envs.task_env`) and one
record passed to :func:`register_family`, which also registers the id with Gymnasium::

    register_family(TaskFamily(env_id="toy/PointGoal-v0", entry_point="toy_family:PointGoalEnv", horizon=20,
                               description="a point walks to a goal g ~ U[-1, 1]^2"))

An env registered with Gymnasium alone is a family too: :func:`family` turns any id with the task protocol into a
generic record (horizon from its spec's ``max_episode_steps``, no native engine, no options). Gymnasium's
``module:EnvId`` form imports ``module`` first (``gymnasium.make`` semantics), so a run's ``config.yaml`` that
says ``env: toy_family:toy/PointGoal-v0`` re-imports the user's module wherever the run is read again.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import gymnasium as gym

from rlmaml.errors import UserError

from .task_env import missing_task_protocol, task_protocol_error


@dataclass(frozen=True)
class EnvOption:
    """A constructor option a family accepts, as a key of ``rlmaml train`` (``frame_skip=1``).

    ``allowed``: the values it takes (None: any value the constructor accepts, which checks it); ``applies_to``:
    how errors name the families that take it ("the MuJoCo families")."""

    key: str
    allowed: tuple[Any, ...] | None = None
    applies_to: str = "the families that take it"


FRAME_SKIP = EnvOption("frame_skip", applies_to="the MuJoCo families")
TIMESTEP = EnvOption("timestep", applies_to="the MuJoCo families")
ANT_MODEL = EnvOption("ant_model", ("gymnasium", "rllab"), "the Ant families")
ANT_OBS = EnvOption("ant_obs", ("gymnasium", "rllab"), "the Ant families")


@dataclass(frozen=True)
class RenderHints:
    """How :mod:`rlmaml.viz.video` draws a family's recorded episodes.

    ``kind``: ``"planar"`` (a point and its ground-plane trail, from ``infos["position"]``), ``"mujoco"`` (the
    recorded ``qpos`` replayed in the model, offscreen) or None (decided from what the episodes recorded);
    ``asset``: Gymnasium's bundled MuJoCo XML to replay in when ``gymnasium.make`` gives no model; ``camera``:
    ``distance``, ``elevation``, ``azimuth`` of the camera tracking the torso, or, with ``lookat`` (a point), of a
    camera fixed on that point; ``scene``: for families whose model differs from task to task (Meta-World moves
    bodies at reset), ``scene(env_id, task) -> (MjModel, marks)``, the model to replay the task's states in and
    the world positions to mark (its goal); ``marker_radius``: the radius of those marks' spheres, in metres."""

    kind: Literal["planar", "mujoco"] | None = None
    asset: str | None = None
    camera: Mapping[str, Any] | None = None
    scene: Callable[[str, Mapping[str, Any]], tuple[Any, list]] | None = None
    marker_radius: float = 0.15


EngineFactory = Callable[..., Any]  # (env_id, num_envs, *, device, oracle, num_threads, **env_kwargs) -> BatchedEnv


@dataclass(frozen=True)
class TaskFamily:
    """Everything rlmaml knows about one task family.

    Attributes:
        env_id: the Gymnasium id (``"rlmaml/AntGoal-v0"``; ``"module:EnvId"`` for a generic record).
        entry_point: the env class, or ``"module:Class"``, that ``gymnasium.make`` builds.
        horizon: the episode length Gymnasium truncates at (``max_episode_steps``; None: no limit registered).
        description: one line: the task distribution and the horizon.
        engine: ``engine(env_id, num_envs, **kwargs) -> BatchedEnv``, the family's native batched engine; None:
            :class:`~rlmaml.envs.batched.GymVectorBatchedEnv` over ``gymnasium.vector``.
        options: the constructor options it accepts (``rlmaml train`` keys, see :class:`EnvOption`).
        render: how videos and trajectories draw it (:class:`RenderHints`).
        paper: the MAML paper's average return after 0, 1, 2, ... inner steps (Finn et al., 2017, Figs. 4, 5).
        aliases: other names of the family in older runs' eval.json files (matched after :func:`canonical_name`).
        held_out: ``held_out(n, seed) -> tasks``, the family's meta-test tasks for evaluation when they are not
            drawn from the training distribution (Meta-World's test split); None: the env's ``sample_tasks``.
    """

    env_id: str
    entry_point: str | Callable[..., gym.Env]
    horizon: int | None
    description: str = ""
    engine: EngineFactory | None = None
    options: tuple[EnvOption, ...] = ()
    render: RenderHints = field(default_factory=RenderHints)
    paper: tuple[float, ...] | None = None
    aliases: tuple[str, ...] = ()
    held_out: Callable[[int, int], list[dict]] | None = None

    def option(self, key: str) -> EnvOption | None:
        """The option named ``key``, or None when the family does not take it."""
        return next((o for o in self.options if o.key == key), None)


_FAMILIES: dict[str, TaskFamily] = {}
_GENERIC: dict[str, TaskFamily] = {}  # resolved ids outside the registry (module:EnvId, Gymnasium ids)


def register_family(family: TaskFamily) -> TaskFamily:
    """Add ``family`` to the registry and register its id with Gymnasium (unless Gymnasium has it already).

    Registering the same record twice is a no-op; another record under a registered id is an error."""
    if not isinstance(family, TaskFamily):
        raise UserError(f"register_family takes a TaskFamily, got {type(family).__name__}")
    if not isinstance(family.env_id, str) or not family.env_id or ":" in family.env_id:
        raise UserError(f"a task family's env_id must be a Gymnasium id without a module part, got {family.env_id!r}")
    if family.horizon is not None and (isinstance(family.horizon, bool) or not isinstance(family.horizon, int)
                                       or family.horizon <= 0):
        raise UserError(f"task family {family.env_id!r}: horizon must be a positive integer or None, "
                        f"got {family.horizon!r}")
    known = _FAMILIES.get(family.env_id)
    if known is not None and known != family:
        raise UserError(f"task family {family.env_id!r} is already registered with another record")
    if family.env_id not in gym.registry:
        gym.register(id=family.env_id, entry_point=family.entry_point, max_episode_steps=family.horizon)
    _FAMILIES[family.env_id] = family
    return family


def set_engine(env_id: str, engine) -> TaskFamily:
    """Give the registered family ``env_id`` the native batched engine ``engine`` (a plugin that teaches an engine
    a family registered before it, as :func:`rlmaml.envs.metaworld_native.native_class` does)."""
    if env_id not in _FAMILIES:
        raise UserError(f"set_engine: no registered task family {env_id!r}")
    _FAMILIES[env_id] = dataclasses.replace(_FAMILIES[env_id], engine=engine)
    return _FAMILIES[env_id]


def family_ids() -> tuple[str, ...]:
    """The ids of the registered families, in registration order."""
    return tuple(_FAMILIES)


def families() -> tuple[TaskFamily, ...]:
    """The registered families, in registration order."""
    return tuple(_FAMILIES.values())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _family_list() -> str:
    """The registered ids, those that differ only after a common ``prefix-`` (the 50 ML1 tasks) as one
    ``prefix-{a,b,…}`` entry with their count."""
    groups: dict[str, list[str]] = {}
    for env_id in _FAMILIES:
        head, sep, tail = env_id.partition("-")
        groups.setdefault(head + sep if sep and "/" in head else env_id, []).append(tail)
    parts = []
    for head, tails in groups.items():
        if len(tails) > 3:
            parts.append(f"{head}<one of {len(tails)}: {', '.join(tails[:3])}, …>")
        else:
            parts.extend(head + t if head.endswith("-") else head for t in tails)
    return ", ".join(parts)


def _unknown(why: str) -> UserError:
    return UserError(f"{why}; registered task families: {_family_list()}; "
                     "or name a Gymnasium env with the task protocol, e.g. module:EnvId")


def family(env_id: str) -> TaskFamily:
    """The record of ``env_id``: a registered family, else a generic record of a Gymnasium env with the task
    protocol (``"module:EnvId"`` imports ``module`` first). One-line UserError for an unknown id, a module that
    does not import, or an env without the task protocol."""
    if not isinstance(env_id, str) or not env_id:
        raise _unknown(f"unknown env id {env_id!r}")
    if env_id in _FAMILIES:
        return _FAMILIES[env_id]
    if env_id in _GENERIC:
        return _GENERIC[env_id]
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any import failure is the user's module's; say which
            raise _unknown(f"env {env_id!r}: module {module!r} does not import ({_first_line(exc)})") from None
        if name in _FAMILIES:  # the module registered a full record
            return _FAMILIES[name]
    if name not in gym.registry:
        raise _unknown(f"env {env_id!r}: module {module!r} registers no env {name!r}" if module
                       else f"unknown env id {env_id!r}")
    spec = gym.spec(name)
    entry_point = spec.entry_point
    if isinstance(entry_point, str):
        try:
            entry_point = gym.envs.registration.load_env_creator(entry_point)
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"env {env_id!r}: entry point {spec.entry_point!r} does not load "
                            f"({_first_line(exc)})") from None
    missing = missing_task_protocol(entry_point) if isinstance(entry_point, type) else []
    if missing:
        raise UserError(task_protocol_error(env_id, missing))
    record = TaskFamily(env_id=env_id, entry_point=spec.entry_point, horizon=spec.max_episode_steps,
                        description=f"a Gymnasium env with the task protocol ({spec.entry_point})")
    _GENERIC[env_id] = record
    return record


def families_taking(key: str) -> tuple[TaskFamily, ...]:
    """The registered families that take the constructor option ``key``."""
    return tuple(f for f in _FAMILIES.values() if f.option(key) is not None)


def canonical_name(env: str | None) -> str | None:
    """An env id as a plain lower-case name, for matching eval.json ``env`` fields of any era:
    ``"rlmaml/HalfCheetahVel-v0"`` -> ``"halfcheetahvel"``; a registered family's alias gives its own name."""
    if not env:
        return None
    name = str(env).split(":")[-1].split("/")[-1]
    name = re.sub(r"-v\d+$", "", name)
    name = re.sub(r"[^0-9a-z]", "", name.lower())
    for f in _FAMILIES.values():
        if name in f.aliases:
            return canonical_name(f.env_id)
    return name


def find_family(env: str | None) -> TaskFamily | None:
    """The registered family whose canonical name (or an alias) is ``env``'s, or None; never imports."""
    key = canonical_name(env)
    return next((f for f in _FAMILIES.values() if canonical_name(f.env_id) == key), None) if key else None


# ------------------------------------------------------------------------------------- rlmaml's families
def _navigation_engine(env_id: str, num_envs: int, **kwargs):
    from .navigation import BatchedNavigation2D

    return BatchedNavigation2D(num_envs, **kwargs)


def _mujoco_engine(env_id: str, num_envs: int, **kwargs):
    from .batched_mujoco import BatchedMujocoEnv

    return BatchedMujocoEnv(env_id, num_envs, **kwargs)


_CHEETAH = RenderHints("mujoco", "half_cheetah.xml", MappingProxyType({"distance": 4.0, "elevation": -15.0,
                                                                       "azimuth": 90.0}))
_ANT = RenderHints("mujoco", "ant.xml", MappingProxyType({"distance": 7.0, "elevation": -30.0, "azimuth": 90.0}))
_MUJOCO_OPTIONS = (FRAME_SKIP, TIMESTEP)
_ANT_OPTIONS = (*_MUJOCO_OPTIONS, ANT_MODEL, ANT_OBS)

RLMAML_FAMILIES = (
    TaskFamily("rlmaml/Navigation2D-v0", "rlmaml.envs.navigation:Navigation2DEnv", 100,
               "2D point to a goal g ~ U[-0.5, 0.5]^2, horizon 100", _navigation_engine,
               render=RenderHints("planar"), paper=(-40.4, -11.7, -3.3),
               aliases=("2dnavigation", "point2d", "navigation", "pointnavigation", "2dnav")),
    TaskFamily("rlmaml/HalfCheetahVel-v0", "rlmaml.envs.mujoco_tasks:HalfCheetahVelEnv", 200,
               "HalfCheetah at a target velocity v* ~ U[0, 2], horizon 200", _mujoco_engine, _MUJOCO_OPTIONS,
               _CHEETAH, paper=(-129.5, -78.6, -66.6, -60.8)),
    TaskFamily("rlmaml/HalfCheetahDir-v0", "rlmaml.envs.mujoco_tasks:HalfCheetahDirEnv", 200,
               "HalfCheetah forward or backward, d ~ U{-1, +1}, horizon 200", _mujoco_engine, _MUJOCO_OPTIONS,
               _CHEETAH, paper=(-50.7, 293.0, 314.0, 316.0)),
    TaskFamily("rlmaml/AntVel-v0", "rlmaml.envs.mujoco_tasks:AntVelEnv", 200,
               "Ant at a target velocity v* ~ U[0, 3], horizon 200", _mujoco_engine, _ANT_OPTIONS, _ANT,
               paper=(30.6, 96.7, 100.1)),
    TaskFamily("rlmaml/AntDir-v0", "rlmaml.envs.mujoco_tasks:AntDirEnv", 200,
               "Ant forward or backward, d ~ U{-1, +1}, horizon 200", _mujoco_engine, _ANT_OPTIONS, _ANT,
               paper=(8.7, 499.0, 501.0)),
    TaskFamily("rlmaml/AntGoal-v0", "rlmaml.envs.mujoco_tasks:AntGoalEnv", 200,
               "Ant to a goal position g ~ U[-3, 3]^2, horizon 200", _mujoco_engine, _ANT_OPTIONS, _ANT),
)

__all__ = ["ANT_MODEL", "ANT_OBS", "FRAME_SKIP", "RLMAML_FAMILIES", "TIMESTEP", "EnvOption", "RenderHints",
           "TaskFamily", "canonical_name", "families", "families_taking", "family", "family_ids", "find_family",
           "register_family"]
