"""Markdown table of a training run's progress: block means of the training returns before and after adaptation
over the batches its checkpoint holds (``metrics.jsonl`` may run ahead of the checkpoint), plus the totals the
results READMEs quote (batches, env steps, accepted TRPO steps, median sampling / update seconds) and the wall
time from the TensorBoard events' timestamps, with the pauses between sessions of a resumed run left out.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence


def wall_seconds(written: Mapping[int, float], logged: Sequence[float]) -> tuple[float, int] | None:
    """(training wall time in seconds, pauses) from the time each batch's event was written (``written``: batch
    -> wall-clock time; one event per batch, a resumed run's rewritten batches at their latest write).

    The time between two batches' events is that batch's wall time, unless it exceeds the batch's own logged
    ``sample_seconds + update_seconds`` (``logged``) by more than a minute: then the run was stopped and resumed in
    between, and only the logged seconds count. None when the events do not cover batches 0..len(logged)-1.
    """
    if not logged or sorted(written)[:len(logged)] != list(range(len(logged))):
        return None
    seconds, pauses = logged[0], 0
    for step in range(1, len(logged)):
        gap = written[step] - written[step - 1]
        pause = gap > logged[step] + 60.0
        seconds += logged[step] if pause else gap
        pauses += pause
    return seconds, pauses


def fmt(value: float) -> str:
    """One decimal, with a typographic minus (as the READMEs write returns)."""
    return f"{value:.1f}".replace("-", "−")


def progress_lines(rows: Sequence[Mapping], batches: int, env_steps: int, num_inner_steps: int = 1,
                   block: int = 25, skip: int = 20, written: Mapping[int, float] | None = None) -> list[str]:
    """The totals line, the wall-time line (when ``written``, the events' times, covers the rows) and the table.

    ``rows`` are ``metrics.jsonl`` records; only the first ``batches`` (the checkpoint's) count. ``skip`` leaves the
    first batches out of the median timings; ``block`` is the number of batches per column.
    """
    rows = list(rows)[:batches]
    accepted = sum(bool(r.get("step_accepted", True)) for r in rows)
    late = rows[skip:] or rows
    lines = [(f"{batches} meta-batches, {env_steps:,} env steps, {accepted} of {batches} TRPO steps accepted; "
             f"median sampling {statistics.median(r['sample_seconds'] for r in late):.1f} s and update "
             f"{statistics.median(r['update_seconds'] for r in late):.1f} s per batch from batch {skip} on")]
    logged = [r["sample_seconds"] + r["update_seconds"] for r in rows]
    wall = wall_seconds(written, logged) if written is not None and rows else None
    if wall is not None:
        seconds, pauses = wall
        lines.append(f"wall time {seconds / 60:.1f} min ({pauses} pause{'' if pauses == 1 else 's'} between sessions "
                     f"left out); logged sampling + update {sum(logged) / 60:.1f} min")
    lines.append("")
    blocks = [rows[s:s + block] for s in range(0, batches, block)]
    starts = range(0, batches, block)
    lines.append("| batches | " + " | ".join(f"{s}–{s + len(b) - 1}" for s, b in zip(starts, blocks)) + " |")
    lines.append("|---" * (len(blocks) + 1) + "|")
    k = num_inner_steps
    after = "after one step" if k == 1 else f"after {k} steps"
    between = [(f"returns_step_{j}", f"after {j} step{'' if j == 1 else 's'}") for j in range(1, k)
               if all(f"returns_step_{j}" in r for r in rows)]  # the intermediate steps of a k-step run
    for key, label in (("returns_before", "before"), *between, ("returns_after", after)):
        lines.append(f"| {label} | " + " | ".join(fmt(statistics.mean(r[key] for r in b)) for b in blocks) + " |")
    return lines


def logged_minutes(rows: Sequence[Mapping]) -> float:
    """Minutes a run spent sampling and updating, from its ``metrics.jsonl`` records: the sum of the RL records'
    ``sample_seconds + update_seconds``, or the last supervised record's cumulative ``seconds``."""
    if rows and "sample_seconds" in rows[0]:
        return sum(r["sample_seconds"] + r["update_seconds"] for r in rows) / 60
    return rows[-1]["seconds"] / 60 if rows else 0.0


def durations_lines(runs: Sequence[tuple[str, Sequence[Mapping], Mapping[int, float] | None]]) -> list[str]:
    """Markdown table of how long each run took: (name, metrics rows, event times or None) per run.

    The wall time comes from the TensorBoard events (:func:`wall_seconds`, pauses between sessions left out) where
    they cover every batch; the logged time is :func:`logged_minutes`.
    """
    lines = ["| run | batches | env steps | logged sampling + update (min) | wall time (min) |", "|---|---|---|---|---|"]
    for name, rows, written in runs:
        rl = bool(rows) and "sample_seconds" in rows[0]
        wall = None
        if rl and written is not None:
            wall = wall_seconds(written, [r["sample_seconds"] + r["update_seconds"] for r in rows])
        steps = f"{rows[-1]['env_steps']:,}" if rl else "—"
        lines.append(f"| {name} | {len(rows)} | {steps} | {logged_minutes(rows):.1f} | "
                     f"{f'{wall[0] / 60:.1f}' if wall else '—'} |")
    return lines
