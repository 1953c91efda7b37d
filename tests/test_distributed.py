"""sampler=ray on a real local Ray cluster that the fixture starts (3 CPUs: up to 3 workers of 1) and stops by its
handle.

The workers hold the episodes of their shards and answer the TRPO terms; the driver sums them in shard order.
``sampler=local num_workers=S`` does the same arithmetic in one process, so both must log the same numbers, bit
for bit, for 1, 2 and 3 workers (uneven shards included), on navigation and on the MuJoCo families.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import sys

import pytest

from rlmaml.cli import main

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'rlmaml[ray]')")
psutil = pytest.importorskip("psutil")

TINY = {
    "navigation": ["navigation", "num_batches=5", "meta_batch_size=5", "episodes_per_task=3", "horizon=10",
                   "hidden_sizes=[8]", "fisher_tasks=2"],
    "halfcheetah-vel": ["halfcheetah-vel", "num_batches=5", "meta_batch_size=3", "episodes_per_task=2", "horizon=8",
                        "hidden_sizes=[8]", "fisher_tasks=0"],
    "ant-vel": ["ant-vel", "num_batches=5", "meta_batch_size=3", "episodes_per_task=2", "horizon=8",
                "hidden_sizes=[8]", "fisher_tasks=2"],
}


@pytest.fixture(scope="module")
def cluster():
    from rlmaml.distributed.ray_sampler import start_local_cluster, stop_local_cluster

    start_local_cluster(3)
    yield ray
    stop_local_cluster()


def _metrics(run) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if not k.endswith("seconds")}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def _train(out, preset, *extra) -> list[dict]:
    assert main(["train", *TINY[preset], "num_threads=1", *extra, "--out", str(out), "--no-progress"]) == 0
    return _metrics(out)


@pytest.mark.parametrize("preset", list(TINY))
def test_ray_workers_log_the_local_shards_numbers_bit_for_bit(cluster, tmp_path, preset):
    workers = [1, 2, 3] if preset == "navigation" else [2, 3]
    for n in workers:
        local = _train(tmp_path / f"local-{n}", preset, f"num_workers={n}")
        remote = _train(tmp_path / f"ray-{n}", preset, "sampler=ray", f"num_workers={n}")
        assert remote == local, f"{preset}, {n} workers"
        assert len(remote) == 5 and all(r["step_accepted"] for r in remote)
    assert _metrics(tmp_path / f"local-{workers[-1]}")[0]["env_steps"] > 0


@pytest.mark.parametrize("preset", ["navigation", "halfcheetah-vel"])
def test_tasks_split_into_parts_on_ray_workers_log_the_local_shards_numbers_bit_for_bit(cluster, tmp_path, preset):
    """task_split=3 (navigation; 2 for the cheetah): more workers than tasks would allow, every task's parts on
    several workers and summed per task across them."""
    q, n = (3, 3) if preset == "navigation" else (2, 3)
    extra = [f"task_split={q}", "episodes_per_task=6" if preset == "navigation" else "episodes_per_task=2",
             "meta_batch_size=2", f"num_workers={n}"]
    local = _train(tmp_path / "local", preset, *extra)
    remote = _train(tmp_path / "ray", preset, "sampler=ray", *extra)
    # equality is the claim; whether every TRPO step is accepted depends on the CPU's rounding (not all are on
    # AMX Xeons for the cheetah), so at least one must be
    assert remote == local and len(remote) == 5 and any(r["step_accepted"] for r in remote)


@pytest.mark.skipif(importlib.util.find_spec("metaworld") is None, reason="metaworld is not installed")
@pytest.mark.parametrize("task", ["reach-v3", "assembly-v3"])
def test_meta_world_on_ray_workers_logs_the_local_shards_numbers_and_success_rates(cluster, tmp_path, task):
    """ML1 on 2 workers, each sampling its own tasks on its own engine (reach: the native one; assembly: the
    generic path): the same returns, success rates and steps as the local shards, bit for bit."""
    args = [f"env=metaworld/ML1-{task}", "num_batches=2", "meta_batch_size=2", "episodes_per_task=2", "horizon=10",
            "hidden_sizes=[8]", "num_threads=1", "num_workers=2", "--no-progress"]
    assert main(["train", *args, "--out", str(tmp_path / "local")]) == 0
    assert main(["train", *args, "sampler=ray", "--out", str(tmp_path / "ray")]) == 0
    local, remote = _metrics(tmp_path / "local"), _metrics(tmp_path / "ray")
    assert remote == local and len(local) == 2 and {"success_before", "success_after"} <= set(local[0])


def test_one_ray_worker_is_the_plain_local_run(cluster, tmp_path):
    plain = _train(tmp_path / "plain", "navigation")
    assert _train(tmp_path / "ray", "navigation", "sampler=ray", "num_workers=1") == plain


def test_evaluation_on_ray_workers_equals_the_local_shards(cluster, tmp_path):
    _train(tmp_path / "run", "navigation", "num_batches=2", "num_workers=2")
    results = {}
    for sampler in ("local", "ray"):
        out = tmp_path / f"eval-{sampler}.json"
        config = (tmp_path / "run" / "config.yaml").read_text()
        (tmp_path / "run" / "config.yaml").write_text(config.replace("sampler: local", f"sampler: {sampler}")
                                                       .replace("sampler: ray", f"sampler: {sampler}"))
        assert main(["evaluate", str(tmp_path / "run"), "--num-tasks", "4", "--grad-steps", "2", "--seed", "3",
                     "--out", str(out)]) == 0
        results[sampler] = json.loads(out.read_text())["methods"]
    for method in results["local"].values():
        method.pop("run_dir")
    for method in results["ray"].values():
        method.pop("run_dir")
    assert results["ray"] == results["local"]


def test_more_workers_than_the_cluster_has_cpus_is_a_one_line_error(cluster, tmp_path, capsys):
    assert main(["train", *TINY["navigation"], "sampler=ray", "num_workers=4", "--out", str(tmp_path / "x")]) == 2
    assert "num_workers=4 × worker_cpus=1.0 needs 4 CPUs but the Ray cluster has 3" in capsys.readouterr().err


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_driver_joins_a_cluster_started_with_ray_start_and_its_token(cluster, tmp_path):
    """The several-machines path on one machine: ``ray start --head`` with token authentication (a token of the
    test's own, not the user's ~/.ray/auth_token), a run with ``ray_address=host:port`` and that token logs the
    local shards' numbers bit for bit, and a driver with another token cannot join: a one-line error naming the
    address. The head is stopped by its pid; the test process is in the private cluster's loopback-only network
    namespace (the ``cluster`` fixture), so the head listens on loopback only."""
    import secrets
    import subprocess
    import time

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0",
               OMP_NUM_THREADS="1")
    head = subprocess.Popen(["ray", "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                             "--include-dashboard=false", "--disable-usage-stats", "--block"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = []
    try:
        deadline = time.time() + 60
        while not [c for c in psutil.net_connections(kind="inet")
                   if c.status == psutil.CONN_LISTEN and c.laddr.port == port]:
            assert head.poll() is None and time.time() < deadline, "ray start --head did not come up"
            time.sleep(0.2)
        started = psutil.Process(head.pid).children(recursive=True)
        args = [*TINY["navigation"], "num_threads=1", "num_workers=2", "--no-progress"]
        joined = subprocess.run([sys.executable, "-m", "rlmaml", "train", *args, "sampler=ray",
                                 f"ray_address=127.0.0.1:{port}", "--out", str(tmp_path / "joined")],
                                env=env, capture_output=True, text=True, timeout=300, check=False)
        assert joined.returncode == 0, joined.stderr[-2000:]
        local = _train(tmp_path / "local", "navigation", "num_workers=2")
        assert _metrics(tmp_path / "joined") == local and len(local) == 5
        stranger = subprocess.run([sys.executable, "-m", "rlmaml", "train", *args, "sampler=ray",
                                   f"ray_address=127.0.0.1:{port}", "--out", str(tmp_path / "stranger")],
                                  env={**env, "RAY_AUTH_TOKEN": secrets.token_hex(32)}, capture_output=True, text=True,
                                  timeout=300, check=False)
        last = stranger.stderr.strip().splitlines()[-1]
        assert stranger.returncode == 2 and "Traceback" not in stranger.stderr, stranger.stderr[-2000:]
        assert f"cannot join the Ray cluster at '127.0.0.1:{port}'" in last and "RAY_AUTH_TOKEN" in last
    finally:
        head.terminate()
        head.wait(timeout=90)
        for process in started:  # what the head started ends with it; anything left is ended by its pid
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                process.kill()
    assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_the_driver_and_the_workers_run_the_same_versions_and_physics(cluster):
    from rlmaml.config import build_config
    from rlmaml.distributed.ray_sampler import _versions, check_rollout
    from rlmaml.rl.config import TrainConfig

    assert ray.get(ray.remote(lambda: _versions()).remote()) == _versions()
    cheetah = build_config(TrainConfig, {"env": "rlmaml/HalfCheetahVel-v0", "frame_skip": 1})
    assert ray.get(ray.remote(check_rollout).remote(cheetah)) == check_rollout(cheetah)
    other = build_config(TrainConfig, {"env": "rlmaml/HalfCheetahVel-v0", "frame_skip": 2})
    assert check_rollout(other) != check_rollout(cheetah)  # the fingerprint sees a change of physics


def test_adam_with_ray_and_a_missing_ray_are_one_line_errors(tmp_path, capsys, monkeypatch):
    assert main(["train", "navigation", "sampler=ray", "meta_optimizer=adam", "--out", str(tmp_path / "a")]) == 2
    assert "'meta_optimizer': 'adam' is not allowed; must be trpo with sampler=ray" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)
    from rlmaml.distributed.ray_sampler import require_ray
    from rlmaml.errors import UserError

    with pytest.raises(UserError, match=r"pip install 'rlmaml\[ray\]'"):
        require_ray()


def test_the_private_cluster_has_no_dashboard(cluster):
    """The cluster's processes run (the walk sees its GCS server), and the dashboard's head process, which Ray
    starts in any case, serves no web frontend."""
    commands = [" ".join(p.cmdline()) for p in psutil.Process().children(recursive=True)]
    assert any("gcs_server" in c for c in commands)
    assert not [c for c in commands if "dashboard/dashboard.py" in c and "--disable-frontend" not in c]


def _listening_addresses() -> list[tuple[str, int, str]]:
    mine = {p.pid: p.name() for p in psutil.Process().children(recursive=True)}
    return [(c.laddr.ip, c.laddr.port, mine[c.pid]) for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in mine]


def test_the_private_cluster_listens_on_loopback_only(cluster):
    """Every port of the cluster (GCS, raylet, object manager, workers, the driver's own) is on 127.0.0.0/8, and
    its network namespace has no interface but loopback (Ray alone would bind every interface)."""
    from rlmaml.distributed.netns import only_loopback

    listening = _listening_addresses()
    assert {name for _, _, name in listening} >= {"gcs_server", "raylet"}  # the walk sees the cluster's servers
    outside = [a for a in listening if not a[0].removeprefix("::ffff:").startswith("127.")]
    assert not outside, f"listening beyond loopback: {outside}"
    assert only_loopback()


def _disturbed(monkeypatch, cls, method: str, at_call: int, disturb):
    """Patch ``cls.method`` so that its ``at_call``-th call first runs ``disturb(self)``."""
    original, calls = getattr(cls, method), {"n": 0}

    def patched(self, *args):
        calls["n"] += 1
        if calls["n"] == at_call:
            disturb(self)
        return original(self, *args)

    monkeypatch.setattr(cls, method, patched)
    return calls


def test_a_worker_killed_mid_meta_update_is_replaced_and_the_run_equals_an_undisturbed_one(cluster, tmp_path,
                                                                                            monkeypatch, caplog):
    from rlmaml.distributed.ray_sampler import RayTerms

    calm = _train(tmp_path / "calm", "navigation", "num_batches=3", "sampler=ray", "num_workers=2")
    # the 13th Fisher-vector product is in the second meta-batch's conjugate gradient (10 per step)
    calls = _disturbed(monkeypatch, RayTerms, "fisher_vector_product", 13,
                       lambda terms: os.kill(ray.get(terms.workers[1].pid.remote()), signal.SIGKILL))
    with caplog.at_level(logging.WARNING, logger="rlmaml.rl.trainer"):
        killed = _train(tmp_path / "killed", "navigation", "num_batches=3", "sampler=ray", "num_workers=2")
    assert calls["n"] > 13 and killed == calm
    assert any("meta-batch 1: a Ray worker died during trpo_fisher_vector_product" in r.message and
               "redoing it from the same seeds on new workers" in r.message for r in caplog.records)


def test_a_hung_worker_times_out_is_replaced_and_the_run_equals_an_undisturbed_one(cluster, tmp_path, monkeypatch,
                                                                                 caplog):
    from rlmaml.distributed.ray_sampler import RaySampler

    calm = _train(tmp_path / "calm", "navigation", "num_batches=2", "sampler=ray", "num_workers=2")
    stopped = []

    def hang(sampler):
        pid = ray.get(sampler.workers[0].pid.remote())
        os.kill(pid, signal.SIGSTOP)  # alive but silent, as a worker stuck in a system call
        stopped.append(pid)

    _disturbed(monkeypatch, RaySampler, "sample", 2, hang)
    with caplog.at_level(logging.WARNING, logger="rlmaml.rl.trainer"):
        hung = _train(tmp_path / "hung", "navigation", "num_batches=2", "sampler=ray", "num_workers=2",
                      "worker_timeout=3")
    assert stopped and hung == calm
    assert not psutil.pid_exists(stopped[0]) or psutil.Process(stopped[0]).status() == psutil.STATUS_ZOMBIE
    assert any("a Ray worker gave no answer to sampling within worker_timeout=3 s" in r.message for r in caplog.records)


def test_bench_distributed_prints_one_json_with_every_engine(cluster, capsys):
    assert main(["bench", "distributed", "--preset", "navigation", "--workers", "1", "2", "--batches", "1",
                 "--cores", "2", "meta_batch_size=4", "episodes_per_task=2", "horizon=8", "hidden_sizes=[8]"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["engines"]) == {"local", "ray-1", "ray-2"}
    for name in ("ray-1", "ray-2"):
        engine = result["engines"][name]
        assert engine["overhead"] == engine["total_seconds"] / result["engines"]["local"]["total_seconds"]
        assert engine["round_trips_per_step"] >= 2 + 10  # setup, 10 CG products, at least one line-search trial
        assert engine["bytes_received"] > 0
    # θ goes to every worker: twice the workers, about twice the bytes sent
    assert result["engines"]["ray-2"]["bytes_sent"] > 1.5 * result["engines"]["ray-1"]["bytes_sent"]


def test_sigterm_stops_a_ray_run_with_a_checkpoint_that_resumes_exactly(tmp_path):
    """ray.init replaces the driver's SIGTERM handler; the command's own comes back, so a SIGTERM checkpoints the
    completed meta-batches and --resume ends where an undisturbed run ends."""
    import subprocess
    import time

    args = [sys.executable, "-m", "rlmaml", "train", *TINY["navigation"], "num_batches=40", "sampler=ray",
            "num_workers=2", "checkpoint_every=1000", "num_threads=1", "--no-progress"]
    run = tmp_path / "stopped"
    process = subprocess.Popen([*args, "--out", str(run)], stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "MUJOCO_GL": "egl"})
    deadline = time.time() + 240
    while time.time() < deadline and not ((run / "metrics.jsonl").is_file()
                                           and len((run / "metrics.jsonl").read_text().splitlines()) >= 2):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 130, process.stderr.read()
    logged = len((run / "metrics.jsonl").read_text().splitlines())
    from rlmaml.checkpoint import load_checkpoint

    assert 2 <= logged < 40 and load_checkpoint(run)["batch"] == logged


def test_the_scaling_model_is_built_from_measured_shard_costs(cluster, capsys):
    from rlmaml.bench.scaling import needed_shards, predict

    def cost(q, n, m):  # seconds of a shard of n parts (m in the Fisher) of tasks cut into q
        return {"sample": 0.1 + n / q, "setup": 0.2 * n / q, "fvp": 0.01 + 0.05 * m / q, "search": 0.02 * n / q,
                "rounds": {"sample": 8, "setup": 5, "fvp": 3, "search": 1}, "bytes": {k: 100 for k in
                                                                                  ("sample", "setup", "fvp", "search")}}

    keys = needed_shards(4, 2, [1, 2], (1, 2, 4, 8))
    assert keys == {(1, 4, 2), (1, 2, 1), (1, 1, 1), (2, 4, 2), (2, 2, 1), (2, 1, 1)}  # W = 1: whole tasks only
    model = predict({k: cost(*k) for k in keys}, {"tasks": 4, "fisher_tasks": 2, "splits": [1, 2]}, cg_iters=10,
                    trials=2, latency=0.001, workers=(1, 2, 4, 8))
    # W=1: whole tasks (n=4, m=2), 2 + K + J = 14 round trips: 4.1 + 0.8 + 10·0.11 + 2·0.08 + 0.014
    assert model[1]["task_split"] == 1 and model[1]["seconds"] == pytest.approx(6.174)
    # W=8 needs halves (n=1, m=1 of q=2), joined: 8 + 5 + 10·3 + 2·1 more round trips
    assert model[8] == pytest.approx({"task_split": 2, "shard_parts": 1, "fisher_parts": 1, "round_trips": 59,
                                      "seconds": 0.6 + 0.1 + 10 * 0.035 + 2 * 0.01 + 0.059,
                                      "shares_bytes": (100 + 100 + 10 * 100 + 2 * 100) * 8,
                                      "efficiency": 6.174 / (8 * (0.6 + 0.1 + 0.35 + 0.02 + 0.059))})
    assert main(["bench", "scaling", "--preset", "navigation", "--splits", "1", "2", "--workers", "1", "2", "8",
                 "--repeats", "1", "meta_batch_size=4", "episodes_per_task=2", "horizon=8", "hidden_sizes=[8]",
                 "fisher_tasks=2"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["model"]) == {"1", "2", "8"} and result["round_trip_seconds"] > 0
    assert result["model"]["1"]["efficiency"] == 1.0 and result["model"]["8"]["task_split"] == 2
    halves = result["shard_seconds"]["q=2 n=1 m=1"]
    # sampling: 3 sums per phase (baseline, mean, variance) and the inner gradient's; setup: the inner gradient
    # (the Fisher's chain reuses it) and ∇_θ'S; F v: H v and F'u (the last sum of Jᵀ folds into the answer)
    assert halves["rounds"]["sample"] == 2 * 3 + 1 and halves["rounds"]["setup"] == 2 and halves["rounds"]["fvp"] == 2 and halves["bytes"]["fvp"] > 0
