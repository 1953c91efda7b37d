"""Process-wide CPU memory policy for large tensors.

glibc's ``malloc`` serves a block above its mmap threshold (32 MiB at most) with fresh pages from ``mmap`` and
returns them to the kernel on ``free``; freed heap memory above the trim threshold is returned too. A meta-update
allocates and frees many such blocks (one hidden layer of 40 tasks × 4000 steps × 100 units is 64 MB), and every
fresh page is faulted in and zeroed by the kernel on first touch. On a 2-core machine that costs more than the
arithmetic for an elementwise op: ``torch.relu`` of such a tensor takes 24 ms with fresh pages and 12 ms with
reused ones (whole meta-updates gain less: see ``update_allocator`` in ``rlmaml bench meta-step``).

``cpu_allocator("retain")`` (what ``rlmaml train``, ``evaluate`` and the benchmarks use) turns both off, so freed
blocks stay in the heap and later tensors reuse pages that are already mapped; the resident size then stays
at its peak instead of shrinking between steps. ``cpu_allocator("system")`` restores glibc's steady-state
defaults. ``RLMAML_ALLOCATOR=system`` in the environment keeps the system policy. Elsewhere than glibc (macOS,
musl) both are no-ops. ``rlmaml bench meta-step`` times meta-updates under both policies side by side.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from pathlib import Path

from .errors import UserError

ALLOCATOR_POLICIES = ("retain", "system")

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # mallopt parameters (malloc.h)
_SYSTEM = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 64 << 20, _M_MMAP_MAX: 65536}  # glibc after warm-up
_RETAIN = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 2**31 - 1}


@functools.cache
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def cpu_allocator(policy: str | None = None) -> str | None:
    """Set the malloc policy (``"retain"`` or ``"system"``; default: ``$RLMAML_ALLOCATOR`` or ``"retain"``).

    Returns the policy set, or ``None`` where the C library is not glibc (nothing changed).
    """
    if policy is None:
        policy = os.environ.get("RLMAML_ALLOCATOR", "retain")
    if policy not in ALLOCATOR_POLICIES:
        raise UserError(f"allocator policy (RLMAML_ALLOCATOR) {policy!r} is not allowed; allowed: {', '.join(ALLOCATOR_POLICIES)}")
    libc = _libc()
    if libc is None:
        return None
    for param, value in (_RETAIN if policy == "retain" else _SYSTEM).items():
        if libc.mallopt(param, value) != 1:
            return None
    if policy == "system":
        libc.malloc_trim(0)  # hand back what "retain" kept, so the comparison starts from the system state
    return policy


def prepare_run(out_dir, num_threads: int, device: str, seed: int):
    """Process setup shared by the RL and supervised trainers: create ``out_dir``, set the ``retain`` allocator
    policy (:func:`cpu_allocator`), torch's CPU threads (``num_threads``; 0 keeps torch's default) and its global
    seed. Returns ``(Path(out_dir), torch.device(device))``."""
    import torch

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cpu_allocator()
    if num_threads:
        torch.set_num_threads(num_threads)
    torch.manual_seed(seed)
    return out_dir, torch.device(device)
