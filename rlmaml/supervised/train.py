"""The supervised meta-training loop: :func:`train` (``rlmaml supervised``, :mod:`rlmaml.cli.supervised`).

The run directory receives ``config.yaml``, ``metrics.jsonl`` (per iteration: ``iteration``,
``query_loss``, ``query_accuracy`` for classification, ``pretrained_loss`` for the sinusoid
baseline, ``skipped``, ``seconds`` since the start of training), TensorBoard events under ``tb/``,
an atomic ``checkpoint.pt`` every ``checkpoint_every`` iterations and at exit (θ, Meta-SGD α,
optimizer states, RNG states, iteration), and at the end ``eval.json`` plus
``learning_curve.png`` (see :mod:`rlmaml.supervised.evaluate`).

SIGTERM or SIGINT (:func:`rlmaml.run.stop_on_signals`) stops training after the current iteration
(each runs under :func:`rlmaml.run.deferred_stop`) with a checkpoint of the iterations completed,
and re-raises ``KeyboardInterrupt``. ``resume=True`` continues a run exactly where its checkpoint
left off: the same metrics, parameters and random streams as a run never stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import CHECKPOINT_NAME, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ..config import save_config
from ..logging import RunLogger
from ..run import CONFIG_NAME, deferred_stop, stop_on_signals
from ..runtime import prepare_run
from .experiment import SupervisedConfig, TaskSource, make_learner, meta_update

# ---------------------------------------------------------------------------- training

def _state(iteration, seconds, skipped, params, step_sizes, optimizer, rng, pretrained) -> dict:
    state = {
        "iteration": iteration, "seconds": seconds, "skipped": skipped,
        "params": {n: p.detach().cpu().clone() for n, p in params.items()},
        "step_sizes": ({n: a.detach().cpu().clone() for n, a in step_sizes.items()}
                       if isinstance(step_sizes, dict) else step_sizes),
        "optimizer": optimizer.state_dict(),
        "task_rng": rng.bit_generator.state,
        "rng": rng_state(),
    }
    if pretrained is not None:
        state["pretrained"] = {"params": {n: p.detach().cpu().clone() for n, p in pretrained[1].items()},
                               "optimizer": pretrained[2].state_dict()}
    return state


def _restore(state, params, step_sizes, optimizer, rng, pretrained) -> None:
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(state["params"][n])
        if isinstance(step_sizes, dict):
            for n, a in step_sizes.items():
                a.copy_(state["step_sizes"][n])
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["task_rng"]
    set_rng_state(state["rng"])
    if pretrained is not None:
        with torch.no_grad():
            for n, p in pretrained[1].items():
                p.copy_(state["pretrained"]["params"][n])
        pretrained[2].load_state_dict(state["pretrained"]["optimizer"])


def make_pretrained(cfg: SupervisedConfig, device):
    """The sinusoid baseline: one network regressed on all tasks jointly, Adam(meta_lr)."""
    from ..core import named_params
    from .experiment import build_model

    model = build_model(cfg).to(device)
    params = named_params(model)
    return model, params, torch.optim.Adam(params.values(), lr=cfg.meta_lr)


def pretrained_update(pretrained, batch) -> float:
    """One Adam step of the baseline on every point of the meta-batch (support and query)."""
    from ..core import forward

    model, params, optimizer = pretrained
    x = torch.cat([batch[0], batch[2]], dim=1)
    y = torch.cat([batch[1], batch[3]], dim=1)
    optimizer.zero_grad(set_to_none=True)
    loss = ((forward(model, params, x) - y) ** 2).mean()
    if not torch.isfinite(loss):
        return float("nan")
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def train(cfg: SupervisedConfig, out: str | Path, resume: bool = False, progress: bool = True,
          final_eval: bool = True) -> Path:
    """Meta-train ``cfg`` into ``out`` (resuming from its checkpoint when asked); returns ``out``."""
    out, device = prepare_run(out, cfg.num_threads, cfg.device, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    tasks = TaskSource(cfg, device)
    model, params, step_sizes, optimizer = make_learner(cfg, device)
    pretrained = make_pretrained(cfg, device) if cfg.task == "sinusoid" and cfg.pretrained_baseline else None
    start, seconds, skipped = 0, 0.0, 0
    if resume:
        state = load_checkpoint(out / CHECKPOINT_NAME, map_location=device)
        _restore(state, params, step_sizes, optimizer, rng, pretrained)
        start, seconds, skipped = state["iteration"], state["seconds"], state["skipped"]
    save_config(cfg, out / CONFIG_NAME)

    def checkpoint(iteration):
        save_checkpoint(_state(iteration, seconds, skipped, params, step_sizes, optimizer, rng, pretrained),
                        out / CHECKPOINT_NAME)

    logger = RunLogger(out, cfg.num_iterations, "iteration", resume_from=start, progress=progress,
                       desc=f"meta-train {cfg.task}")
    iteration = start
    with stop_on_signals(), logger:
        try:
            while iteration < cfg.num_iterations:
                with deferred_stop():  # a stop signal waits for the iteration to complete
                    tic = time.perf_counter()
                    batch = tasks.sample(rng, cfg.meta_batch_size, "train")
                    metrics = meta_update(model, params, step_sizes, optimizer, batch, cfg, iteration)
                    if pretrained is not None:
                        metrics["pretrained_loss"] = pretrained_update(pretrained, batch)
                    seconds += time.perf_counter() - tic
                    skipped += metrics["skipped"]
                    metrics["seconds"] = round(seconds, 3)
                    postfix = {"loss": metrics["query_loss"]}
                    if "query_accuracy" in metrics:
                        postfix["acc"] = metrics["query_accuracy"]
                    logger.log(iteration, metrics, postfix)
                    iteration += 1
                if iteration % cfg.checkpoint_every == 0:
                    checkpoint(iteration)
            checkpoint(iteration)
        except KeyboardInterrupt:
            checkpoint(iteration)  # the state after the last completed iteration
            raise
    if final_eval:
        from .evaluate import evaluate_checkpoint, plot_learning_curve

        plot_learning_curve(out)
        print_summary(evaluate_checkpoint(out, cfg, progress=progress))
    return out


def print_summary(result: dict) -> None:
    """One JSON line of an evaluation's headline numbers (iterations, accuracy or MSE by steps)."""
    import json

    keys = ("iterations", "accuracy_mean", "accuracy_ci95", "mse_by_steps", "pretrained")
    print(json.dumps({k: result[k] for k in keys if k in result}))
