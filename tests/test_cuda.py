"""The GPU path (``device=cuda``): the same numbers as on the CPU. Skipped where no CUDA device is present;
``scripts/gpu_check.sh`` runs these with the GPU benchmarks."""

import json

import pytest
import torch
from test_maml_trpo import tiny_problem

from rlmaml.config import build_config
from rlmaml.core import flatten
from rlmaml.rl.algos import TRPO
from rlmaml.rl.config import TrainConfig
from rlmaml.rl.evaluation import load_run
from rlmaml.rl.trainer import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_meta_gradient_and_fisher_vector_product_on_cuda_equal_cpu_float64():
    """Second-order meta-gradient g and F·g through the adaptation, float64: CPU and GPU agree to 1e-10."""
    out = {}
    for device in ("cpu", "cuda"):
        policy, theta, train_batch, valid, _ = tiny_problem(seed=4)
        policy = policy.to(device)
        theta = {n: p.to(device) for n, p in theta.items()}
        learner = TRPO(policy, theta, fast_lr=0.5, first_order=False)
        _, g, fvp, _, _ = learner.natural_gradient_setup([train_batch.to(device)], valid.to(device))
        out[device] = (g.cpu(), fvp(g).cpu(), flatten(learner.params).detach().cpu())
    for cpu, gpu in zip(out["cpu"], out["cuda"]):
        torch.testing.assert_close(gpu, cpu, rtol=1e-10, atol=1e-12)


def test_training_on_cuda_samples_the_cpu_episodes_and_follows_the_cpu_run(tmp_path):
    """The action noise comes from the CPU generator, so the first batch's episodes (and returns) match; after
    two TRPO steps the parameters still agree to float32 rounding."""
    tiny = {"env": "rlmaml/Navigation2D-v0", "num_batches": 2, "meta_batch_size": 3, "episodes_per_task": 4,
            "horizon": 10, "hidden_sizes": [16], "checkpoint_every": 1, "seed": 7}
    for device in ("cpu", "cuda"):
        train(build_config(TrainConfig, {**tiny, "device": device}), tmp_path / device, progress=False)
    metrics = {d: [json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
               for d in ("cpu", "cuda")}
    assert metrics["cuda"][0]["returns_before"] == pytest.approx(metrics["cpu"][0]["returns_before"], rel=1e-5)
    for cpu, gpu in zip(metrics["cpu"], metrics["cuda"]):
        assert gpu["step_accepted"] == cpu["step_accepted"]
        assert gpu["returns_after"] == pytest.approx(cpu["returns_after"], rel=1e-3)
    params = {d: load_run(tmp_path / d)[2] for d in ("cpu", "cuda")}
    for name, p in params["cpu"].items():
        torch.testing.assert_close(params["cuda"][name].cpu(), p, rtol=1e-3, atol=1e-4)
