"""What the RL and supervised trainers share about running: stopping on a signal, and resuming.

**Stopping.** Under :func:`stop_on_signals` (or after :func:`install_stop_signals`), SIGTERM and
SIGINT raise ``KeyboardInterrupt`` in the main thread, like Ctrl-C, also where a background
shell started the process with SIGINT ignored. A trainer catches it, checkpoints the state after
its last completed step and re-raises; ``rlmaml`` then exits with 130. A step that must not be
cut half-way (it updates parameters, optimizer moments and random streams together) runs under
:func:`deferred_stop`: a signal arriving inside it raises at its end instead, so the state is
always that of a whole number of steps::

    with stop_on_signals(), RunLogger(...) as logger:
        try:
            while step < total:
                with deferred_stop():
                    ...one step...
                    step += 1
                if step % every == 0:
                    save(step)
        except KeyboardInterrupt:
            save(step)
            raise

**Resuming.** :func:`resume_dir` checks that a directory given to ``--resume`` / ``--evaluate-only``
is a run directory (``config.yaml`` and ``checkpoint.pt``), with a one-line error naming it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from .checkpoint import CHECKPOINT_NAME
from .errors import UserError

CONFIG_NAME = "config.yaml"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_deferring = 0  # depth of nested deferred_stop blocks
_pending: int | None = None  # a stop signal that arrived inside one


def _interrupt(signum, frame) -> None:
    global _pending
    if _deferring:
        _pending = signum
        return
    raise KeyboardInterrupt(f"signal {signum}")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def install_stop_signals() -> None:
    """From now on SIGTERM and SIGINT raise ``KeyboardInterrupt`` in the main thread (for a command's
    whole process). Does nothing outside the main thread, where signal handlers cannot be set."""
    if _main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, _interrupt)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """:func:`install_stop_signals` for the duration of the block; the previous handlers come back after."""
    if not _main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    install_stop_signals()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def deferred_stop() -> Iterator[None]:
    """A stop signal arriving inside the block raises ``KeyboardInterrupt`` when the block ends (if it
    ends normally), not half-way. Only signals handled by :func:`stop_on_signals` are deferred."""
    global _deferring, _pending
    _deferring += 1
    try:
        yield
    except BaseException:  # the block failed: the process is stopping anyway, forget the signal
        _deferring -= 1
        if not _deferring:
            _pending = None
        raise
    _deferring -= 1
    if not _deferring and _pending is not None:
        signum, _pending = _pending, None
        raise KeyboardInterrupt(f"signal {signum}")


def resume_dir(path: str | Path, flag: str = "--resume") -> Path:
    """``path`` as a run directory to continue or evaluate: it must hold ``config.yaml`` and
    ``checkpoint.pt``; otherwise a one-line :class:`UserError` names ``flag`` and ``path``."""
    run_dir = Path(path)
    if not run_dir.is_dir():
        raise UserError(f"{flag} {str(run_dir)!r}: no such directory; give a run directory written by training")
    for name, why in ((CONFIG_NAME, "not a run directory"), (CHECKPOINT_NAME, "nothing to continue from")):
        if not (run_dir / name).is_file():
            raise UserError(f"{flag} {str(run_dir)!r}: no {name} there; {why}")
    return run_dir


__all__ = ["CONFIG_NAME", "STOP_SIGNALS", "deferred_stop", "install_stop_signals", "resume_dir", "stop_on_signals"]
