"""Rollout throughput with a policy in the loop: the batched engine vs. Gymnasium Sync/AsyncVectorEnv vs. the physics limit.

All numbers come from one run, side by side, with the same policy (a 2x100 ReLU Gaussian MLP evaluated once
per step on the whole batch) and are printed as ONE JSON object:

* ``ours``: ``rollout()`` on ``make_batched(env, num_tasks * episodes_per_task)`` for ``horizon`` steps,
  every copy simulated for the whole horizon (``skip_finished=False``: the same work as the references);
* ``sync`` / ``async``: ``gymnasium.vector.SyncVectorEnv`` / ``AsyncVectorEnv`` of the same env id with the
  same policy (``async`` uses one process per copy, so it runs fewer copies, see ``async.num_envs``);
  both are timed over ``--vector-steps`` steps;
* ``limit``: MuJoCo stepping alone, ``mujoco.rollout`` on the same number of copies replaying the recorded
  actions of ``ours`` in one native call (``nstep = horizon * frame_skip``), no policy, no Python per step.
  For 2D navigation the limit is the batched env stepping alone with zero actions.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlmaml.errors import UserError
from rlmaml.rl.config import ENV_TIMING_KEYS


def add_arguments(parser) -> None:
    parser.add_argument("--env", default="rlmaml/HalfCheetahVel-v0", help="registered env id")
    parser.add_argument("--num-tasks", type=int, default=40)
    parser.add_argument("--episodes-per-task", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=None, help="steps per episode (default: the env's)")
    parser.add_argument("--frame-skip", type=int, default=0,
                        help="physics steps per env step, MuJoCo families (0 = the env's default, as in training)")
    parser.add_argument("--timestep", type=float, default=0.0,
                        help="physics step in seconds, MuJoCo families (0 = the model's)")
    parser.add_argument("--vector-steps", type=int, default=20, help="steps timed for Sync/AsyncVectorEnv")
    parser.add_argument("--async-envs", type=int, default=32, help="copies (processes) for AsyncVectorEnv")
    parser.add_argument("--num-threads", type=int, default=None, help="physics threads (default: all cores)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads for the policy (rollouts on a threaded MuJoCo engine use 1)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="alternating timed repeats of ours and limit (medians and the median ratio are reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-vector", action="store_true", help="skip the Sync/AsyncVectorEnv measurements")
    parser.add_argument("--output", default=None, help="also write the JSON to this path")


class MLPPolicy(nn.Module):
    """Gaussian policy: mean = MLP(obs) with two hidden ReLU layers of 100 units, fixed std = 1 (scaled)."""

    def __init__(self, obs_dim: int, act_dim: int, scale: np.ndarray) -> None:
        super().__init__()
        self.mean = nn.Sequential(nn.Linear(obs_dim, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(),
                                  nn.Linear(100, act_dim))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    @torch.no_grad()
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean = self.mean(obs)
        return (mean + torch.randn_like(mean)) * self.scale


def _check_positive(name, value):
    if value is not None and (not isinstance(value, int) or value <= 0):
        raise UserError(f"--{name} must be a positive integer, got {value!r}")


def _time_vector_env(vec, policy, steps, seed, scale_dim):
    obs, _ = vec.reset(seed=seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        actions = policy(torch.as_tensor(np.asarray(obs, dtype=np.float32))).numpy()
        obs, *_ = vec.step(actions)
    seconds = time.perf_counter() - t0
    return {"num_envs": vec.num_envs, "steps": steps, "env_steps": steps * vec.num_envs, "seconds": seconds,
            "steps_per_s": steps * vec.num_envs / seconds}


def run(args) -> int:
    import mujoco

    from rlmaml.envs import make_batched
    from rlmaml.envs.batched_mujoco import BatchedMujocoEnv
    from rlmaml.rl.rollout import rollout

    for name in ("num_tasks", "episodes_per_task", "horizon", "vector_steps", "async_envs", "torch_threads",
                 "repeats"):
        _check_positive(name.replace("_", "-"), getattr(args, name))
    if args.frame_skip < 0 or not args.timestep >= 0:
        raise UserError(f"--frame-skip and --timestep must be >= 0 (0 = the env's default), "
                        f"got {args.frame_skip} and {args.timestep}")
    timing = {key: getattr(args, key) for key in ENV_TIMING_KEYS if getattr(args, key)}  # 0: the env's own
    torch.set_num_threads(args.torch_threads)
    num_envs = args.num_tasks * args.episodes_per_task
    env = make_batched(args.env, num_envs, num_threads=args.num_threads, **timing)
    horizon = args.horizon or env.max_episode_steps
    scale = (env.action_high - env.action_low) / 2
    torch.manual_seed(args.seed)
    policy = MLPPolicy(env.observation_dim, env.action_dim, scale)
    tasks = env.sample_tasks(args.num_tasks, seed=args.seed)
    E = args.episodes_per_task

    def sample_actions(obs):
        return policy(obs)

    log = lambda msg: print(f"[bench rollouts] {msg}", file=sys.stderr, flush=True)
    # warm-up (thread pools, buffers)
    rollout(env, sample_actions, tasks, E, min(5, horizon), seed=args.seed, skip_finished=False)

    is_mujoco = isinstance(env, BatchedMujocoEnv)
    ours_times, limit_times, limit_one_call, limit_per_step = [], [], [], []
    load_before = os.getloadavg()
    episodes = None
    for rep in range(args.repeats):
        log(f"ours: repeat {rep + 1}/{args.repeats}")
        t0 = time.perf_counter()
        episodes = rollout(env, sample_actions, tasks, E, horizon, seed=args.seed + rep, skip_finished=False)
        ours_times.append(time.perf_counter() - t0)
        log(f"limit: repeat {rep + 1}/{args.repeats}")
        if is_mujoco:
            # same initial states and the same (clipped) actions, one native call for the whole horizon
            env.set_tasks([t for t in tasks for _ in range(E)])
            env.reset(seed=args.seed + rep)
            initial = env._state.copy()
            acts = episodes.actions.reshape(horizon, num_envs, -1).permute(1, 0, 2).double().numpy()
            acts = np.clip(acts, env.action_low, env.action_high)
            control = np.repeat(acts, env.frame_skip, axis=1)
            out = np.empty((num_envs, horizon * env.frame_skip, env.nstate))
            t0 = time.perf_counter()
            env._pool.rollout(env.model, env._datas, initial, control, nstep=horizon * env.frame_skip, state=out)
            limit_one_call.append(time.perf_counter() - t0)
            # the same physics as H native calls of nstep = frame_skip, chaining the states
            state = initial.copy()
            step_out = np.empty((num_envs, env.frame_skip, env.nstate))
            step_controls = [np.ascontiguousarray(control[:, h * env.frame_skip:(h + 1) * env.frame_skip])
                             for h in range(horizon)]
            t0 = time.perf_counter()
            for h in range(horizon):
                env._pool.rollout(env.model, env._datas, state, step_controls[h], nstep=env.frame_skip,
                                  state=step_out)
                state = step_out[:, -1].copy()
            limit_per_step.append(time.perf_counter() - t0)
            limit_times.append(min(limit_one_call[-1], limit_per_step[-1]))
        else:
            env.set_tasks([t for t in tasks for _ in range(E)])
            env.reset()
            zeros = torch.zeros(num_envs, env.action_dim)
            t0 = time.perf_counter()
            for _ in range(horizon):
                env.step(zeros)
            limit_times.append(time.perf_counter() - t0)
    env_steps = num_envs * horizon
    # the machine is shared: ours and limit alternate, and the ratio is taken per repeat (adjacent in time)
    ratios = [limit_s / ours_s for ours_s, limit_s in zip(ours_times, limit_times)]
    ours_s, limit_s = float(np.median(ours_times)), float(np.median(limit_times))
    ours = {"num_envs": num_envs, "horizon": horizon, "env_steps": env_steps, "seconds_median": ours_s,
            "steps_per_s": env_steps / ours_s, "best_steps_per_s": env_steps / min(ours_times),
            "all_seconds": ours_times, "valid_steps_last": episodes.num_steps}
    limit = {"num_envs": num_envs, "env_steps": env_steps, "seconds_median": limit_s,
             "steps_per_s": env_steps / limit_s, "best_steps_per_s": env_steps / min(limit_times),
             "all_seconds": limit_times,
             "what": ("mujoco.rollout on the recorded (clipped) actions from the same initial states, no policy: "
                      "the faster of one native call with nstep = horizon * frame_skip and horizon native calls "
                      "with nstep = frame_skip" if is_mujoco else "batched env steps with zero actions, no policy")}
    if is_mujoco:
        limit["one_call_seconds"] = limit_one_call
        limit["per_step_call_seconds"] = limit_per_step
    result = {
        "benchmark": "rollouts", "env": args.env, "engine": type(env).__name__,
        "num_tasks": args.num_tasks, "episodes_per_task": E, "num_envs": num_envs, "horizon": horizon,
        "frame_skip": env.frame_skip if is_mujoco else None,
        "timestep": float(env.model.opt.timestep) if is_mujoco else None,
        "physics_threads": getattr(env, "num_threads", None), "torch_threads": args.torch_threads,
        "cpu_count": os.cpu_count(), "seed": args.seed,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "policy": "Gaussian MLP 2x100 ReLU, evaluated once per step on the whole batch",
        "ours": ours, "limit": limit, "ours_over_limit": float(np.median(ratios)),
        "ours_over_limit_per_repeat": ratios,
    }
    env.close()

    if not args.skip_vector:
        single = gym.make(args.env, **timing)
        obs_dim = int(np.prod(single.observation_space.shape))
        single.close()
        vec_policy = policy if obs_dim == env.observation_dim else MLPPolicy(obs_dim, env.action_dim, scale)
        lo, hi = env.action_low, env.action_high
        clipped = lambda o: vec_policy(o).clamp(torch.as_tensor(lo, dtype=torch.float32),
                                                torch.as_tensor(hi, dtype=torch.float32))
        fns_tasks = tasks * E

        def time_gymnasium(vector_cls, copies: int, what: str) -> dict:
            log(f"{vector_cls.__name__}: {copies} copies{what}, {args.vector_steps} steps")
            vec = vector_cls([lambda: gym.make(args.env, **timing) for _ in range(copies)],
                             autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
            vec.set_attr("task", [fns_tasks[k % len(fns_tasks)] for k in range(copies)])
            try:
                return _time_vector_env(vec, clipped, args.vector_steps, args.seed, env.action_dim)
            finally:
                vec.close()

        result["sync"] = time_gymnasium(gym.vector.SyncVectorEnv, num_envs, "")
        n_async = min(args.async_envs, num_envs)
        result["async"] = time_gymnasium(gym.vector.AsyncVectorEnv, n_async, " (one process each)")
        result["ours_over_sync"] = ours["steps_per_s"] / result["sync"]["steps_per_s"]
        result["ours_over_async"] = ours["steps_per_s"] / result["async"]["steps_per_s"]
        # the most any engine bounded by the same physics could reach over async
        result["limit_over_async"] = limit["steps_per_s"] / result["async"]["steps_per_s"]
        result["note"] = (f"steps_per_s are medians over repeats; ours_over_limit is the median of per-repeat ratios; "
                          f"ours_over_sync/async use the median ours; sync/async timed over {args.vector_steps} steps after reset; async runs {n_async} "
                          f"copies (one process per copy; {num_envs} processes do not fit this machine)")
    result["versions"] = {"python": platform.python_version(), "torch": torch.__version__,
                          "gymnasium": gym.__version__, "mujoco": mujoco.__version__, "numpy": np.__version__}
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":  # ``python -m rlmaml.bench.rollouts`` == ``rlmaml bench rollouts``
    import argparse

    _parser = argparse.ArgumentParser(prog="rlmaml bench rollouts", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    try:
        sys.exit(run(_parser.parse_args()))
    except UserError as _exc:
        print(f"rlmaml: error: {_exc}", file=sys.stderr)
        sys.exit(2)
