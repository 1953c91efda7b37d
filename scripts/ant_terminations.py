#!/usr/bin/env python
"""Why Ant episodes end before the horizon, before and after adaptation.

An Ant episode terminates when the torso height ``qpos[2]`` leaves ``[0.2, 1.0]`` (or the state is not finite).
For a run's checkpoint this adapts on held-out tasks exactly as ``rlmaml evaluate`` does (same tasks, seeds and
step sizes) and, for every phase, prints the fraction of episodes that ended early, split by cause (torso below
0.2 m: fell; above 1.0 m: jumped), the mean return of the episodes that ran the full horizon and of those that
ended early, and what the task asks for, over the steps taken: the mean commanded-direction velocity ``d · v_x``
(AntDir), the mean speed error ``|v_x − v*|`` (AntVel), or the torso's distance ``‖xy − g‖₂`` to the goal at the
episode's last step and its closest approach (AntGoal).

usage: python scripts/ant_terminations.py RUN_DIR [--num-tasks 40] [--grad-steps 1] [--seed 1000]
                                          [--episodes-per-task N]
"""

import argparse
import sys

import torch

from rlmaml.errors import UserError
from rlmaml.rl.evaluate import adaptation_returns, held_out_tasks, load_run


def _task_column(tasks) -> str:
    if all("goal" in t for t in tasks):
        return "goal"
    return "direction" if all("direction" in t for t in tasks) else "velocity"


def termination_table(config, tasks, phases) -> list[str]:
    low, high = 0.2, 1.0  # the Ant families' healthy torso height range
    kind = _task_column(tasks)
    task_columns = {"direction": ["d · v_x (m/s)"], "velocity": ["\\|v_x − v*\\| (m/s)"],
                    "goal": ["‖xy − g‖₂ at the end (m)", "closest ‖xy − g‖₂ (m)"]}[kind]
    columns = ["phase", "ended early", "fell (z < 0.2)", "jumped (z > 1.0)", "return, full episodes",
               "return, ended early", *task_columns]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    if kind == "goal":
        goals = torch.tensor([t["goal"] for t in tasks], dtype=torch.float64)[None, :, None]  # [1, T, 1, 2]
    else:
        target = torch.tensor([float(t.get(kind, float("nan"))) for t in tasks])[None, :, None]  # [1, T, 1]
    for j, eps in enumerate(phases):
        lengths = eps.mask.sum(dim=0).long()  # [T, E]
        last = (lengths - 1).clamp(min=0)
        z = eps.infos["qpos"][..., 2].gather(0, last[None])[0]  # torso height at each episode's last step
        early = lengths < config.horizon
        returns = eps.returns
        full_return = returns[~early].mean().item() if (~early).any() else float("nan")
        early_return = returns[early].mean().item() if early.any() else float("nan")
        row = (f"| {j} | {100 * early.double().mean():.1f}% | {100 * (early & (z < low)).double().mean():.1f}% "
               f"| {100 * (early & (z > high)).double().mean():.1f}% | {full_return:.1f} | {early_return:.1f} |")
        if kind == "goal":
            distance = (eps.infos["qpos"][..., :2].double() - goals).norm(dim=-1)  # [H, T, E]
            final = distance.gather(0, last[None])[0]
            closest = distance.masked_fill(eps.mask == 0, float("inf")).amin(dim=0)
            row += f" {final.mean():.2f} | {closest.mean():.2f} |"
        else:
            measure = (eps.infos["x_velocity"] * target if kind == "direction"
                       else (eps.infos["x_velocity"] - target).abs())
            row += f" {(measure * eps.mask).sum() / eps.mask.sum():.2f} |"
        lines.append(row)
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--num-tasks", type=int, default=40)
    parser.add_argument("--grad-steps", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1000, help="as rlmaml evaluate's --seed (default 1000)")
    parser.add_argument("--episodes-per-task", type=int, default=None, help="default: the run's")
    args = parser.parse_args()
    if args.num_tasks <= 0 or (args.episodes_per_task is not None and args.episodes_per_task <= 0):
        sys.exit("error: --num-tasks and --episodes-per-task must be positive integers")
    try:
        config, policy, params = load_run(args.run_dir)
        if not config.env.startswith("rlmaml/Ant"):
            raise UserError(f"{args.run_dir!r} trained {config.env!r}; this script reads the Ant families")
        if config.num_threads:  # as rlmaml evaluate, so that the numbers are its numbers
            torch.set_num_threads(config.num_threads)
        tasks = held_out_tasks(config, args.num_tasks, args.seed)
        returns, phases = adaptation_returns(policy, params, config, tasks, args.grad_steps, args.seed,
                                             episodes_per_task=args.episodes_per_task, record_state=True)
    except UserError as exc:
        sys.exit(f"error: {exc}")
    episodes = phases[0].episodes_per_task
    print(f"{args.run_dir}: {config.env}, {args.num_tasks} held-out tasks (seed {args.seed}), {episodes} episodes "
          f"per task and phase; mean return per phase: {', '.join(f'{r:.1f}' for r in returns.mean(dim=1).tolist())}\n")
    if _task_column(tasks) == "goal":
        start = torch.tensor([t["goal"] for t in tasks], dtype=torch.float64).norm(dim=1).mean()
        print(f"the goals lie {start:.2f} m from the start (0, 0) on average\n")
    print("\n".join(termination_table(config, tasks, phases)))
