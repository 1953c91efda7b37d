"""``rlmaml evaluate RUN_DIR [--compare DIR …] [--render N]``: returns after 0..K inner steps on held-out tasks
for the run and its comparison methods (:mod:`rlmaml.rl.evaluation`), written to eval.json; then videos."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from ..errors import UserError
from ..rl.evaluation import LATER_STEP_SCALE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `rlmaml train`")
    parser.add_argument("--num-tasks", type=int, default=40, help="held-out tasks (default 40)")
    parser.add_argument("--grad-steps", type=int, default=3, help="evaluate after 0..K inner steps (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the held-out tasks and rollouts (default 0)")
    parser.add_argument("--episodes-per-task", type=int, default=None, help="default: the run's episodes_per_task")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (policy and adaptation)")
    parser.add_argument("--later-step-scale", type=float, default=LATER_STEP_SCALE,
                        help="step size of inner steps 2, 3, … as a multiple of the run's fast_lr (default 0.5, "
                             "the original MAML-RL evaluation; 1 = the same step size throughout)")
    parser.add_argument("--out", default=None,
                        help="output JSON file, or a directory for eval.json and videos (default RUN_DIR/eval.json)")
    group = parser.add_argument_group("comparison methods and videos")
    group.add_argument("--compare", nargs="+", default=[], metavar="DIR",
                       help="runs of the comparison methods (rlmaml train … algorithm=pretrained|oracle), "
                            "evaluated on the same tasks; a random initialisation is always added")
    group.add_argument("--no-random", action="store_true",
                       help="leave out the random-initialisation baseline")
    group.add_argument("--render", type=int, default=0, metavar="N",
                       help="render the first N held-out tasks before adaptation and after each inner step")
    group.add_argument("--render-out", default=None, metavar="DIR",
                       help="where videos go (default: RUN_DIR/videos)")
    group.add_argument("--fps", type=float, default=None,
                       help="video frame rate (default: real time, 1/dt of the run's env; 20 for navigation)")


def output_paths(run_dir: str | Path, out: str | None, render_out: str | None) -> tuple[Path, Path | None]:
    """(eval.json path, video directory): ``--out FILE.json`` names the JSON; any other ``--out`` is a
    directory that gets ``eval.json`` and ``videos/``; ``--render-out`` overrides the video directory."""
    if out is None:
        json_path = Path(run_dir) / "eval.json"
    elif out.endswith(".json"):
        json_path = Path(out)
    else:
        json_path = Path(out) / "eval.json"
    if render_out is not None:
        return json_path, Path(render_out)
    return json_path, (json_path.parent / "videos" if out is not None else None)


def run(args) -> int:
    """Every method (this run, ``--compare`` runs, a random initialisation) on the same held-out tasks."""
    from ..rl import evaluation

    if args.episodes_per_task is not None and args.episodes_per_task <= 0:
        raise UserError(f"--episodes-per-task must be a positive integer, got {args.episodes_per_task}")
    evaluation.check_render_request(args.run_dir, args.render, args.fps)
    evaluation.require_checkpoint(args.run_dir)
    for d in args.compare:
        evaluation.require_checkpoint(d, "--compare")
    config, _, _ = evaluation.load_run(args.run_dir, args.device)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    tasks = evaluation.held_out_tasks(config, args.num_tasks, args.seed)
    comparison = evaluation.evaluate_methods(
        args.run_dir, args.compare, tasks, args.grad_steps, args.seed, args.device, include_random=not args.no_random,
        episodes_per_task=args.episodes_per_task, record=[config.algorithm] if args.render else [], progress=True,
        later_step_scale=args.later_step_scale)
    result = evaluation.evaluation_report(config, comparison, num_tasks=args.num_tasks, grad_steps=args.grad_steps,
                                          seed=args.seed, episodes_per_task=args.episodes_per_task,
                                          later_step_scale=args.later_step_scale)
    out, video_dir = output_paths(args.run_dir, args.out, args.render_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"inner step sizes: {', '.join(f'{a:g}' for a in result['step_sizes'])}")
    for name, summary in comparison["methods"].items():
        table = "  ".join(f"{j}: {m:.2f} ± {c:.2f}" for j, (m, c) in enumerate(zip(summary["mean"], summary["ci95"])))
        print(f"{name:>12} on {args.num_tasks} tasks of {config.env}  {table}")
        if "success" in summary:
            rates = "  ".join(f"{j}: {100 * m:.1f} ± {100 * c:.1f}%" for j, (m, c) in
                              enumerate(zip(summary["success"]["mean"], summary["success"]["ci95"])))
            print(f"{'':>12} success rate  {rates}")
        if any(summary["ended_early"]):
            early = "  ".join(f"{j}: {100 * f:.1f}%" for j, f in enumerate(summary["ended_early"]))
            print(f"{'':>12} episodes that ended before the horizon  {early}")
    print(f"-> {out}")
    if args.render:
        fps = args.fps if args.fps is not None else evaluation.real_time_fps(config)
        for path in evaluation.render_from_evaluation(args.run_dir, config.env,
                                                      comparison["episodes"][config.algorithm], tasks, args.render,
                                                      video_dir, fps, progress=True):
            print(path)
    return 0
