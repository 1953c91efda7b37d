"""``rlmaml supervised``: few-shot supervised MAML (training: :func:`rlmaml.supervised.train.train`).

::

    rlmaml supervised SOURCE [key=value ...] [--out DIR]    train a new run
    rlmaml supervised --resume DIR [key=value ...]          continue DIR from its checkpoint
    rlmaml supervised --evaluate-only DIR [key=value ...]   (re-)evaluate DIR's checkpoint, rewrite eval.json
    rlmaml supervised --evaluate-only DIR --interim         add its evaluation to DIR/interim_eval.jsonl

SOURCE is a preset (``sinusoid``, ``omniglot`` = 5-way 1-shot, ``omniglot-20way``, ``omniglot-mamlpp`` =
5-way 1-shot with every MAML++ option) or a YAML file; options and ``key=value`` overrides may come in any order. ``--resume`` and
``--evaluate-only`` read DIR's ``config.yaml``, with the overrides on top (``num_iterations=N``
extends a run; ``eval_tasks=N`` changes the evaluation). A new run refuses a DIR that already
holds a checkpoint. SIGTERM or Ctrl-C stops training after the current iteration with a final
checkpoint (exit status 130); ``--resume DIR`` then continues exactly. ``--interim`` evaluates a run
that is still training (its checkpoint is replaced atomically, so this may run beside the training)
and keeps one line per checkpoint iteration in ``interim_eval.jsonl``, which the run's README and
learning curve show; ``eval.json`` stays for the end of training.

Examples::

    rlmaml supervised sinusoid --out runs/sinusoid
    rlmaml supervised omniglot num_iterations=5000 --out runs/omniglot --device cuda
    rlmaml supervised --resume runs/omniglot
    rlmaml supervised --evaluate-only runs/omniglot eval_tasks=1000
    rlmaml supervised --evaluate-only runs/omniglot-20way --interim
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import CHECKPOINT_NAME
from ..config import load_config, parse_overrides
from ..errors import UserError
from ..run import CONFIG_NAME, resume_dir
from ..supervised.experiment import SupervisedConfig

PRESETS = ("sinusoid", "omniglot", "omniglot-20way", "omniglot-mamlpp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("args", nargs="*", metavar="[SOURCE] [key=value ...]",
                        help=f"a preset ({', '.join(PRESETS)}) or YAML file, then config overrides key=value")
    parser.add_argument("--out", default=None, help="run directory of a new run (default: runs/<preset>)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR from its checkpoint")
    existing.add_argument("--evaluate-only", "--eval", dest="evaluate_only", default=None, metavar="DIR",
                          help="evaluate the checkpoint in DIR and write DIR/eval.json")
    parser.add_argument("--interim", action="store_true",
                        help="with --evaluate-only: add the evaluation to DIR/interim_eval.jsonl, not eval.json")
    parser.add_argument("--device", default=None, help="cpu or cuda[:N] (config key device)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (config key seed)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    parser.add_argument("--no-eval", dest="final_eval", action="store_false",
                        help="skip the evaluation at the end of training")


def resolve(args) -> tuple[SupervisedConfig, Path, bool]:
    """(config, run directory, resuming?) from parsed arguments."""
    sources = [a for a in args.args if "=" not in a or Path(a).exists()]
    extra = parse_overrides([a for a in args.args if a not in sources])
    if args.device is not None:
        extra["device"] = args.device
    if args.seed is not None:
        extra["seed"] = args.seed
    if args.interim and args.evaluate_only is None:
        raise UserError("--interim goes with --evaluate-only DIR (it records an evaluation of DIR's checkpoint)")
    existing, flag = (args.resume, "--resume") if args.resume is not None else (args.evaluate_only, "--evaluate-only")
    if existing is not None:
        if sources:
            raise UserError(f"{flag} DIR uses DIR's {CONFIG_NAME}; give key=value overrides, not {sources[0]!r}")
        if args.out is not None:
            raise UserError(f"{flag} DIR writes into DIR; --out {args.out!r} is not allowed with it")
        out = resume_dir(existing, flag)
        return load_config(SupervisedConfig, out / CONFIG_NAME, extra), out, True
    if len(sources) != 1:
        got = f"got {', '.join(map(repr, sources))}" if sources else "got none"
        raise UserError(f"give one preset ({', '.join(PRESETS)}) or config YAML file, {got}")
    cfg = load_config(SupervisedConfig, sources[0], extra)
    out = Path(args.out) if args.out else Path("runs") / Path(sources[0]).stem
    if (out / CHECKPOINT_NAME).exists():
        raise UserError(f"run directory {str(out)!r} already holds a checkpoint; use --resume {out} or another --out")
    return cfg, out, False


def run(args) -> int:
    from ..supervised.evaluate import evaluate_checkpoint
    from ..supervised.train import print_summary, train

    cfg, out, resuming = resolve(args)
    if args.evaluate_only is not None:
        print_summary(evaluate_checkpoint(out, cfg, progress=args.progress, interim=args.interim))
        return 0
    train(cfg, out, resume=resuming, progress=args.progress, final_eval=args.final_eval)
    return 0
