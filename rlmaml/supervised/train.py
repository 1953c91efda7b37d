"""Few-shot supervised MAML: ``rlmaml supervised SOURCE [key=value ...] --out DIR``.

SOURCE is a preset (``sinusoid``, ``omniglot`` = 5-way 1-shot, ``omniglot-20way``), a YAML
file, or, with ``--resume`` / ``--evaluate-only``, a run directory (its ``config.yaml`` is
used). Options go before the positional arguments or after all of them.

DIR receives ``config.yaml``, ``metrics.jsonl`` (per iteration: ``iteration``, ``query_loss``,
``query_accuracy`` for classification, ``pretrained_loss`` for the sinusoid baseline,
``skipped``, ``seconds`` since the start of training), TensorBoard events under ``tb/``, an
atomic ``checkpoint.pt`` every ``checkpoint_every`` iterations and at exit (θ, Meta-SGD α,
optimizer states, RNG states, iteration), and at the end ``eval.json`` plus
``learning_curve.png`` (see :mod:`rlmaml.supervised.evaluate`).

SIGTERM (or Ctrl-C) stops training after the current iteration with a final checkpoint.
``--resume`` continues a run exactly where its checkpoint left off (``num_iterations=N`` may
extend it). ``--evaluate-only`` (re-)evaluates the checkpoint in DIR (or SOURCE when it is a
run directory) on ``eval_tasks`` held-out tasks and rewrites ``eval.json``.

Examples::

    rlmaml supervised sinusoid --out runs/sinusoid
    rlmaml supervised omniglot num_iterations=5000 --out runs/omniglot --device cuda
    rlmaml supervised --resume --out runs/omniglot
    rlmaml supervised --evaluate-only --out runs/omniglot eval_tasks=1000
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import CHECKPOINT_NAME, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from ..config import load_config, parse_overrides, save_config
from ..errors import UserError
from ..logging import RunLogger
from ..runtime import prepare_run
from .experiment import SupervisedConfig, TaskSource, make_learner, meta_update

CONFIG_NAME = "config.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", default=None,
                        help="preset (sinusoid, omniglot, omniglot-20way), YAML file or run directory")
    parser.add_argument("overrides", nargs="*", default=[], help="config overrides key=value")
    parser.add_argument("--out", default=None, help="run directory (default: runs/<preset>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--evaluate-only", "--eval", dest="evaluate_only", action="store_true",
                        help="evaluate the checkpoint in the run directory and write eval.json")
    parser.add_argument("--device", default=None, help="cpu or cuda[:N] (config key device)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (config key seed)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    parser.add_argument("--no-eval", dest="final_eval", action="store_false",
                        help="skip the evaluation at the end of training")
    _allow_intermixed(parser)


def _allow_intermixed(parser: argparse.ArgumentParser) -> None:
    """Let key=value overrides follow options (``sinusoid --out DIR seed=3``): this parser, also
    when it is a sub-command, parses with ``parse_known_intermixed_args``."""
    plain = parser.parse_known_args

    def parse_known_args(args=None, namespace=None):
        parser.parse_known_args = plain  # the intermixed parser calls the plain one internally
        try:
            return parser.parse_known_intermixed_args(args, namespace)
        finally:
            parser.parse_known_args = parse_known_args

    parser.parse_known_args = parse_known_args


def _split_source(args) -> tuple[str | None, list[str]]:
    source, overrides = args.source, list(args.overrides)
    if source is not None and "=" in source and not Path(source).exists():
        overrides.insert(0, source)
        source = None
    return source, overrides


def resolve(args) -> tuple[SupervisedConfig, Path, bool]:
    """(config, run directory, resuming?) from parsed CLI arguments."""
    source, overrides = _split_source(args)
    extra = parse_overrides(overrides)
    if args.device is not None:
        extra["device"] = args.device
    if args.seed is not None:
        extra["seed"] = args.seed
    run_dir_source = source is not None and Path(source).is_dir()
    out = Path(args.out) if args.out else (Path(source) if run_dir_source else None)
    if args.resume or args.evaluate_only:
        if out is None:
            raise UserError("--resume/--evaluate-only need a run directory: --out DIR")
        if not (out / CONFIG_NAME).is_file():
            raise UserError(f"no {CONFIG_NAME} in run directory {str(out)!r}; train first")
        return load_config(SupervisedConfig, out / CONFIG_NAME, extra), out, True
    if source is None:
        raise UserError("give a preset (sinusoid, omniglot, omniglot-20way) or a config YAML file")
    cfg = load_config(SupervisedConfig, source, extra)
    if out is None:
        out = Path("runs") / Path(source).stem
    if (out / CHECKPOINT_NAME).exists():
        raise UserError(f"run directory {str(out)!r} already holds a checkpoint; use --resume or another --out")
    return cfg, out, False


def run(args) -> int:
    cfg, out, resuming = resolve(args)
    if args.evaluate_only:
        from .evaluate import evaluate_run

        result = evaluate_run(out, cfg, progress=args.progress)
        _print_summary(result)
        return 0
    train(cfg, out, resume=resuming, progress=args.progress, final_eval=args.final_eval)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m rlmaml.supervised.train`` (same arguments as the CLI)."""
    parser = argparse.ArgumentParser(prog="rlmaml supervised", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


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


class _StopRequest:
    """SIGTERM sets ``requested``; the loop stops at the next iteration boundary and checkpoints."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


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
    snapshot = (rng.bit_generator.state, rng_state())
    stop = _StopRequest()
    try:
        with logger, stop:
            while iteration < cfg.num_iterations and not stop.requested:
                snapshot = (rng.bit_generator.state, rng_state())
                tic = time.perf_counter()
                batch = tasks.sample(rng, cfg.meta_batch_size, "train")
                metrics = meta_update(model, params, step_sizes, optimizer, batch, cfg)
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
                snapshot = (rng.bit_generator.state, rng_state())
                if iteration % cfg.checkpoint_every == 0:
                    checkpoint(iteration)
    finally:
        # the state after the last completed iteration, even when interrupted mid-iteration
        rng.bit_generator.state, global_state = snapshot
        set_rng_state(global_state)
        checkpoint(iteration)
    if final_eval and iteration >= cfg.num_iterations:
        from .evaluate import evaluate_run, plot_learning_curve

        plot_learning_curve(out)
        _print_summary(evaluate_run(out, cfg, progress=progress))
    return out


def _print_summary(result: dict) -> None:
    import json

    keys = ("iterations", "accuracy_mean", "accuracy_ci95", "mse_by_steps", "pretrained")
    print(json.dumps({k: result[k] for k in keys if k in result}))


if __name__ == "__main__":
    import sys

    try:
        sys.exit(main())
    except UserError as exc:
        print(f"rlmaml: error: {exc}", file=sys.stderr)
        sys.exit(2)
