"""Tasks split into parts, and the per-task sums that join the parts again.

**Parts.** With ``task_split`` = q (a divisor of E, the episodes per task) each of a meta-batch's N tasks is
cut into q parts of E/q episodes: part (t, j) holds episodes j·E/q … (j+1)·E/q − 1 of task t. A shard is a list
of parts, and shards can be finer than a task: N·q parts spread over S shards. :func:`assign_parts` gives every
shard an equal share of the parts and an equal share of the Fisher tasks' parts (the first n_F tasks, whose
Fisher-vector products are the meta-update's costliest work), so that no worker waits for another in any phase.
q = 1 and one shard is the plain meta-batch, every task in order.

**Per-task sums.** Everything MAML needs of a task is a sum over the task's steps, hence over its parts:

    X_t = Σ_{p ∈ t} X_p        for X = ΦᵀMΦ and ΦᵀMR (the baseline's normal equations), Σ m, Σ m·A,
                               Σ m·(A − μ)² (the advantages' normalisation), ∇L_t (the inner gradient),
                               H_t w (the Hessian-vector products of the adaptation), ∇_θ'S_t, F'_t u.

A computation that needs them is a *shard program*: a generator that yields its shares ``{t: (X_t,p …)}``
(summed over its own parts of each task, in part order) and is sent back the totals ``{t: (X_t …)}``, summed over
the shards in shard order; its return value is its answer. :func:`run_programs` runs the programs of shards held
in this process side by side; :mod:`rlmaml.distributed` runs each on its worker and sums on the driver. Only
θ-sized vectors (and the baseline's F × F normal equations) travel, never episodes. With one shard every total is
the shard's own share, untouched, so the plain meta-batch computes exactly what it computes without parts.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import UserError

Part = tuple[int, int]  # (task, j): episodes j·E/q … (j+1)·E/q − 1 of task t
Shares = dict[int, tuple[Tensor, ...]]
Program = Generator[Shares, Shares, object]


@dataclass(frozen=True)
class Shard:
    """Parts ``start .. stop − 1`` of a meta-batch laid out shard after shard (``total`` parts in all), which
    (task, j) each of them is, and q = ``task_split``. Its copies act as the same episodes of a meta-batch sampled
    whole would: :meth:`copy_indices` and :meth:`noise_rows` place them in the whole batch's task-major order."""

    start: int
    stop: int
    total: int
    parts: tuple[Part, ...] = ()
    task_split: int = 1
    #: whether some task of the layout has parts on several shards (else every per-task sum is a shard's own)
    joined: bool = False

    def __post_init__(self):
        if not self.parts:  # whole tasks start .. stop − 1
            object.__setattr__(self, "parts", tuple((t, 0) for t in range(self.start, self.stop)))

    @property
    def num_tasks(self) -> int:
        """Rows of the shard's batches: its parts (its tasks when no task is split)."""
        return self.stop - self.start

    @property
    def part_tasks(self) -> list[int]:
        return [t for t, _ in self.parts]

    def noise_rows(self) -> list[int]:
        """Each part's row t·q + j in the whole batch's task-major ``[N·q, E/q, …]`` layout."""
        return [t * self.task_split + j for t, j in self.parts]

    def copy_indices(self, episodes_per_part: int) -> list[int]:
        """The whole batch's copy index t·E + j·E/q + e of each of this shard's copies (part by part)."""
        e = episodes_per_part
        return [(t * self.task_split + j) * e + i for t, j in self.parts for i in range(e)]

    def describe(self) -> str:
        tasks = sorted(set(self.part_tasks))
        return f"tasks {tasks[0]}..{tasks[-1]}" if tasks == list(range(tasks[0], tasks[-1] + 1)) else f"tasks {tasks}"


def _split(n: int, pieces: int, larger_first: bool = True) -> list[int]:
    base, extra = divmod(n, pieces)
    sizes = [base + (i < extra) for i in range(pieces)]
    return sizes if larger_first else sizes[::-1]


def assign_parts(num_tasks: int, task_split: int, num_shards: int, fisher_tasks: int = 0) -> list[Shard]:
    """The shards of a meta-batch of ``num_tasks`` tasks, each cut into ``task_split`` parts, over ``num_shards``
    shards: the parts of the first n_F = ``fisher_tasks`` tasks (all tasks when 0 or ≥ N) in contiguous runs, the
    first shards one part more when they do not divide evenly, then the other parts in contiguous runs, the last
    shards one more; each shard's parts in (task, j) order. One shard: every part in order."""
    what = f"{num_tasks} tasks" if task_split == 1 else f"{num_tasks} tasks of {task_split} parts"
    if num_shards < 1 or num_shards > num_tasks * task_split:
        raise UserError(f"cannot split {what} into {num_shards} shards: need 1 <= shards <= "
                        f"{'tasks' if task_split == 1 else num_tasks * task_split}")
    n_f = fisher_tasks if 0 < fisher_tasks < num_tasks else num_tasks
    fisher = [(t, j) for t in range(n_f) for j in range(task_split)]
    other = [(t, j) for t in range(n_f, num_tasks) for j in range(task_split)]
    f_sizes, o_sizes = _split(len(fisher), num_shards), _split(len(other), num_shards, larger_first=False)
    out, start, fi, oi = [], 0, 0, 0
    for a, b in zip(f_sizes, o_sizes):
        parts = tuple(fisher[fi:fi + a] + other[oi:oi + b])
        fi, oi = fi + a, oi + b
        out.append(Shard(start, start + len(parts), num_tasks * task_split, parts, task_split))
        start += len(parts)
    if any(s.num_tasks == 0 for s in out):
        raise UserError(f"cannot split {what} into {num_shards} non-empty shards")
    owner: dict[int, int] = {}
    joined = any(owner.setdefault(t, i) != i for i, s in enumerate(out) for t, _ in s.parts)
    return [Shard(s.start, s.stop, s.total, s.parts, s.task_split, joined) for s in out] if joined else out


def shards(num_tasks: int, num_shards: int, task_split: int = 1, fisher_tasks: int = 0) -> list[Shard]:
    """:func:`assign_parts`; with whole tasks and every task in the Fisher, ``num_tasks`` split into contiguous
    shards, the first ``num_tasks % num_shards`` one task larger."""
    return assign_parts(num_tasks, task_split, num_shards, fisher_tasks)


# ------------------------------------------------------------------------------------------ shares and totals
def task_shares(part_tasks: Sequence[int], *xs: Tensor, axis: int = 0, rows: Sequence[int] | None = None) -> Shares:
    """{t: (Σ_{p ∈ t} x[p] for x in xs)}: each task's share of ``xs`` (part axis ``axis``), summed over the parts
    of this shard left to right; ``rows`` restricts to those parts (default all)."""
    index: dict[int, list[int]] = {}
    for p in range(len(part_tasks)) if rows is None else rows:
        index.setdefault(part_tasks[p], []).append(p)
    return {t: tuple(ordered_sum(x.select(axis, p) for p in ps) for x in xs) for t, ps in index.items()}


def per_part(part_tasks: Sequence[int], totals: Shares, count: int, axis: int = 0,
             rows: Sequence[int] | None = None) -> tuple[Tensor, ...]:
    """The totals laid out per part again: for each of the ``count`` tensors, row p = its task's total."""
    rows = range(len(part_tasks)) if rows is None else rows
    return tuple(torch.stack([totals[part_tasks[p]][n] for p in rows], dim=axis) for n in range(count))


def summed_per_task(part_tasks: Sequence[int], *xs: Tensor, axis: int = 0,
                    rows: Sequence[int] | None = None) -> Generator[Shares, Shares, tuple[Tensor, ...]]:
    """``yield from`` in a shard program: each part's rows of ``xs`` replaced by its task's total over every
    shard (a shard that holds every part of its tasks gets its own shares back)."""
    totals = yield task_shares(part_tasks, *xs, axis=axis, rows=rows)
    return per_part(part_tasks, totals, len(xs), axis=axis, rows=rows)


def ordered_sum(xs):
    """x_0 + x_1 + … left to right (the one order every engine sums in); a single term is returned as it is."""
    xs = iter(xs)
    total = next(xs)
    for x in xs:
        total = total + x
    return total


def sum_shares(all_shares: Sequence[Shares]) -> list[Shares]:
    """The totals of every task over the shards' shares (in shard order), and for each shard the totals of the
    tasks it asked for."""
    totals: dict[int, tuple[Tensor, ...]] = {}
    for shares in all_shares:
        for t, values in shares.items():
            totals[t] = values if t not in totals else tuple(a + b for a, b in zip(totals[t], values))
    return [{t: totals[t] for t in shares} for shares in all_shares]


def step(program: Program, totals: Shares | None) -> tuple[str, object]:
    """Send ``program`` the totals of its last shares (None to start it): ``("shares", its next shares)`` or
    ``("done", its return value)``."""
    try:
        return "shares", program.send(totals)
    except StopIteration as stop:
        return "done", stop.value


def lockstep(answers: list, advance, what: str = "shard programs", on_round=None) -> tuple[list, int]:
    """Drive shard programs side by side from their first ``answers`` (:func:`step`'s pairs): every round's shares
    summed per task (:func:`sum_shares`, in program order), ``on_round(shares, totals)`` told, and
    ``advance(totals)`` asked for the next answers, until every program is done; their values and the number of
    rounds (calls of each program). Every program must yield the same number of times."""
    rounds = 1
    while True:
        kinds = {kind for kind, _ in answers}
        if kinds == {"done"}:
            return [value for _, value in answers], rounds
        if kinds != {"shares"}:
            raise RuntimeError(f"{what} yielded different numbers of times")
        shares = [value for _, value in answers]
        totals = sum_shares(shares)
        if on_round is not None:
            on_round(shares, totals)
        answers = advance(totals)
        rounds += 1


def run_programs(programs: Sequence[Program]) -> list:
    """Run shard programs side by side in this process (:func:`lockstep`); their return values, in order."""
    programs = list(programs)
    values, _ = lockstep([step(p, None) for p in programs],
                         lambda totals: [step(p, t) for p, t in zip(programs, totals)])
    return values


def run_alone(program: Program):
    """Run one shard's program that holds every part of its tasks: each total is its own share."""
    return run_programs([program])[0]


__all__ = [
    "Shard",
    "assign_parts",
    "lockstep",
    "ordered_sum",
    "per_part",
    "run_alone",
    "run_programs",
    "shards",
    "step",
    "sum_shares",
    "summed_per_task",
    "task_shares",
]
