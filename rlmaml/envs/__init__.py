"""rlmaml task families, registered with Gymnasium on import, and the batched engines.

Single environments (``gymnasium.make``), one :class:`~rlmaml.envs.registry.TaskFamily` record each in
:mod:`rlmaml.envs.registry`::

    rlmaml/Navigation2D-v0      goal ~ U[-0.5, 0.5]^2, horizon 100
    rlmaml/HalfCheetahVel-v0    target velocity ~ U[0, 2], horizon 200
    rlmaml/HalfCheetahDir-v0    direction ~ {-1, +1}, horizon 200
    rlmaml/AntVel-v0            target velocity ~ U[0, 3], horizon 200
    rlmaml/AntDir-v0            direction ~ {-1, +1}, horizon 200
    rlmaml/AntGoal-v0           goal position ~ U[-3, 3]^2, horizon 200
    metaworld/ML1-<task>        Meta-World ML1 (50 task names), ML10, ML45: rlmaml.envs.metaworld_tasks

Batched copies for rollouts: ``make_batched(env_id, num_envs, device=..., num_threads=..., oracle=...)``
returns the family's native engine (its record's ``engine``: torch for navigation, ``mujoco.rollout`` for the
MuJoCo families, per-copy ``mj_step`` for Meta-World ML1 reach-v3 and push-v3) and falls back to
``gymnasium.vector`` for a family without one: any Gymnasium env with the task protocol, ``"module:EnvId"``
importing the module that registers it.
"""

from __future__ import annotations

from rlmaml.errors import UserError

from .batched import BatchedEnv, GymVectorBatchedEnv
from .metaworld_native import with_native_engines
from .metaworld_tasks import METAWORLD_FAMILIES
from .registry import RLMAML_FAMILIES, TaskFamily, families, family, family_ids, register_family

for _family in (*RLMAML_FAMILIES, *with_native_engines(METAWORLD_FAMILIES)):
    register_family(_family)

ENGINES = ("auto", "native", "sync", "async", "processes")


def make_batched(env_id: str, num_envs: int, *, device="cpu", num_threads: int | None = None,
                 oracle: bool = False, engine: str = "auto", **kwargs) -> BatchedEnv:
    """``num_envs`` copies of ``env_id`` behind the :class:`BatchedEnv` interface.

    ``engine="auto"`` picks the family's native engine when its record has one, otherwise the Gymnasium-vector
    path: ``num_threads`` ≥ 2 worker processes each stepping a chunk of the copies (``"processes"``, every core
    busy), else ``SyncVectorEnv`` in this process. ``"sync"``/``"async"``/``"processes"`` force one of them
    (``AsyncVectorEnv``: one process per copy).
    ``kwargs`` go to the env constructor (``max_episode_steps`` sets the default horizon).
    """
    record = family(env_id)
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs <= 0:
        raise UserError(f"num_envs must be a positive integer, got {num_envs!r}")
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 0):
        raise UserError(f"num_threads must be a non-negative integer or None, got {num_threads!r}")
    if engine not in ENGINES:
        raise UserError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    factory = record.engine if engine in ("auto", "native") else None
    if factory is None and engine == "native":
        native = ", ".join(f.env_id for f in families() if f.engine is not None)
        raise UserError(f"env {env_id!r} has no native batched engine; native engines exist for {native}")
    if factory is not None:
        return factory(env_id, num_envs, device=device, oracle=oracle, num_threads=num_threads, **kwargs)
    if engine in ("auto", "native"):
        vectorization = "processes" if (num_threads or 0) > 1 else "sync"
    else:
        vectorization = engine
    return GymVectorBatchedEnv(env_id, num_envs, device=device, oracle=oracle, vectorization=vectorization,
                               num_threads=num_threads, **kwargs)


__all__ = ["BatchedEnv", "GymVectorBatchedEnv", "TaskFamily", "families", "family", "family_ids", "make_batched",
           "register_family"]
