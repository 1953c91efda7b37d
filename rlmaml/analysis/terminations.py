"""Why Ant episodes end before the horizon, before and after adaptation.

An Ant episode terminates when the torso height ``qpos[2]`` leaves ``[0.2, 1.0]`` (or the state is not finite).
For every adaptation phase the table gives the fraction of episodes that ended early, split by cause (torso below
0.2 m: fell; above 1.0 m: jumped), the mean return of the episodes that ran the full horizon and of those that
ended early, and what the task asks for, over the steps taken: the mean commanded-direction velocity ``d · v_x``
(AntDir), the mean speed error ``|v_x − v*|`` (AntVel), or the torso's distance ``‖xy − g‖₂`` to the goal at the
episode's last step and its closest approach (AntGoal).

A phase is anything with time-major arrays (numpy arrays or CPU tensors) ``mask`` ``[H, T, E]``, ``returns``
``[T, E]`` and ``infos["qpos"]`` ``[H, T, E, nq]`` (plus ``infos["x_velocity"]`` ``[H, T, E]`` for the velocity and
direction tasks): the episodes of one phase of ``rlmaml evaluate`` recorded with their states.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

HEALTHY_Z = (0.2, 1.0)  # the Ant families' healthy torso height range


def task_column(tasks: Sequence[dict]) -> str:
    """Which task the episodes followed: ``"goal"``, ``"direction"`` or ``"velocity"``."""
    if all("goal" in t for t in tasks):
        return "goal"
    return "direction" if all("direction" in t for t in tasks) else "velocity"


def mean_goal_distance(tasks: Sequence[dict]) -> float:
    """Mean distance of the tasks' goals from the start (0, 0)."""
    return float(np.linalg.norm(np.array([t["goal"] for t in tasks], dtype=np.float64), axis=1).mean())


def termination_table(horizon: int, tasks: Sequence[dict], phases: Sequence) -> list[str]:
    """Markdown lines: one row per phase (0 = before adaptation, j = after j inner steps)."""
    low, high = HEALTHY_Z
    kind = task_column(tasks)
    task_columns = {"direction": ["d · v_x (m/s)"], "velocity": ["\\|v_x − v*\\| (m/s)"],
                    "goal": ["‖xy − g‖₂ at the end (m)", "closest ‖xy − g‖₂ (m)"]}[kind]
    columns = ["phase", "ended early", "fell (z < 0.2)", "jumped (z > 1.0)", "return, full episodes",
               "return, ended early", *task_columns]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    if kind == "goal":
        goals = np.array([t["goal"] for t in tasks], dtype=np.float64)[None, :, None]  # [1, T, 1, 2]
    else:
        target = np.array([float(t.get(kind, float("nan"))) for t in tasks])[None, :, None]  # [1, T, 1]
    for j, eps in enumerate(phases):
        mask = np.asarray(eps.mask, dtype=np.float64)  # [H, T, E]
        qpos = np.asarray(eps.infos["qpos"], dtype=np.float64)  # [H, T, E, nq]
        lengths = mask.sum(axis=0).astype(np.int64)  # [T, E]
        last = np.clip(lengths - 1, 0, None)[None]
        z = np.take_along_axis(qpos[..., 2], last, axis=0)[0]  # torso height at each episode's last step
        early = lengths < horizon
        returns = np.asarray(eps.returns, dtype=np.float64)
        full_return = returns[~early].mean() if (~early).any() else float("nan")
        early_return = returns[early].mean() if early.any() else float("nan")
        row = (f"| {j} | {100 * early.mean():.1f}% | {100 * (early & (z < low)).mean():.1f}% "
               f"| {100 * (early & (z > high)).mean():.1f}% | {full_return:.1f} | {early_return:.1f} |")
        if kind == "goal":
            distance = np.linalg.norm(qpos[..., :2] - goals, axis=-1)  # [H, T, E]
            final = np.take_along_axis(distance, last, axis=0)[0]
            closest = np.where(mask == 0, np.inf, distance).min(axis=0)
            row += f" {final.mean():.2f} | {closest.mean():.2f} |"
        else:
            velocity = np.asarray(eps.infos["x_velocity"], dtype=np.float64)
            measure = velocity * target if kind == "direction" else np.abs(velocity - target)
            row += f" {(measure * mask).sum() / mask.sum():.2f} |"
        lines.append(row)
    return lines
