"""``rlmaml train [PRESET|CONFIG.yaml] [key=value ...]``: meta-train a policy (default: 2D navigation);
``rlmaml train --resume DIR [key=value ...]`` continues a run exactly from its checkpoint."""

from __future__ import annotations

import argparse
import logging
from datetime import datetime
from pathlib import Path

from ..config import ConfigError, build_config, load_config, parse_overrides, read_yaml_source
from ..rl.config import DEFAULT_PRESET, TrainConfig
from ..run import CONFIG_NAME, resume_dir, stop_on_signals


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("args", nargs="*", metavar="[PRESET|CONFIG.yaml] [key=value ...]",
                        help="a preset name or YAML file (default: navigation), then key=value overrides")
    parser.add_argument("--out", default=None, help="run directory (default runs/<preset>-<timestamp>)")
    parser.add_argument("--device", default=None, help="cpu or cuda (policy and meta-update; envs run on the CPU)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (overrides the config)")
    parser.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR from its checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run_name(source: str | None) -> str:
    stem = Path(source).stem if source else DEFAULT_PRESET
    return f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def load_train_config(args) -> tuple[TrainConfig, str | None]:
    """(config, its preset or file) from the command line: a run's config.yaml under ``--resume``, then a
    preset or file, then ``key=value`` overrides, then ``--device`` / ``--seed``."""
    sources = [a for a in args.args if "=" not in a]
    if len(sources) > 1:
        raise ConfigError(f"expected at most one preset or config file, got {', '.join(sources)}")
    overrides = parse_overrides([a for a in args.args if "=" in a])
    if args.device is not None:
        overrides["device"] = args.device
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.resume is not None:
        values = read_yaml_source(resume_dir(args.resume) / CONFIG_NAME)
        if sources:
            values.update(read_yaml_source(sources[0]))
        values.update(overrides)
        return build_config(TrainConfig, values), None
    source = sources[0] if sources else DEFAULT_PRESET
    return load_config(TrainConfig, source, overrides), source


def run(args) -> int:
    from ..rl.trainer import train

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg, source = load_train_config(args)
    out = Path(args.resume) if args.resume is not None else (Path(args.out) if args.out else
                                                             Path("runs") / run_name(source))
    with stop_on_signals():
        path = train(cfg, out, resume=args.resume is not None, progress=not args.no_progress)
    print(f"run directory: {out}  (checkpoint {path.name})")
    return 0
