"""The Ray sampler: one actor per shard of the meta-batch, the TRPO terms summed on the driver.

Ray is imported only here, when ``sampler=ray`` is used; without it a one-line error names the extra.
``ray_address=local`` starts a private cluster for the run with no dashboard (:func:`start_local_cluster`);
``auto`` or ``host:port`` joins a running one (docs/distributed.md).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..config import build_config, config_to_dict
from ..errors import UserError
from ..rl.algos.trpo import SummedTerms
from ..rl.episodes import Episodes, EpisodeStats
from ..rl.parts import lockstep, run_alone, step
from ..rl.policies import Policy, action_scale_of, build_policy
from ..rl.sampling import LocalSampler, MetaBatch, SamplerFault, Shard, layout, task_split

STARTUP_SECONDS = 300.0  # the longest a new worker may take to start and answer its first call
_STARTED_HERE = False  # whether this process started the Ray cluster it uses (and so stops it at exit)


def require_ray():
    """The ``ray`` module, or a one-line error that names the extra to install."""
    try:
        import ray
    except ImportError:
        raise UserError("sampler=ray needs Ray: pip install 'rlmaml[ray]'") from None
    return ray


def start_local_cluster(num_cpus: int, network: str = "private") -> None:
    """A private Ray cluster on this machine for this process (``ray_address=local``): no dashboard frontend,
    stopped when the process exits (by its handle, never by name). With ``network="private"`` the process first
    enters a network namespace of its own (:mod:`rlmaml.distributed.netns`), so that the cluster listens on
    loopback only; ``"host"`` leaves Ray to listen on every interface, as it does by default."""
    global _STARTED_HERE
    ray = require_ray()
    if ray.is_initialized():
        return
    if network == "private":
        from .netns import enter_private_network

        try:
            enter_private_network()
        except OSError as exc:
            raise UserError(f"ray_address=local keeps its Ray cluster on loopback in a network namespace of its own, "
                            f"which this process cannot enter ({exc.strerror}; it needs root); start a cluster and "
                            "join it with ray_address=auto, or let Ray listen on every interface: ray_network=host"
                            ) from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    _STARTED_HERE = True
    atexit.register(stop_local_cluster)


def stop_local_cluster() -> None:
    """Stop the cluster :func:`start_local_cluster` started (nothing else)."""
    global _STARTED_HERE
    if _STARTED_HERE:
        import ray

        ray.shutdown()
        _STARTED_HERE = False


def _connect(cfg) -> None:
    """Start or join the run's cluster. ``ray.init`` replaces the driver's SIGTERM handler with one that exits
    at once; the command's own (:func:`rlmaml.run.stop_on_signals`: checkpoint, then stop) is put back."""
    import signal
    import threading

    ray = require_ray()
    if ray.is_initialized():
        return
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    if cfg.ray_address == "local":
        start_local_cluster(max(1, round(cfg.num_workers * cfg.worker_cpus)), cfg.ray_network)
    else:
        try:
            ray.init(address=cfg.ray_address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"config key 'ray_address': cannot join the Ray cluster at {cfg.ray_address!r} ({first}); "
                            "allowed: local, auto or host:port of a running cluster (`ray start --head`) whose "
                            "token this machine has (~/.ray/auth_token or RAY_AUTH_TOKEN)") from None
    if main and handler is not None:
        signal.signal(signal.SIGTERM, handler)


def check_rollout(cfg) -> str:
    """A fingerprint of this machine's physics for ``cfg``'s env: the observations of one copy of a fixed task from a
    fixed reset under zero actions for a few steps (SHA-256 of their bytes). Nodes whose wheels or physics differ
    give different fingerprints."""
    import hashlib

    from ..rl.components import make_env

    env = make_env(cfg, 1, 1, oracle=False)
    env.set_tasks(env.sample_tasks(1, seed=0))
    observations = [env.reset(seed=0)]
    zeros = torch.zeros(1, env.action_dim)
    for _ in range(5):
        observations.append(env.step(zeros)[0])
    env.close()
    return hashlib.sha256(torch.cat(observations).numpy().tobytes()).hexdigest()


def _versions() -> dict[str, str]:
    import mujoco
    import numpy

    return {"torch": torch.__version__, "numpy": numpy.__version__, "mujoco": mujoco.__version__}


class ShardWorker:
    """One shard of every meta-batch (a Ray actor): its engine, its copy of the policy, its episodes and their
    adaptation, and its share of the TRPO terms. Each question is a shard program (:mod:`rlmaml.rl.parts`): a
    ``*_start`` call begins it and :meth:`advance` sends it the per-task totals the driver summed; both answer
    ``("shares", {task: …})`` while it needs more, then ``("done", value)``."""

    def __init__(self, config: dict, spaces: dict, shard: Shard, options: dict, threads: int):
        from ..rl.config import TrainConfig
        from ..runtime import cpu_allocator

        cpu_allocator()  # the malloc policy the driver's commands use (rlmaml.runtime): large tensors reuse pages
        torch.set_num_threads(max(1, threads))
        self.cfg = build_config(TrainConfig, config)
        cfg = self.cfg
        self.policy = build_policy(spaces["obs_dim"], spaces["act_dim"], cfg.hidden_sizes, cfg.nonlinearity,
                                   cfg.init_log_std, action_scale=spaces["action_scale"])
        self.shard = shard
        options = dict(options)
        episodes = options.pop("episodes_per_task", None) or cfg.episodes_per_task
        self.sampler = LocalSampler.from_config(cfg, self.policy, "cpu", shard=shard,
                                                episodes_per_task=episodes // task_split(cfg, episodes), **options)
        self.batch: MetaBatch | None = None
        self.terms = None
        self._program = self._finish = None

    def pid(self) -> int:
        return os.getpid()

    def start_up(self) -> dict:
        """What the driver checks and keeps of a new worker: its versions, the fingerprint of its physics
        (:func:`check_rollout`), and (host, pid, process start time), which let the driver end this process if it
        stops answering."""
        import socket

        import psutil

        return {"versions": _versions(), "physics": check_rollout(self.cfg),
                "identity": (socket.gethostname(), os.getpid(), psutil.Process().create_time())}

    def advance(self, totals):
        """Send the running program the totals of its last shares; its next shares, or its answer."""
        with torch.enable_grad():
            kind, value = step(self._program, totals)
        if kind == "done":
            self._program = None
            value = self._finish(value)
        return kind, value

    def _start(self, program, finish=lambda value: value):
        """Begin ``program``; when no task of the layout has parts on another shard, every total is this shard's
        own share, and the program runs to its answer here in one call."""
        if not self.shard.joined:
            with torch.enable_grad():
                return "done", finish(run_alone(program))
        self._program, self._finish = program, finish
        return self.advance(None)

    def sample_start(self, theta: Mapping[str, Tensor], tasks: list[dict], seeds: list[int], step_sizes: list[float],
                     full_episodes: bool):
        """Begin sampling this shard's rows (``tasks``: the task of each); the answer is each phase's episodes,
        or their statistics."""
        self.terms = None

        def finish(batch):
            self.batch = batch
            return list(batch.episodes) if full_episodes else [EpisodeStats.of(e) for e in batch.episodes]

        return self._start(self.sampler.sample_program(theta, tasks, seeds, step_sizes), finish)

    def trpo_start(self, method: str, args: tuple, settings: dict):
        """Begin this shard's share of ``method`` (setup, fisher_vector_product, surrogate_and_kl) of
        :class:`~rlmaml.rl.algos.trpo.ShardTerms`; setup builds the terms from the sampled batch."""
        if method == "setup":
            from ..plugins import lookup
            from ..rl.algos.trpo import ShardTerms, fisher_parts
            from ..rl.objectives import INNER_LOSSES, MetaObjective

            objective = MetaObjective(self.policy, settings["fast_lr"], settings["first_order"],
                                      lookup(INNER_LOSSES, self.cfg.inner_loss, "inner_loss"))
            self.terms = ShardTerms(objective, self.batch.train_batches, self.batch.valid,
                                    num_tasks=settings["num_tasks"], fisher_tasks=settings["fisher_tasks"],
                                    fisher_count=fisher_parts(self.shard, settings["fisher_tasks"],
                                                              settings["num_tasks"]),
                                    parts=self.shard.parts)
        return self._start(getattr(self.terms, f"{method}_program")(*args))


def run_lockstep(workers: Sequence, first: list, timeout: float, what: str, traffic: dict | None = None) -> tuple[list, int]:
    """Run a shard program on every worker side by side (:func:`rlmaml.rl.parts.lockstep`): ``first`` the refs of
    its start calls, every round's totals summed on the driver and sent back by :meth:`ShardWorker.advance`; their
    answers and the number of round trips. Bytes of shares, totals and answers are added to ``traffic``."""
    def count(shares, totals):
        traffic["received"] += nbytes(shares)
        traffic["sent"] += nbytes(totals)

    values, rounds = lockstep(_gather(first, timeout, what),
                              lambda totals: _gather([w.advance.remote(t) for w, t in zip(workers, totals)],
                                                     timeout, what),
                              what=f"the workers' programs for {what}", on_round=None if traffic is None else count)
    if traffic is not None:
        traffic["received"] += nbytes(values)
    return values, rounds


class RayTerms(SummedTerms):
    """The TRPO terms of a meta-batch whose shards live on workers: each question goes to every worker at once
    (:meth:`ShardWorker.trpo_start`, then :meth:`ShardWorker.advance` until every worker answers), with θ and
    vectors on the CPU; ``round_trips`` counts every round of calls."""

    def __init__(self, workers: Sequence, settings: dict):
        self.workers, self.settings = list(workers), settings
        self.round_trips = 0
        self.traffic = {"sent": 0, "received": 0}  # bytes of the tensors and numbers of every call and answer

    def shares(self, method: str, *args) -> list:
        args = tuple(_cpu(a) if isinstance(a, Mapping) else a.detach().cpu() for a in args)
        self.traffic["sent"] += len(self.workers) * nbytes(args)
        answers, rounds = run_lockstep(self.workers, [w.trpo_start.remote(method, args, self.settings)
                                                      for w in self.workers],
                                       self.settings["timeout"], f"trpo_{method}", self.traffic)
        self.round_trips += rounds
        return answers


def _gather(refs: list, timeout: float, what: str) -> list:
    """``ray.get(refs)`` within ``timeout`` seconds; a dead, unreachable or hung worker is a :class:`SamplerFault`."""
    import ray

    try:
        return ray.get(refs, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise SamplerFault(f"a Ray worker gave no answer to {what} within worker_timeout={timeout:g} s") from None
    except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SamplerFault(f"a Ray worker died during {what}: {first}") from None


def nbytes(obj) -> int:
    """The bytes of the tensors and numbers in ``obj`` (nested dicts, lists, tuples, dataclasses of tensors)."""
    if isinstance(obj, Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (int, float, bool)):
        return 8
    if isinstance(obj, Mapping):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(nbytes(v) for v in obj)
    if hasattr(obj, "__dataclass_fields__"):
        return sum(nbytes(getattr(obj, f)) for f in obj.__dataclass_fields__)
    return 0


def _cpu(params: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {n: p.detach().cpu() for n, p in params.items()}


@dataclass
class RemoteMetaBatch:
    """A meta-batch whose episodes stay on the workers: per phase the episodes' statistics (or, when recorded, the
    episodes), and the TRPO terms of its shards."""

    tasks: list[dict]
    episodes: list[Any]
    workers: list = field(default_factory=list)
    shards: list[Shard] = field(default_factory=list)
    timeout: float = 600.0  # worker_timeout of the sampler that made it

    @property
    def num_steps(self) -> int:
        return sum(e.num_steps for e in self.episodes)

    def trpo_terms(self, learner) -> RayTerms:
        return RayTerms(self.workers, {"fast_lr": learner.objective.fast_lr, "first_order": learner.objective.first_order,
                                       "fisher_tasks": learner.fisher_tasks, "num_tasks": len(self.tasks),
                                       "timeout": self.timeout})

    @property
    def train_batches(self):
        raise UserError("sampler=ray keeps the episodes on its workers; its meta-optimizer must take the "
                        "task-parallel terms (meta_optimizer=trpo)")

    valid = train_batches


class RaySampler:
    """``sampler=ray``: the meta-batch's tasks in ``num_workers`` shards, one Ray actor each (``worker_cpus`` CPUs)."""

    def __init__(self, cfg, policy: Policy, device: str | torch.device = "cpu", *, num_tasks: int | None = None,
                 episodes_per_task: int | None = None, oracle: bool | None = None, **env_options):
        ray = require_ray()
        _connect(cfg)
        num_tasks = num_tasks or cfg.meta_batch_size
        self.record = bool(env_options.get("record_state"))
        options = {"episodes_per_task": episodes_per_task, "oracle": oracle, **env_options}
        spaces = {"obs_dim": policy.obs_dim, "act_dim": policy.out_dim, "action_scale": action_scale_of(policy)}
        self.timeout = float(cfg.worker_timeout)
        self.traffic = {"sent": 0, "received": 0}  # bytes of the tensors and numbers of sampling calls and answers
        self.shards = layout(cfg, num_tasks, cfg.num_workers, episodes_per_task)
        available = ray.cluster_resources().get("CPU", 0)
        if len(self.shards) * cfg.worker_cpus > available:  # the actors would wait for CPUs forever
            raise UserError(f"num_workers={len(self.shards)} × worker_cpus={cfg.worker_cpus} needs "
                            f"{len(self.shards) * cfg.worker_cpus:g} CPUs but the Ray cluster has {available:g}")
        actor = ray.remote(num_cpus=cfg.worker_cpus)(ShardWorker)
        threads = max(1, int(cfg.worker_cpus))
        self._start_worker = lambda shard: actor.remote(config_to_dict(cfg), spaces, shard, options, threads)
        self.env_id, self._check = cfg.env, check_rollout(cfg)
        self.workers = [self._start_worker(shard) for shard in self.shards]
        self._start_up()

    def _start_up(self) -> None:
        """Ask every new worker for :meth:`ShardWorker.start_up`; a worker whose versions or physics differ from the
        driver's is a one-line error."""
        here = _versions()
        timeout = max(self.timeout, STARTUP_SECONDS)  # a new process imports torch and builds its engine first
        answers = _gather([w.start_up.remote() for w in self.workers], timeout, "the start-up check")
        self._identities = [a["identity"] for a in answers]
        for shard, answer in zip(self.shards, answers):
            where = f"the worker of {shard.describe()}"
            if answer["versions"] != here:
                raise UserError(f"{where} runs {answer['versions']}, the driver {here}; install the same versions on "
                                "every node")
            if answer["physics"] != self._check:
                raise UserError(f"{where} steps {self.env_id} differently from the driver (its check rollout "
                                "differs): give every node the same wheels")

    def recover(self) -> None:
        """Replace every worker (a lost one and the others, whose episodes belong to the failed meta-batch)."""
        self.close()
        self.workers = [self._start_worker(shard) for shard in self.shards]
        self._start_up()

    @classmethod
    def from_config(cls, cfg, policy: Policy, device: str | torch.device = "cpu", **options) -> RaySampler:
        return cls(cfg, policy, device, **options)

    def sample(self, params: Mapping[str, Tensor], tasks: Sequence[dict], seeds: Sequence[int],
               step_sizes: Sequence[float]) -> RemoteMetaBatch:
        import ray

        tasks = list(tasks)
        theta_cpu = _cpu(params)
        theta = ray.put(theta_cpu)
        self.traffic["sent"] += len(self.workers) * (nbytes(theta_cpu) + nbytes(list(seeds)) + nbytes(list(step_sizes)))
        parts, _ = run_lockstep(self.workers, [w.sample_start.remote(theta, [tasks[t] for t, _ in s.parts], list(seeds),
                                                                     list(step_sizes), self.record)
                                               for w, s in zip(self.workers, self.shards)],
                                self.timeout, "sampling", self.traffic)
        join = Episodes.concatenate if self.record else EpisodeStats.concatenate
        shard_batches = [MetaBatch([tasks[t] for t, _ in s.parts], part, [], [], shard=s)
                         for s, part in zip(self.shards, parts)]
        episodes = MetaBatch.join(shard_batches, join).episodes
        return RemoteMetaBatch(tasks, episodes, list(self.workers), list(self.shards), self.timeout)

    def close(self) -> None:
        """Stop this sampler's workers: by their handles, and a process on this machine that outlives that (a hung
        worker cannot answer Ray's request to exit) by its pid, checked against its start time."""
        import socket

        import psutil
        import ray

        for worker in self.workers:
            ray.kill(worker)
        for host, pid, started in getattr(self, "_identities", []):
            if host != socket.gethostname():
                continue
            try:
                process = psutil.Process(pid)
                if abs(process.create_time() - started) < 1e-3:
                    process.kill()
                    process.wait(timeout=10)
            except (psutil.NoSuchProcess, psutil.TimeoutExpired):
                pass
        self.workers, self._identities = [], []
