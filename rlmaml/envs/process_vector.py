"""Copies of a Gymnasium env stepped in worker processes, a contiguous chunk of copies per process.

``ProcessVectorEnv(env_fns, processes=W)`` splits the copies into W chunks (the first ``N mod W`` one copy
longer) and runs each chunk as a ``gymnasium.vector.SyncVectorEnv`` in its own process. One step sends each
worker its chunk's actions and gathers observations, rewards, terminations and the numeric info in copy order,
so the policy is evaluated once per step on the whole batch in the caller while the W chunks step in parallel.
Unlike ``AsyncVectorEnv`` (one process per copy) the messages per step are W, not N, and each process holds
many copies. Each copy is the same env, seeded the same way, as in a ``SyncVectorEnv`` of all N: the two give
the same trajectories bit for bit (``tests/test_process_vector.py``).

It offers the part of the vector-env API that :class:`~rlmaml.envs.batched.GymVectorBatchedEnv` uses:
``reset(seed=[...])``, ``step(actions)``, ``set_attr(name, values)`` and ``close()``. Workers are started
as fresh interpreters (:data:`WORKER_COMMAND`, talking over two pipes: no fork of a threaded
parent, and no re-import of the caller's main script as ``multiprocessing``'s spawn does); a worker that raises
reports the error in one line, a worker that dies is named with its exit code, and a worker whose caller is gone
exits.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

import numpy as np


def chunk_bounds(num_envs: int, processes: int) -> list[tuple[int, int]]:
    """[start, stop) of each worker's copies: W contiguous chunks, sizes differing by at most one."""
    base, extra = divmod(num_envs, processes)
    bounds, start = [], 0
    for w in range(processes):
        stop = start + base + (w < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def make_env(module: str | None, env_id: str, **kwargs):
    """``gymnasium.make(env_id, **kwargs)`` after importing ``module`` (the one that registers ``env_id``: a
    worker process knows only the registrations its imports make)."""
    import importlib

    import gymnasium as gym

    if module:
        importlib.import_module(module)
    return gym.make(env_id, **kwargs)


def registering_module(env_id: str) -> str | None:
    """The module that defines ``env_id``'s entry point (for :func:`make_env` in a worker), or None."""
    import gymnasium as gym

    name = env_id.split(":", 1)[1] if ":" in env_id else env_id
    spec = gym.registry.get(name)
    if spec is None:
        return env_id.split(":", 1)[0] if ":" in env_id else None
    entry = spec.entry_point
    if isinstance(entry, str):
        return entry.split(":", 1)[0]
    return getattr(getattr(entry, "func", entry), "__module__", None)  # a class, a function or a functools.partial


def _worker(conn) -> None:
    """A worker's loop: one SyncVectorEnv of its chunk (the first message), then a command per message and an
    answer per command; a command that raises is answered with the error in one line, and the loop goes on."""
    import gymnasium as gym

    vec = None
    try:
        env_fns = conn.recv()
        vec = _answer(conn, lambda: gym.vector.SyncVectorEnv(env_fns, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP),
                      send_value=False)
        while vec is not None:
            command, payload = conn.recv()
            if command == "close":
                conn.send(("ok", None))
                return
            _answer(conn, functools.partial(_run, vec, command, payload))
    except (KeyboardInterrupt, EOFError, OSError):  # the caller is gone
        return
    finally:
        if vec is not None:
            vec.close()


def _answer(conn, fn, send_value: bool = True):
    """Send ``("ok", fn())`` (``("ok", None)`` without ``send_value``) or ``("error", one line)``; returns fn()'s
    value (None after an error)."""
    try:
        value = fn()
    except Exception as exc:  # noqa: BLE001  (any error of the env goes back to the caller, in one line)
        where = traceback.extract_tb(exc.__traceback__)[-1]
        conn.send(("error", f"{type(exc).__name__}: {exc} (at {where.filename}:{where.lineno})"))
        return None
    conn.send(("ok", value if send_value else None))
    return value


def _run(vec, command: str, payload):
    """One command on the chunk's SyncVectorEnv and its answer."""
    if command == "reset":
        obs, _ = vec.reset(seed=payload)
        return np.asarray(obs)
    if command == "step":
        obs, reward, terminated, truncated, info = vec.step(payload)
        numeric = {}
        for key, value in info.items():
            value = np.asarray(value)
            if not key.startswith("_") and value.dtype.kind in "fiub" and value.shape[:1] == (vec.num_envs,):
                numeric[key] = value
        return np.asarray(obs), np.asarray(reward), np.asarray(terminated), np.asarray(truncated), numeric
    if command == "set_attr":
        name, values = payload
        vec.set_attr(name, values)
        return None
    raise ValueError(f"unknown command {command!r}; allowed: reset, step, set_attr, close")


class ProcessVectorEnv:
    """N copies (``env_fns``, picklable) in ``processes`` worker processes; the module docstring says how."""

    def __init__(self, env_fns: Sequence[Callable], processes: int):
        self.num_envs = len(env_fns)
        if not isinstance(processes, int) or processes < 1:
            raise ValueError(f"processes must be a positive integer, got {processes!r}")
        self.bounds = chunk_bounds(self.num_envs, min(processes, self.num_envs))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._conns, self._procs = [], []
        try:
            for start, stop in self.bounds:
                to_child_r, to_child_w = os.pipe()
                from_child_r, from_child_w = os.pipe()
                proc = subprocess.Popen([sys.executable, "-c", WORKER_COMMAND, str(to_child_r), str(from_child_w)],
                                        pass_fds=(to_child_r, from_child_w), env=env,
                                        stdin=subprocess.DEVNULL)
                os.close(to_child_r)
                os.close(from_child_w)
                self._procs.append(proc)
                self._conns.append(_Duplex(Connection(from_child_r, writable=False),
                                           Connection(to_child_w, readable=False)))
                self._conns[-1].send(list(env_fns[start:stop]))
            self._gather()
        except BaseException:
            self.close()
            raise

    @property
    def processes(self) -> int:
        return len(self._procs)

    def _gather(self) -> list:
        """Every worker's answer, in worker order. All are read before a reported error or a dead worker raises
        RuntimeError (the first of them), so no answer is left in a pipe."""
        answers, failure = [], None
        for w, conn in enumerate(self._conns):
            try:
                status, payload = conn.recv()
            except (EOFError, ConnectionResetError, BrokenPipeError, OSError):
                proc = self._procs[w]
                try:
                    code = proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    code = None
                status, payload = "died", f"env worker {w} (pid {proc.pid}) died with exit code {code}"
            if status != "ok" and failure is None:
                failure = payload if status == "died" else f"env worker {w} failed: {payload}"
            answers.append(payload)
        if failure is not None:
            raise RuntimeError(failure)
        return answers

    def _send(self, command: str, payloads: Sequence) -> list:
        for conn, payload in zip(self._conns, payloads):
            try:
                conn.send((command, payload))
            except (BrokenPipeError, OSError):  # a dead worker: _gather names it
                pass
        return self._gather()

    def reset(self, seed: Sequence[int] | None = None):
        seeds = [None if seed is None else list(seed[a:b]) for a, b in self.bounds]
        return np.concatenate(self._send("reset", seeds)), {}

    def step(self, actions: np.ndarray):
        parts = self._send("step", [actions[a:b] for a, b in self.bounds])
        obs, reward, terminated, truncated = (np.concatenate([p[i] for p in parts]) for i in range(4))
        shared = set.intersection(*(set(p[4]) for p in parts))
        info = {k: np.concatenate([p[4][k] for p in parts]) for k in sorted(shared)}
        return obs, reward, terminated, truncated, info

    def set_attr(self, name: str, values: Sequence) -> None:
        self._send("set_attr", [(name, list(values[a:b])) for a, b in self.bounds])

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for conn, proc in zip(self._conns, self._procs):
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)
            conn.close()
        self._conns, self._procs = [], []


class _Duplex:
    """One worker's two pipe ends as one connection."""

    def __init__(self, reader: Connection, writer: Connection):
        self.reader, self.writer = reader, writer

    def recv(self):
        return self.reader.recv()

    def send(self, obj) -> None:
        self.writer.send(obj)

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


#: a worker process's program, ``python -c WORKER_COMMAND READ_FD WRITE_FD`` (not ``-m`` of this module, which the
#: package has already imported by the time runpy would run it again as ``__main__``)
WORKER_COMMAND = "import sys; from rlmaml.envs.process_vector import main; main(sys.argv[1:])"


def main(argv: Sequence[str]) -> None:
    """Entry of a worker process: ``python -c WORKER_COMMAND READ_FD WRITE_FD``."""
    read_fd, write_fd = (int(x) for x in argv)
    _worker(_Duplex(Connection(read_fd, writable=False), Connection(write_fd, readable=False)))


__all__ = ["ProcessVectorEnv", "chunk_bounds", "make_env", "registering_module"]

