"""Supervised few-shot mode: Omniglot loading (npz, zip, folder), task distributions, the meta-update
(task-batched vs per-task, NaN handling), and a tiny end-to-end run with exact resume and evaluation."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from rlmaml.cli import main as cli_main
from rlmaml.config import ConfigError, load_config
from rlmaml.errors import UserError
from rlmaml.supervised import omniglot
from rlmaml.supervised.experiment import SupervisedConfig, TaskSource, make_learner, meta_update
from rlmaml.supervised.tasks import OmniglotTasks, SinusoidTasks


def main(argv: list[str]) -> int:
    """``rlmaml supervised ARGV``."""
    return cli_main(["supervised", *argv])

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RLMAML_DATA") or REPO.parent / "shared" / "data" / "omniglot")
NPZ = DATA / "npz" / "images_background.npz"
SMALL_ZIP = DATA / "images_background_small1.zip"
needs_data = pytest.mark.skipif(not (NPZ.is_file() and SMALL_ZIP.is_file()),
                                reason=f"Omniglot data not found at {DATA} (set RLMAML_DATA)")


@pytest.fixture(scope="module")
def background():
    return np.load(NPZ)["images"]


# ---------------------------------------------------------------------------- data loading

@needs_data
def test_npz_sources_and_seeded_split():
    sources = omniglot.find_sources(DATA)
    assert [s.name for s in sources] == ["images_background.npz", "images_evaluation.npz"]
    headers = []
    for source in sources:  # shapes from the .npy headers, without decompressing the arrays
        with zipfile.ZipFile(source) as z, z.open("images.npy") as f:
            np.lib.format.read_magic(f)
            headers.append(np.lib.format.read_array_header_1_0(f)[::2])
    assert headers == [((964, 20, 105, 105), np.dtype(bool)), ((659, 20, 105, 105), np.dtype(bool))]
    train, test = omniglot.split_characters(1623, 1200, seed=0)
    assert len(train) == 1200 and len(test) == 423 and not set(train) & set(test)
    assert np.array_equal(train, omniglot.split_characters(1623, 1200, seed=0)[0])
    assert not np.array_equal(train, omniglot.split_characters(1623, 1200, seed=1)[0])


@needs_data
def test_zip_matches_npz_after_resize(tmp_path, background):
    images = omniglot.load_omniglot(SMALL_ZIP, cache_dir=tmp_path)
    with zipfile.ZipFile(SMALL_ZIP) as z:
        ids = sorted({int(Path(n).name[:4]) for n in z.namelist() if n.endswith(".png")})
    assert images.shape == (136, 20, 28, 28) and images.dtype == np.uint8 and len(ids) == 136
    some = np.random.default_rng(0).choice(136, 25, replace=False)  # pixel-identical to the npz characters
    assert np.array_equal(images[some], omniglot._resize(background[np.array(ids)[some] - 1]))
    assert 5 < images.mean() < 60  # ink = 255 on a 0 background
    cached = list(tmp_path.glob("omniglot28-*.npy"))
    assert len(cached) == 1 and np.array_equal(np.load(cached[0]), images)


@needs_data
def test_extracted_folder_matches_npz(tmp_path, background):
    root = tmp_path / "omniglot"
    with zipfile.ZipFile(SMALL_ZIP) as z:
        names = [n for n in z.namelist() if "/Greek/" in n or "/Latin/" in n]
        z.extractall(root, names)
    images = omniglot.load_omniglot(root / "images_background_small1", cache_dir=tmp_path / "cache")
    # Greek 0394-0417 and Latin 0683-0708 (ids are contiguous per alphabet)
    ids = list(range(394, 418)) + list(range(683, 709))
    assert images.shape == (len(ids), 20, 28, 28)
    assert np.array_equal(images, omniglot._resize(background[np.array(ids) - 1]))


def test_missing_and_malformed_data_give_one_line_errors(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(UserError, match="does not exist") as err:
        omniglot.load_omniglot(missing, cache_dir=tmp_path)
    assert str(missing) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="no Omniglot data"):
        omniglot.load_omniglot(tmp_path, cache_dir=tmp_path / "c")
    bad_zip = tmp_path / "zipdir" / "images_background.zip"
    bad_zip.parent.mkdir()
    bad_zip.write_bytes(b"this is not a zip archive")
    with pytest.raises(UserError, match="not a valid zip") as err:
        omniglot.load_omniglot(bad_zip.parent, cache_dir=tmp_path / "c")
    assert str(bad_zip) in str(err.value) and "\n" not in str(err.value)
    bad_npz = tmp_path / "images.npz"
    np.savez(bad_npz, images=np.zeros((3, 20, 28, 28), np.uint8))
    with pytest.raises(UserError, match=r"expected bool \(C, 20, 105, 105\)"):
        omniglot.load_omniglot(bad_npz, cache_dir=tmp_path / "c")
    not_npz = tmp_path / "broken.npz"
    not_npz.write_bytes(b"garbage")
    with pytest.raises(UserError, match="not a readable .npz"):
        omniglot.load_omniglot(not_npz, cache_dir=tmp_path / "c")
    with pytest.raises(UserError, match="meta_train_characters"):
        omniglot.split_characters(136, 1200, 0)


# ---------------------------------------------------------------------------- task distributions

def test_sinusoid_task_distribution():
    tasks = SinusoidTasks()
    rng = np.random.default_rng(0)
    amplitude, phase = tasks.sample_parameters(rng, 20000)
    assert 0.1 <= amplitude.min() < 0.2 and 4.9 < amplitude.max() <= 5.0
    assert 0.0 <= phase.min() < 0.05 and math.pi - 0.05 < phase.max() <= math.pi
    xs, ys, xq, yq = tasks.sample(np.random.default_rng(1), 500, 10, 15)
    assert xs.shape == (500, 10, 1) and yq.shape == (500, 15, 1) and xs.dtype == torch.float32
    x = torch.cat([xs.flatten(), xq.flatten()])
    assert -5.0 <= float(x.min()) < -4.9 and 4.9 < float(x.max()) <= 5.0
    assert float(ys.abs().max()) <= 5.0
    # support and query come from the same sinusoid: recover A, φ from the support points
    rng = np.random.default_rng(2)
    a, p = tasks.sample_parameters(rng, 1)
    x, y = tasks.points(rng, a, p, 50)
    np.testing.assert_allclose(y[0, :, 0], a[0] * np.sin(x[0, :, 0] - p[0]))


def test_omniglot_tasks_classes_labels_and_rotations():
    images = np.random.default_rng(0).integers(0, 256, (12, 20, 28, 28), dtype=np.uint8)
    source = OmniglotTasks(images, np.arange(3, 12), rotations=True)
    assert source.num_classes == 36
    xs, ys, xq, yq = source.sample(np.random.default_rng(1), 50, 5, 1, 3)
    assert xs.shape == (50, 5, 1, 28, 28) and xq.shape == (50, 15, 1, 28, 28)
    assert torch.equal(ys[0], torch.arange(5)) and torch.equal(yq[0], torch.arange(5).repeat_interleave(3))
    # every support image is a (rotated) drawing of one character; find which rotation
    pool = torch.as_tensor(images[3:12], dtype=torch.float32) / 255
    found = set()
    for img in xs[:, :, 0].reshape(-1, 28, 28):
        match = [k for k in range(4) if (torch.rot90(pool, k, (-2, -1)) == img).all(-1).all(-1).any()]
        assert len(match) >= 1
        found.update(match)
    assert found == {0, 1, 2, 3}
    # a class keeps one character and one rotation across support and query
    rng = np.random.default_rng(3)
    xs, _, xq, _ = source.sample(rng, 20, 5, 1, 1)
    for s, q in zip(xs[:, :, 0].reshape(-1, 28, 28), xq[:, :, 0].reshape(-1, 28, 28)):
        k = next(k for k in range(4) if (torch.rot90(pool, k, (-2, -1)) == s).all(-1).all(-1).any())
        back = torch.rot90(q, -k, (-2, -1))
        assert (pool == back).all(-1).all(-1).any()


# ---------------------------------------------------------------------------- the meta-update

def _sinusoid_cfg(**kw):
    return load_config(SupervisedConfig, "sinusoid", {"num_shots": 5, "num_query": 5, "meta_batch_size": 4, **kw})


def test_task_batched_meta_gradient_equals_per_task_loop():
    torch.set_default_dtype(torch.float64)
    try:
        cfg = _sinusoid_cfg(inner_steps=2, inner_step_size=0.05)
        batch = TaskSource(cfg, "cpu", torch.float64).sample(np.random.default_rng(0), 4)
        torch.manual_seed(0)
        model, params, alpha, _opt = make_learner(cfg, "cpu")
        from rlmaml.supervised import experiment

        fast = experiment.adapt_to_support(model, params, alpha, batch, cfg, 2, False, batched=True)
        batched_loss = experiment.query_scores(model, fast, batch, cfg, True)[0].mean()
        g_batched = torch.autograd.grad(batched_loss, list(params.values()))
        fast = experiment.adapt_to_support(model, params, alpha, batch, cfg, 2, False, batched=False)
        loop_loss = torch.stack([torch.nn.functional.mse_loss(experiment.forward(model, fp, x), y)
                                 for fp, x, y in zip(fast, batch[2], batch[3])]).mean()
        g_loop = torch.autograd.grad(loop_loss, list(params.values()))
        torch.testing.assert_close(batched_loss, loop_loss, rtol=1e-12, atol=1e-12)
        for a, b in zip(g_batched, g_loop):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize("where", ["query", "support"])
@pytest.mark.parametrize("task", ["sinusoid", "conv"])
def test_nan_loss_skips_update_and_keeps_theta(where, task):
    if task == "sinusoid":
        cfg = _sinusoid_cfg()
        batch = TaskSource(cfg, "cpu").sample(np.random.default_rng(0), 4)
    else:
        images = np.random.default_rng(0).integers(0, 256, (10, 20, 28, 28), dtype=np.uint8)
        cfg = load_config(SupervisedConfig, "omniglot", {"num_filters": 8, "meta_batch_size": 3, "num_query": 2})
        batch = OmniglotTasks(images, np.arange(10), True).sample(np.random.default_rng(0), 3, 5, 1, 2)
        batch = (batch[0], batch[1], batch[2], batch[3])
    model, params, alpha, opt = make_learner(cfg, "cpu")
    xs, ys, xq, yq = (t.clone() for t in batch)
    if where == "query":
        (yq if task == "sinusoid" else xq)[1, 0] = float("nan")
    else:
        (ys if task == "sinusoid" else xs)[2, 0] = float("nan")
    before = {n: p.detach().clone() for n, p in params.items()}
    with pytest.warns(RuntimeWarning, match="skipping meta-update"):
        out = meta_update(model, params, alpha, opt, (xs, ys, xq, yq), cfg)
    assert out["skipped"] == 1 and math.isnan(out["query_loss"])
    assert all(torch.equal(before[n], p) for n, p in params.items())
    assert all(p.grad is None for p in params.values())
    out = meta_update(model, params, alpha, opt, batch, cfg)  # a clean batch still trains
    assert out["skipped"] == 0 and math.isfinite(out["query_loss"])
    assert any(not torch.equal(before[n], p) for n, p in params.items())


@pytest.mark.parametrize("options", [{"first_order": True}, {"meta_sgd": True}, {"algorithm": "reptile", "inner_steps": 3},
                                     {"meta_optimizer": "sgd"}])
def test_variants_update_parameters(options):
    cfg = _sinusoid_cfg(**options)
    batch = TaskSource(cfg, "cpu").sample(np.random.default_rng(0), 4)
    torch.manual_seed(0)
    model, params, alpha, opt = make_learner(cfg, "cpu")
    before = {n: p.detach().clone() for n, p in params.items()}
    alpha_before = {n: a.detach().clone() for n, a in alpha.items()} if isinstance(alpha, dict) else None
    out = meta_update(model, params, alpha, opt, batch, cfg)
    assert out["skipped"] == 0
    assert all(not torch.equal(before[n], p) for n, p in params.items())
    if alpha_before is not None:  # Meta-SGD learns α
        assert any(not torch.equal(alpha_before[n], a) for n, a in alpha.items())


def test_reptile_meta_gradient_is_theta_minus_mean_adapted():
    cfg = _sinusoid_cfg(algorithm="reptile", inner_steps=2, meta_optimizer="sgd", meta_lr=0.5)
    batch = TaskSource(cfg, "cpu").sample(np.random.default_rng(0), 4)
    model, params, alpha, opt = make_learner(cfg, "cpu")
    theta = {n: p.detach().clone() for n, p in params.items()}
    from rlmaml.core import adapt, forward

    adapted = [adapt(lambda p, x=x, y=y: torch.nn.functional.mse_loss(forward(model, p, x), y),
                     {n: t.clone().requires_grad_() for n, t in theta.items()}, 2, cfg.inner_step_size, True)
               for x, y in zip(batch[0], batch[1])]
    meta_update(model, params, alpha, opt, batch, cfg)
    for n, p in params.items():  # SGD: θ ← θ − β (θ − mean θ')
        mean_fast = torch.stack([a[n].detach() for a in adapted]).mean(0)
        torch.testing.assert_close(p.detach(), theta[n] - 0.5 * (theta[n] - mean_fast), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- configs

def test_bad_config_values_give_one_line_errors():
    with pytest.raises(ConfigError, match="unknown config key 'inner_lr'") as err:
        load_config(SupervisedConfig, "sinusoid", ["inner_lr=0.1"])
    assert "\n" not in str(err.value) and "inner_step_size" in str(err.value)
    with pytest.raises(ConfigError, match="meta_batch_size"):
        load_config(SupervisedConfig, "sinusoid", ["meta_batch_size=-3"])
    with pytest.raises(ConfigError, match="num_query"):
        load_config(SupervisedConfig, "omniglot", ["num_query=20"])
    with pytest.raises(ConfigError, match="algorithm"):
        load_config(SupervisedConfig, "sinusoid", ["algorithm=sgd"])
    for bad in ("nan", ".nan", ".inf", "-.inf", "fast"):  # a string, or YAML's non-finite floats
        with pytest.raises(ConfigError, match="'meta_lr': expected a finite number"):
            load_config(SupervisedConfig, "sinusoid", [f"meta_lr={bad}"])
    # YAML 1.1 reads 1e-4 (no dot) as a string: a float key takes it as the number it spells
    assert load_config(SupervisedConfig, "sinusoid", ["meta_lr=1e-4"]).meta_lr == 1e-4
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config(SupervisedConfig, "omniglot-50way")
    for preset in ("sinusoid", "omniglot", "omniglot-20way"):
        load_config(SupervisedConfig, preset)
    cfg = load_config(SupervisedConfig, "omniglot-20way")
    assert (cfg.num_ways, cfg.inner_step_size, cfg.inner_steps, cfg.meta_batch_size) == (20, 0.1, 5, 16)


def test_cli_errors_are_one_line_messages(tmp_path, capsys):
    def error(*argv):
        assert main(list(argv)) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("rlmaml: error: ") and "\n" not in err
        return err

    assert "unknown config key 'bogus'" in error("sinusoid", "bogus=1", "--out", str(tmp_path / "a"), "--no-progress")
    missing = tmp_path / "b"
    assert f"--resume {str(missing)!r}: no such directory" in error("--resume", str(missing))
    missing.mkdir()
    assert f"--resume {str(missing)!r}: no config.yaml there" in error("--resume", str(missing))
    assert f"--evaluate-only {str(missing)!r}: no config.yaml there" in error("--evaluate-only", str(missing))
    (missing / "config.yaml").write_text("task: sinusoid\n")
    assert f"--resume {str(missing)!r}: no checkpoint.pt there" in error("--resume", str(missing))
    assert "give key=value overrides, not 'sinusoid'" in error("sinusoid", "--resume", str(missing))
    assert "--out" in error("--resume", str(missing), "--out", str(tmp_path / "c"))
    assert "give one preset" in error("seed=1")
    with pytest.raises(SystemExit):  # argparse: not both
        main(["--resume", str(missing), "--evaluate-only", str(missing)])


# ---------------------------------------------------------------------------- end to end

def _records(run):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_sinusoid_train_resume_exact_and_evaluate(tmp_path, capsys):
    common = ["meta_batch_size=5", "eval_tasks=30", "eval_query=20", "checkpoint_every=2", "--no-progress"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["sinusoid", "num_iterations=6", "--out", str(straight), *common]) == 0
    assert main(["sinusoid", "num_iterations=3", "--out", str(split), "--no-eval", *common]) == 0
    assert not (split / "eval.json").exists()
    assert main(["--resume", str(split), "num_iterations=6", "--no-progress"]) == 0
    assert _records(straight) == _records(split) and len(_records(split)) == 6
    assert [r["iteration"] for r in _records(split)] == list(range(6))
    a = torch.load(straight / "checkpoint.pt", weights_only=False)
    b = torch.load(split / "checkpoint.pt", weights_only=False)
    assert a["iteration"] == b["iteration"] == 6
    for key in ("params",):
        assert all(torch.equal(a[key][n], b[key][n]) for n in a[key])
    assert all(torch.equal(a["pretrained"]["params"][n], b["pretrained"]["params"][n]) for n in a["params"])
    ev_a, ev_b = (json.loads((d / "eval.json").read_text()) for d in (straight, split))
    assert set(ev_a["mse_by_steps"]) == {"0", "1", "10"} and set(ev_a["pretrained"]["mse_by_steps"]) == {"0", "1", "10"}
    assert ev_a["mse_by_steps"] == ev_b["mse_by_steps"] and ev_a["iterations"] == 6
    assert (straight / "learning_curve.png").stat().st_size > 1000
    assert list((straight / "tb").glob("events.out.tfevents.*"))
    assert "num_iterations: 6" in (straight / "config.yaml").read_text()
    # evaluate-only rewrites eval.json with other settings
    (straight / "eval.json").unlink()
    assert main(["eval_tasks=10", "--evaluate-only", str(straight), "--no-progress"]) == 0
    assert json.loads((straight / "eval.json").read_text())["num_tasks"] == 10
    assert main(["sinusoid", "--out", str(straight), "--no-progress"]) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err


def test_interim_evaluations_equal_the_final_one_and_show_in_the_readme(tmp_path, capsys):
    from rlmaml.analysis.supervised import summarize
    from rlmaml.supervised.evaluate import read_interim

    common = ["meta_batch_size=5", "eval_tasks=30", "eval_query=20", "checkpoint_every=2", "--no-progress"]
    run, short = tmp_path / "run", tmp_path / "short"
    assert main(["sinusoid", "num_iterations=2", "--out", str(short), *common]) == 0  # eval.json after 2
    assert main(["sinusoid", "num_iterations=2", "--out", str(run), "--no-eval", *common]) == 0
    for _ in range(2):  # the same checkpoint twice: one line
        assert main(["--evaluate-only", str(run), "--interim", "--no-progress"]) == 0
    assert not (run / "eval.json").exists()
    assert main(["--resume", str(run), "num_iterations=4", "--no-progress"]) == 0
    assert main(["--evaluate-only", str(run), "--interim", "--no-progress"]) == 0
    records = read_interim(run)
    assert [r["iterations"] for r in records] == [2, 4]
    # the interim record of a checkpoint is the final evaluation of a run that stopped there
    for record, final in ((records[0], short), (records[1], run)):
        ev = json.loads((final / "eval.json").read_text())
        assert record["mse_by_steps"] == ev["mse_by_steps"] and record["pretrained"] == ev["pretrained"]
    assert records[0]["mse_by_steps"] != records[1]["mse_by_steps"]
    readme = summarize(run)
    assert "interim_eval.jsonl" in readme and "| meta-iterations | training hours | after 0 steps | after 1 step |" in readme
    for r in records:
        assert f"| {r['iterations']} | " in readme and f"{r['mse_by_steps']['10']:.3f} ± " in readme
    assert main(["sinusoid", "--interim", "--out", str(tmp_path / "x")]) == 2
    assert "--interim goes with --evaluate-only DIR" in capsys.readouterr().err


def _checkpoints_equal(a: Path, b: Path) -> None:
    a, b = (torch.load(d / "checkpoint.pt", weights_only=False) for d in (a, b))
    assert a["iteration"] == b["iteration"]
    assert all(torch.equal(a["params"][n], b["params"][n]) for n in a["params"])
    if isinstance(a["step_sizes"], dict):
        assert all(torch.equal(a["step_sizes"][n], b["step_sizes"][n]) for n in a["step_sizes"])
    else:
        assert a["step_sizes"] == b["step_sizes"]
    assert a["optimizer"]["param_groups"][0]["lr"] == b["optimizer"]["param_groups"][0]["lr"]


def _straight_and_resumed(tmp_path, preset: str, args: list[str], stop: int, total: int) -> tuple[dict, dict]:
    """Train ``total`` iterations straight, and ``stop`` then ``--resume`` to ``total``; both runs must log and save
    the same; returns their eval.json."""
    straight, part = tmp_path / "straight", tmp_path / "part"
    assert main([preset, f"num_iterations={total}", "--out", str(straight), *args]) == 0
    assert main([preset, f"num_iterations={stop}", "--out", str(part), "--no-eval", *args]) == 0
    assert main(["--resume", str(part), f"num_iterations={total}", "--no-progress"]) == 0
    assert _records(straight) == _records(part) and len(_records(part)) == total
    _checkpoints_equal(straight, part)
    return tuple(json.loads((d / "eval.json").read_text()) for d in (straight, part))


def test_maml_plus_plus_resume_is_exact(tmp_path):
    """LSLR, multi-step loss, derivative-order annealing and the cosine meta learning rate (over a fixed
    ``cosine_iterations``), all changing within the run (epochs of 2 iterations), resume to the same
    metrics, parameters, step sizes and β."""
    common = ["meta_batch_size=3", "inner_steps=2", "lslr=true", "multi_step_loss=true", "msl_epochs=2",
              "first_order_epochs=1", "epoch_iterations=2", "meta_lr_schedule=cosine", "cosine_iterations=7",
              "eval_tasks=6", "eval_query=10", "checkpoint_every=2", "--no-progress"]
    ev_a, ev_b = _straight_and_resumed(tmp_path, "sinusoid", common, 3, 7)
    assert ev_a["mse_by_steps"] == ev_b["mse_by_steps"] and ev_a["lslr"] is True


@needs_data
def test_omniglot_per_step_bn_batched_resume_is_exact(tmp_path):
    args = [f"data_dir={SMALL_ZIP}", f"cache_dir={tmp_path / 'cache'}", "meta_train_characters=100", "num_filters=4",
            "meta_batch_size=2", "num_query=1", "eval_query=2", "eval_tasks=4", "inner_steps=2", "per_step_bn=true",
            "lslr=true", "engine=batched", "checkpoint_every=1", "--no-progress"]
    ev_a, ev_b = _straight_and_resumed(tmp_path, "omniglot", args, 2, 3)
    assert ev_a["accuracy_by_steps"] == ev_b["accuracy_by_steps"] and ev_a["per_step_bn"] is True
    state = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=False)
    assert state["params"]["features.1.weight"].shape == (2, 4) and state["step_sizes"]["head.weight"].shape == (2,)


def test_sigterm_mid_run_checkpoints_and_resume_matches_an_undisturbed_run(tmp_path):
    """A real ``rlmaml supervised`` process stopped by SIGTERM mid-run exits 130 with a checkpoint of the
    iterations it logged; ``--resume`` then gives exactly the metrics and parameters of a run never stopped."""
    common = ["meta_batch_size=5", "eval_tasks=10", "eval_query=10", "checkpoint_every=1000", "--no-progress"]
    split, straight = tmp_path / "split", tmp_path / "straight"
    process = subprocess.Popen([sys.executable, "-m", "rlmaml", "supervised", "sinusoid", "num_iterations=100000",
                                "--out", str(split), *common], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    metrics, deadline = split / "metrics.jsonl", time.monotonic() + 120
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 3):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 130 and "rlmaml: interrupted" in process.stderr.read()
    stopped = torch.load(split / "checkpoint.pt", weights_only=False)["iteration"]
    assert 3 <= stopped < 100000 and len(_records(split)) == stopped  # every logged iteration, none half-done
    total = stopped + 3
    assert main(["--resume", str(split), f"num_iterations={total}", "--no-progress"]) == 0
    assert main(["sinusoid", f"num_iterations={total}", "--out", str(straight), *common]) == 0
    assert _records(split) == _records(straight) and len(_records(split)) == total
    a, b = (torch.load(d / "checkpoint.pt", weights_only=False) for d in (split, straight))
    assert all(torch.equal(a["params"][n], b["params"][n]) for n in a["params"])
    ev_a, ev_b = (json.loads((d / "eval.json").read_text()) for d in (split, straight))
    assert ev_a["mse_by_steps"] == ev_b["mse_by_steps"] and ev_a["pretrained"] == ev_b["pretrained"]


@needs_data
def test_omniglot_tiny_run_from_zip(tmp_path, capsys):
    run = tmp_path / "omni"
    args = ["omniglot", f"data_dir={SMALL_ZIP}", f"cache_dir={tmp_path / 'cache'}", "meta_train_characters=100",
            "num_filters=8", "meta_batch_size=2", "num_query=2", "eval_query=2", "num_iterations=2",
            "eval_tasks=6", "--out", str(run), "--no-progress"]
    assert main(args) == 0
    records = _records(run)
    assert len(records) == 2 and all(0.0 <= r["query_accuracy"] <= 1.0 for r in records)
    ev = json.loads((run / "eval.json").read_text())
    assert 0.0 <= ev["accuracy_mean"] <= 1.0 and ev["accuracy_ci95"] >= 0 and ev["num_tasks"] == 6
    assert set(ev["accuracy_by_steps"]) == {"0", "1", "3"} and ev["inner_steps"] == 3
    # an interim record of the same checkpoint equals eval.json, and the curve shows it
    assert main(["--evaluate-only", str(run), "--interim", "--no-progress"]) == 0
    (record,) = [json.loads(line) for line in (run / "interim_eval.jsonl").read_text().splitlines()]
    assert record["accuracy_by_steps"] == ev["accuracy_by_steps"] and record["iterations"] == 2
    from rlmaml.supervised.evaluate import plot_learning_curve

    assert plot_learning_curve(run).stat().st_size > 1000
    assert main(["omniglot", f"data_dir={tmp_path / 'missing'}", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bench_prints_one_json_object(capsys):
    assert cli_main(["bench", "supervised", "meta_batch_size=3", "--task", "sinusoid", "--batches", "2",
                     "--implementations", "batched,loop"]) == 0
    result = json.loads(capsys.readouterr().out.strip())
    assert result["learn2learn"] is None and result["learn2learn_left_out"] == "not requested"
    for order in ("second_order", "first_order"):
        r = result[order]
        assert set(r["batches_per_s"]) == {"batched", "loop"} and len(r["seconds_per_batch"]["loop"]) == 2
        low, high = r["batched_over_loop_range"]
        assert low <= r["batched_over_loop"] <= high
        assert r["gradient_relative_difference"]["batched"] < 1e-5  # both compute the same meta-gradient


def test_bench_learn2learn_column_when_importable(capsys):
    from rlmaml.bench.supervised import load_learn2learn_maml

    if load_learn2learn_maml()[0] is None:
        pytest.skip("learn2learn is not importable here")
    assert cli_main(["bench", "supervised", "meta_batch_size=2", "--task", "sinusoid", "--batches", "1",
                     "--orders", "first", "--implementations", "loop,learn2learn"]) == 0
    result = json.loads(capsys.readouterr().out.strip())["first_order"]
    assert set(result["batches_per_s"]) == {"loop", "learn2learn"}
    assert result["gradient_relative_difference"]["learn2learn"] < 1e-5


def test_bench_rejects_unknown_implementations(capsys):
    assert cli_main(["bench", "supervised", "--implementations", "loop,jax", "--batches", "1"]) == 2
    assert "--implementations: 'jax' is not one of batched, loop, learn2learn" in capsys.readouterr().err


def test_conv4_meta_update_gradient_matches_finite_differences():
    """The training path itself (the default engine, batch norm with batch statistics) in float64."""
    torch.set_default_dtype(torch.float64)
    try:
        from rlmaml.core import adapt, flatten, forward, unflatten

        cfg = load_config(SupervisedConfig, "omniglot", {"num_filters": 4, "meta_batch_size": 2, "num_query": 2,
                                                         "inner_steps": 2})
        images = np.random.default_rng(0).integers(0, 256, (10, 20, 28, 28), dtype=np.uint8)
        batch = OmniglotTasks(images, np.arange(10), True, dtype=torch.float64).sample(np.random.default_rng(1), 2, 5, 1, 2)
        torch.manual_seed(0)
        model, params, alpha, _ = make_learner(cfg, "cpu")
        meta_update(model, params, alpha, torch.optim.SGD(params.values(), lr=0.0), batch, cfg)
        grad = torch.cat([p.grad.flatten() for p in params.values()])
        like = {n: p.detach() for n, p in params.items()}
        F = torch.nn.functional

        def objective(theta):  # (1/B) Σ_i L_{Q_i}(θ'_i), values only
            total = 0.0
            for xs, ys, xq, yq in zip(*batch):
                fast = adapt(lambda p, xs=xs, ys=ys: F.cross_entropy(forward(model, p, xs), ys), unflatten(theta, like), 2,
                             cfg.inner_step_size, first_order=True)
                total += F.cross_entropy(forward(model, fast, xq), yq).item() / 2
            return total

        theta = flatten(like)
        g = torch.Generator().manual_seed(3)
        for _ in range(3):
            v = torch.randn(theta.numel(), generator=g)
            v /= v.norm()
            numeric = (objective(theta + 1e-6 * v) - objective(theta - 1e-6 * v)) / 2e-6
            assert float(grad @ v) == pytest.approx(numeric, rel=1e-5, abs=1e-9)
    finally:
        torch.set_default_dtype(torch.float32)


def test_cli_exit_code_and_one_line_message(tmp_path, capsys):
    assert cli_main(["supervised", "sinusoid", "--out", str(tmp_path / "r"), "meta_lr=-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlmaml: error: config key 'meta_lr'") and "\n" not in err
    assert not (tmp_path / "r").exists()
