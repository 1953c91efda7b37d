#!/usr/bin/env python
"""Markdown table of an RL ``eval.json``: every method, mean ± 95% CI after 0..k inner steps, and the MAML
paper's numbers for the env where they exist (used for the READMEs of results/).

usage: python scripts/rl_results_table.py RESULTS_DIR/eval.json
"""

import json
import sys
from pathlib import Path

from rlmaml.plotting import paper_reference

ORDER = ["maml", "pretrained", "random", "oracle"]
LABELS = {"maml": "MAML (ours)", "pretrained": "pretrained (ours)", "random": "random init (ours)",
          "oracle": "oracle (ours)"}

if __name__ == "__main__":
    result = json.loads(Path(sys.argv[1]).read_text())
    steps = result["grad_steps"]
    names = sorted(result["methods"], key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    alphas = result.get("step_sizes")
    alphas = f"inner step sizes {', '.join(f'{a:g}' for a in alphas)}; " if alphas else ""
    print(f"{result['env']}: {result['num_tasks']} held-out tasks (seed {result['seed']}), "
          f"{result['episodes_per_task']} episodes per task and phase, {alphas}mean ± 95% CI over tasks.\n")
    print("| method | " + " | ".join(f"{k} step{'s' if k != 1 else ''}" for k in steps) + " |")
    print("|---" * (len(steps) + 1) + "|")
    for name in names:
        m = result["methods"][name]
        cells = [f"{a:.1f} ± {c:.1f}" for a, c in zip(m["mean"], m["ci95"])]
        cells += [""] * (len(steps) - len(cells))
        batches = m.get("trained_batches")
        label = LABELS.get(name, name) + (f", {batches} batches" if batches else "")
        print(f"| {label} | " + " | ".join(cells) + " |")
    reference = paper_reference(result["env"])
    if reference:
        cells = [f"{r:.1f}" for r in reference[: len(steps)]] + [""] * max(0, len(steps) - len(reference))
        print("| MAML (paper) | " + " | ".join(cells) + " |")
