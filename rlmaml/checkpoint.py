"""Atomic checkpoints and exact resume.

A checkpoint is a ``torch.save``d dict written to a temporary file in the same
directory, fsynced and renamed over the target (``os.replace``), so a crash
never leaves a half-written checkpoint. RNG states of Python, NumPy and torch
(CPU and CUDA) travel with it so a resumed run continues the same random streams.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import UserError

CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(UserError):
    """A missing or unreadable checkpoint (message is one line)."""


def rng_state() -> dict[str, Any]:
    """Snapshot of the global random number generators."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_atomic(path: Path, write, suffix: str) -> Path:
    """``write(f)`` into a temporary file beside ``path``, fsync it and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Atomically write ``state`` to ``path`` (a file, or a directory that gets checkpoint.pt)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    return _write_atomic(path, lambda f: torch.save(state, f), ".pt")


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Atomically replace the file ``path`` by ``text`` (UTF-8): readers see the old file or the new one."""
    return _write_atomic(Path(path), lambda f: f.write(text.encode()), ".txt")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; clear error when missing or corrupt."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {str(path)!r}; train first or point to a run directory")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or unreadable ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} does not hold a state dict")
    return state
