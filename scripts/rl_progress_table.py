#!/usr/bin/env python
"""Markdown table of a training run's progress: block means of the training returns before and after adaptation
over the batches its checkpoint holds (``metrics.jsonl`` may run ahead of the checkpoint), plus the totals the
results READMEs quote (batches, env steps, accepted TRPO steps, median sampling / update seconds).

usage: python scripts/rl_progress_table.py RUN_DIR [--block 25] [--skip 20]
"""

import argparse
import json
import statistics
from pathlib import Path

import torch


def fmt(value: float) -> str:
    return f"{value:.1f}".replace("-", "−")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--block", type=int, default=25, help="batches per column (default 25)")
    parser.add_argument("--skip", type=int, default=20,
                        help="leave the first N batches out of the median timings (default 20)")
    args = parser.parse_args()
    checkpoint = torch.load(args.run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    batches, env_steps = checkpoint["batch"], checkpoint["env_steps"]
    rows = [json.loads(line) for line in (args.run_dir / "metrics.jsonl").read_text().splitlines()][:batches]
    accepted = sum(bool(r.get("step_accepted", True)) for r in rows)
    late = rows[args.skip:] or rows
    print(f"{batches} meta-batches, {env_steps:,} env steps, {accepted} of {batches} TRPO steps accepted; "
          f"median sampling {statistics.median(r['sample_seconds'] for r in late):.1f} s and update "
          f"{statistics.median(r['update_seconds'] for r in late):.1f} s per batch from batch {args.skip} on\n")
    blocks = [rows[s:s + args.block] for s in range(0, batches, args.block)]
    starts = range(0, batches, args.block)
    print("| batches | " + " | ".join(f"{s}–{s + len(b) - 1}" for s, b in zip(starts, blocks)) + " |")
    print("|---" * (len(blocks) + 1) + "|")
    for key, label in (("returns_before", "before"), ("returns_after", "after one step")):
        print(f"| {label} | " + " | ".join(fmt(statistics.mean(r[key] for r in b)) for b in blocks) + " |")
