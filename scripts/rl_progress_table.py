#!/usr/bin/env python
"""Markdown table of a training run's progress: block means of the training returns before and after adaptation
over the batches its checkpoint holds (``metrics.jsonl`` may run ahead of the checkpoint), plus the totals the
results READMEs quote (batches, env steps, accepted TRPO steps, median sampling / update seconds) and the wall
time from the TensorBoard events' timestamps, with the pauses between sessions of a resumed run left out.

usage: python scripts/rl_progress_table.py RUN_DIR [--block 25] [--skip 20]
"""

import argparse
import json
import statistics
from pathlib import Path

import torch


def wall_seconds(tb_dir: Path, logged: list[float]) -> tuple[float, int] | None:
    """(training wall time in seconds, pauses) from the events' timestamps, one event per batch.

    The time between two batches' events is that batch's wall time, unless it exceeds the batch's own logged
    ``sample_seconds + update_seconds`` (``logged``) by more than a minute: then the run was stopped and resumed in between,
    and only the logged seconds count.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    if "sample_seconds" not in accumulator.Tags().get("scalars", []):
        return None
    written = {}
    for event in accumulator.Scalars("sample_seconds"):
        written[event.step] = event.wall_time  # a resumed run's rewritten batches: the latest write
    if sorted(written)[:len(logged)] != list(range(len(logged))):
        return None
    seconds, pauses = logged[0], 0
    for step in range(1, len(logged)):
        gap = written[step] - written[step - 1]
        pause = gap > logged[step] + 60.0
        seconds += logged[step] if pause else gap
        pauses += pause
    return seconds, pauses


def fmt(value: float) -> str:
    return f"{value:.1f}".replace("-", "−")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--block", type=int, default=25, help="batches per column (default 25)")
    parser.add_argument("--skip", type=int, default=20,
                        help="leave the first N batches out of the median timings (default 20)")
    args = parser.parse_args()
    for name in ("checkpoint.pt", "metrics.jsonl"):
        if not (args.run_dir / name).is_file():
            raise SystemExit(f"error: run_dir {str(args.run_dir)!r} has no {name}; expected a training run directory")
    checkpoint = torch.load(args.run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    batches, env_steps = checkpoint["batch"], checkpoint["env_steps"]
    rows = [json.loads(line) for line in (args.run_dir / "metrics.jsonl").read_text().splitlines()][:batches]
    accepted = sum(bool(r.get("step_accepted", True)) for r in rows)
    late = rows[args.skip:] or rows
    print(f"{batches} meta-batches, {env_steps:,} env steps, {accepted} of {batches} TRPO steps accepted; "
          f"median sampling {statistics.median(r['sample_seconds'] for r in late):.1f} s and update "
          f"{statistics.median(r['update_seconds'] for r in late):.1f} s per batch from batch {args.skip} on")
    logged = [r["sample_seconds"] + r["update_seconds"] for r in rows]
    wall = wall_seconds(args.run_dir / "tb", logged) if (args.run_dir / "tb").is_dir() and rows else None
    if wall is not None:
        seconds, pauses = wall
        print(f"wall time {seconds / 60:.1f} min ({pauses} pause{'' if pauses == 1 else 's'} between sessions "
              f"left out); logged sampling + update {sum(logged) / 60:.1f} min")
    print()
    blocks = [rows[s:s + args.block] for s in range(0, batches, args.block)]
    starts = range(0, batches, args.block)
    print("| batches | " + " | ".join(f"{s}–{s + len(b) - 1}" for s, b in zip(starts, blocks)) + " |")
    print("|---" * (len(blocks) + 1) + "|")
    k = checkpoint["config"].get("num_inner_steps", 1) if isinstance(checkpoint.get("config"), dict) else 1
    after = "after one step" if k == 1 else f"after {k} steps"
    between = [(f"returns_step_{j}", f"after {j} step{'' if j == 1 else 's'}") for j in range(1, k)
               if all(f"returns_step_{j}" in r for r in rows)]  # the intermediate steps of a k-step run
    for key, label in (("returns_before", "before"), *between, ("returns_after", after)):
        print(f"| {label} | " + " | ".join(fmt(statistics.mean(r[key] for r in b)) for b in blocks) + " |")
