"""rlmaml task families, registered with Gymnasium on import, and the batched engines.

Single environments (``gymnasium.make``)::

    rlmaml/Navigation2D-v0      goal ~ U[-0.5, 0.5]^2, horizon 100
    rlmaml/HalfCheetahVel-v0    target velocity ~ U[0, 2], horizon 200
    rlmaml/HalfCheetahDir-v0    direction ~ {-1, +1}, horizon 200
    rlmaml/AntVel-v0            target velocity ~ U[0, 3], horizon 200
    rlmaml/AntDir-v0            direction ~ {-1, +1}, horizon 200
    rlmaml/AntGoal-v0           goal position ~ U[-3, 3]^2, horizon 200

Batched copies for rollouts: ``make_batched(env_id, num_envs, device=..., num_threads=..., oracle=...)``
returns the native engine (torch for navigation, ``mujoco.rollout`` for the MuJoCo families) and falls
back to ``gymnasium.vector`` for any other registered env that implements the task protocol.
"""

from __future__ import annotations

import gymnasium as gym

from rlmaml.errors import UserError

from .batched import BatchedEnv, GymVectorBatchedEnv

ENV_SPECS = {
    "rlmaml/Navigation2D-v0": ("rlmaml.envs.navigation:Navigation2DEnv", 100),
    "rlmaml/HalfCheetahVel-v0": ("rlmaml.envs.mujoco_tasks:HalfCheetahVelEnv", 200),
    "rlmaml/HalfCheetahDir-v0": ("rlmaml.envs.mujoco_tasks:HalfCheetahDirEnv", 200),
    "rlmaml/AntVel-v0": ("rlmaml.envs.mujoco_tasks:AntVelEnv", 200),
    "rlmaml/AntDir-v0": ("rlmaml.envs.mujoco_tasks:AntDirEnv", 200),
    "rlmaml/AntGoal-v0": ("rlmaml.envs.mujoco_tasks:AntGoalEnv", 200),
}

for _env_id, (_entry_point, _horizon) in ENV_SPECS.items():
    if _env_id not in gym.registry:
        gym.register(id=_env_id, entry_point=_entry_point, max_episode_steps=_horizon)

ENV_IDS = tuple(ENV_SPECS)
MUJOCO_ENV_IDS = tuple(i for i, (entry, _) in ENV_SPECS.items() if entry.startswith("rlmaml.envs.mujoco_tasks:"))
ANT_ENV_IDS = tuple(i for i in MUJOCO_ENV_IDS if i.startswith("rlmaml/Ant"))  # they take ant_model="rllab"
ANT_MODELS = ("gymnasium", "rllab")  # values of the Ant families' ant_model
ANT_OBSERVATIONS = ("gymnasium", "rllab")  # values of the Ant families' ant_obs


def _native_factory(env_id: str):
    if env_id == "rlmaml/Navigation2D-v0":
        from .navigation import BatchedNavigation2D

        return BatchedNavigation2D
    if env_id in ENV_SPECS:
        from .batched_mujoco import BatchedMujocoEnv

        return lambda num_envs, **kw: BatchedMujocoEnv(env_id, num_envs, **kw)
    return None


def make_batched(env_id: str, num_envs: int, *, device="cpu", num_threads: int | None = None,
                 oracle: bool = False, engine: str = "auto", **kwargs) -> BatchedEnv:
    """``num_envs`` copies of ``env_id`` behind the :class:`BatchedEnv` interface.

    ``engine="auto"`` picks the native engine when the family has one, otherwise ``gymnasium.vector``;
    ``"sync"``/``"async"`` force the Gymnasium-vector path (``SyncVectorEnv``/``AsyncVectorEnv``).
    ``kwargs`` go to the env constructor (``max_episode_steps`` sets the default horizon).
    """
    if not isinstance(env_id, str) or env_id not in gym.registry:
        raise UserError(f"unknown env id {env_id!r}; registered rlmaml envs: {', '.join(ENV_IDS)}")
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs <= 0:
        raise UserError(f"num_envs must be a positive integer, got {num_envs!r}")
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 0):
        raise UserError(f"num_threads must be a non-negative integer or None, got {num_threads!r}")
    if engine not in ("auto", "native", "sync", "async"):
        raise UserError(f"engine must be one of ['auto', 'native', 'sync', 'async'], got {engine!r}")
    factory = _native_factory(env_id) if engine in ("auto", "native") else None
    if factory is None and engine == "native":
        raise UserError(f"env {env_id!r} has no native batched engine; native engines exist for {', '.join(ENV_IDS)}")
    if factory is not None:
        return factory(num_envs, device=device, oracle=oracle, num_threads=num_threads, **kwargs)
    vectorization = "async" if engine == "async" else "sync"
    return GymVectorBatchedEnv(env_id, num_envs, device=device, oracle=oracle, vectorization=vectorization,
                               num_threads=num_threads, **kwargs)


__all__ = ["ANT_ENV_IDS", "ANT_MODELS", "ANT_OBSERVATIONS", "ENV_IDS", "MUJOCO_ENV_IDS", "BatchedEnv", "GymVectorBatchedEnv", "make_batched"]
