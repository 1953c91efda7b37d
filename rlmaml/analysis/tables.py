"""Markdown table of an RL ``eval.json``: every method, mean ± 95% CI after 0..k inner steps, and the MAML paper's
numbers for the env where they exist (the tables of the results READMEs). For goal-position tasks (navigation,
AntGoal) it adds how MAML's per-task return after the last step follows the goal's distance from the start: the
correlation over tasks, and the nearest and farthest goals before and after adapting. For envs that report
success (Meta-World) a second table gives the success rates, per class for ML10/ML45.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ORDER = ["maml", "pretrained", "random", "oracle"]
LABELS = {"maml": "MAML (ours)", "pretrained": "pretrained (ours)", "random": "random init (ours)",
          "oracle": "oracle (ours)"}


def goal_distance_lines(result: dict, method: str = "maml", n: int = 4) -> list[str]:
    """Per-task returns of ``method`` (0 and last step) against the goal's Euclidean distance from the origin."""
    if not all("goal" in t for t in result.get("tasks", [])) or method not in result["methods"]:
        return []
    distance = np.linalg.norm(np.array([t["goal"] for t in result["tasks"]], dtype=np.float64), axis=1)
    per_task = np.array(result["methods"][method]["per_task"], dtype=np.float64)  # [steps, tasks]
    before, after = per_task[0], per_task[-1]
    k = len(per_task) - 1
    corr = np.corrcoef(distance, after)[0, 1]
    lines = [f"{method}: correlation of the goal's distance with the return after {k} step(s): {corr:.2f}", "",
             f"| goal distance (m) | return, 0 steps | return, {k} step(s) | gain |", "|---|---|---|---|"]
    order = np.argsort(distance)
    for i in [*order[:n], *order[-n:]]:
        lines.append(f"| {distance[i]:.2f} | {before[i]:.1f} | {after[i]:.1f} | {after[i] - before[i]:+.1f} |")
    return lines


def eval_table_lines(result: dict, reference: Sequence[float] | None = None) -> list[str]:
    """The protocol line, the table of every method (``reference``: the paper's returns after 0, 1, ... steps,
    a last row when given) and, for goal tasks, :func:`goal_distance_lines`."""
    steps = result["grad_steps"]
    names = sorted(result["methods"], key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    alphas = result.get("step_sizes")
    alphas = f"inner step sizes {', '.join(f'{a:g}' for a in alphas)}; " if alphas else ""
    lines = [(f"{result['env']}: {result['num_tasks']} held-out tasks (seed {result['seed']}), "
             f"{result['episodes_per_task']} episodes per task and phase, {alphas}mean ± 95% CI over tasks."), "",
             "| method | " + " | ".join(f"{k} step{'s' if k != 1 else ''}" for k in steps) + " |",
             "|---" * (len(steps) + 1) + "|"]
    for name in names:
        m = result["methods"][name]
        cells = [f"{a:.1f} ± {c:.1f}" for a, c in zip(m["mean"], m["ci95"])]
        cells += [""] * (len(steps) - len(cells))
        batches = m.get("trained_batches")
        label = LABELS.get(name, name) + (f", {batches} batches" if batches else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if reference:
        cells = [f"{r:.1f}" for r in reference[: len(steps)]] + [""] * max(0, len(steps) - len(reference))
        lines.append("| MAML (paper) | " + " | ".join(cells) + " |")
    success = success_lines(result, names, steps)
    if success:
        lines += ["", *success]
    goal_lines = goal_distance_lines(result)
    if goal_lines:
        lines += ["", *goal_lines]
    return lines


def success_lines(result: dict, names: Sequence[str], steps: Sequence[int]) -> list[str]:
    """For envs that report success (Meta-World): the success rate of every method after 0..k steps (mean ± 95%
    CI over tasks, in percent), and MAML's per class when there are several (ML10, ML45)."""
    methods = result["methods"]
    if not any("success" in methods[n] for n in names):
        return []
    head = "| success rate, % | " + " | ".join(f"{k} step{'s' if k != 1 else ''}" for k in steps) + " |"
    lines = [head, "|---" * (len(steps) + 1) + "|"]
    for name in names:
        block = methods[name].get("success")
        if block:
            cells = [f"{100 * a:.1f} ± {100 * c:.1f}" for a, c in zip(block["mean"], block["ci95"])]
            lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    by_class = methods.get("maml", {}).get("success_by_class") or {}
    if len(by_class) > 1:
        for cls, values in by_class.items():
            lines.append(f"| MAML (ours): {cls} | " + " | ".join(f"{100 * v:.1f}" for v in values) + " |")
    return lines
