#!/usr/bin/env python
"""Learning curve of an RL run: mean return before and after adaptation vs environment steps.

usage: python scripts/rl_plot_curve.py RUN_DIR [--out FILE] [--smooth N]
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import yaml

from rlmaml.logging import read_metrics


def smooth(x, n):
    if n <= 1 or len(x) < n:
        return np.asarray(x)
    kernel = np.ones(n) / n
    head = [np.mean(x[: i + 1]) for i in range(n - 1)]
    return np.concatenate([head, np.convolve(x, kernel, mode="valid")])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--out", default=None, help="default RUN_DIR/learning_curve.png")
    parser.add_argument("--smooth", type=int, default=5, help="moving-average window in meta-batches")
    args = parser.parse_args()
    run_dir = Path(args.run_dir)
    records = read_metrics(run_dir)
    if not records:
        raise SystemExit(f"rlmaml: error: no metrics.jsonl records in {str(run_dir)!r}")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    steps = np.array([r["env_steps"] for r in records], dtype=float)
    before = np.array([r["returns_before"] for r in records], dtype=float)
    after = np.array([r["returns_after"] for r in records], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(steps, before, color="tab:blue", alpha=0.25, lw=0.8)
    ax.plot(steps, after, color="tab:red", alpha=0.25, lw=0.8)
    ax.plot(steps, smooth(before, args.smooth), color="tab:blue", label="before adaptation (θ)")
    k = cfg.get("num_inner_steps", 1) if cfg.get("algorithm", "maml") == "maml" else 0
    ax.plot(steps, smooth(after, args.smooth), color="tab:red", label=f"after {k} inner step(s) (θ')")
    ax.set_xlabel("environment steps (all sampled episodes)")
    ax.set_ylabel("mean undiscounted return per episode")
    ax.set_title(f"{cfg.get('algorithm', 'maml').upper()}-TRPO on {cfg['env'].split('/')[-1]}: "
                 f"{cfg['meta_batch_size']} tasks × {cfg['episodes_per_task']} episodes, seed {cfg['seed']}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = Path(args.out) if args.out else run_dir / "learning_curve.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out} ({len(records)} meta-batches)")
