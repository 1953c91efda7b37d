"""Batched rollouts: every task's episodes advance together, one policy call per time step.

For ``T`` tasks and ``E`` episodes per task the batched env holds ``N = T·E`` copies (copy ``k = t·E + e``
runs task ``t``). Each of the ``H`` steps does one policy evaluation on the ``[T, E, obs]`` batch and one
batched env step; ``mask[h] = 1`` until and including the step on which a copy terminates. The env gets
the alive mask with each step, so engines that step copy by copy skip the physics of finished episodes.

While an engine steps its physics on its own threads (``env.physics_threads > 1``: the MuJoCo families),
the policy runs on one torch thread: torch's idle OpenMP workers spin after every op and take the cores
from the physics threads (``rlmaml bench meta-step`` measures sampling; docs/performance.md has the figures).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import torch

from rlmaml.errors import UserError

from .episodes import Episodes


@contextmanager
def _torch_threads(n: int | None):
    """torch's intra-op thread count set to ``n`` inside the block (unchanged for ``None``)."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def rollout(env, sample_actions: Callable[[torch.Tensor], torch.Tensor], tasks: list[dict],
            episodes_per_task: int, horizon: int | None = None, seed: int | None = None,
            device: str | torch.device | None = None, skip_finished: bool = True) -> Episodes:
    """Collect ``episodes_per_task`` episodes of ``horizon`` steps for every task in ``tasks``.

    ``sample_actions`` maps observations ``[T, E, obs]`` (float32 on ``device``) to actions ``[T, E, act]``;
    it is called once per step. With ``seed`` the env reset and torch's random numbers used inside
    ``sample_actions`` are seeded (the global torch generator is restored afterwards), so the same seed gives
    identical episodes. ``horizon`` defaults to ``env.max_episode_steps``. ``skip_finished=False`` withholds
    the alive mask from the env, so every copy is simulated for the whole horizon (benchmarks use it to
    compare equal work); the masked-in episodes are the same either way.
    """
    num_tasks = len(tasks)
    if num_tasks == 0:
        raise UserError("rollout needs at least one task")
    if isinstance(episodes_per_task, bool) or not isinstance(episodes_per_task, int) or episodes_per_task <= 0:
        raise UserError(f"episodes_per_task must be a positive integer, got {episodes_per_task!r}")
    horizon = env.max_episode_steps if horizon is None else horizon
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon <= 0:
        raise UserError(f"horizon must be a positive integer, got {horizon!r}")
    if env.num_envs != num_tasks * episodes_per_task:
        raise UserError(f"env has num_envs={env.num_envs} but {num_tasks} tasks x {episodes_per_task} episodes "
                        f"= {num_tasks * episodes_per_task} are needed")
    device = torch.device(device) if device is not None else env.device
    E = episodes_per_task
    env.set_tasks([task for task in tasks for _ in range(E)])

    devices = [device] if device.type == "cuda" else []
    threads = 1 if getattr(env, "physics_threads", 0) > 1 else None
    with torch.random.fork_rng(devices=devices, enabled=seed is not None), _torch_threads(threads):
        if seed is not None:
            torch.manual_seed(seed)
        obs = env.reset(seed=seed).to(device)
        observations = torch.empty(horizon, num_tasks, E, obs.shape[-1], dtype=torch.float32, device=device)
        rewards = torch.empty(horizon, num_tasks, E, dtype=torch.float32, device=device)
        mask = torch.empty(horizon, num_tasks, E, dtype=torch.float32, device=device)
        alive = torch.ones(num_tasks * E, dtype=torch.bool, device=device)
        actions = None
        info_steps: dict[str, list[torch.Tensor]] = {}
        for h in range(horizon):
            batch_obs = obs.view(num_tasks, E, -1)
            observations[h] = batch_obs
            with torch.inference_mode():  # as no_grad, without autograd's per-op bookkeeping (the policy's hot loop)
                action = sample_actions(batch_obs)
            if actions is None:
                actions = torch.empty(horizon, *action.shape, dtype=action.dtype, device=device)
            actions[h] = action
            obs, reward, terminated, info = env.step(action.reshape(num_tasks * E, -1),
                                                     active=alive if skip_finished else None)
            obs = obs.to(device)
            rewards[h] = reward.to(device).view(num_tasks, E)
            mask[h] = alive.view(num_tasks, E)
            alive = alive & ~terminated.to(device)
            for key, value in info.items():
                info_steps.setdefault(key, []).append(value.to(device).view(num_tasks, E, *value.shape[1:]))
    infos = {key: torch.stack(values) for key, values in info_steps.items()}
    return Episodes(observations, actions, rewards, mask, infos, list(tasks))
