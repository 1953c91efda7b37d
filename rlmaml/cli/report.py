"""``rlmaml report table|progress|terminations|supervised-summary|glance ...``: tables from what runs left behind.

The arithmetic and the formatting live in :mod:`rlmaml.analysis`; this module reads the files (checkpoints,
TensorBoard events, eval.json), runs the evaluation that ``terminations`` needs, and prints.

* ``table EVAL_JSON``: every method of an RL evaluation, mean ± 95% CI after 0..k steps, the paper's row
* ``progress RUN_DIR``: block means of the training returns, totals and wall time
* ``terminations RUN_DIR``: why Ant episodes end early, before and after adaptation (runs an evaluation)
* ``supervised-summary RUN_DIR ...``: writes the README.md of supervised result folders (and their
  ``learning_curve.png`` while in training or when they hold ``interim_eval.jsonl``)
* ``durations``: how long every run of the manifest took, from metrics.jsonl and the TensorBoard events
* ``glance``: the README's at-a-glance tables from ``results/manifest.yaml`` (``--write`` rewrites README.md,
  ``--check`` fails when it differs or when the manifest does not match the folders)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..errors import UserError

ROOT = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report", metavar="REPORT", required=True)

    p = sub.add_parser("table", help="markdown table of an RL eval.json (every method, the paper's numbers)")
    p.add_argument("eval_json", type=Path, metavar="EVAL_JSON")
    p.add_argument("--no-reference", action="store_true", help="leave out the paper's row")
    p.set_defaults(_report=_table)

    p = sub.add_parser("progress", help="block means of a run's training returns, its totals and wall time")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--block", type=int, default=25, help="batches per column (default 25)")
    p.add_argument("--skip", type=int, default=20,
                   help="leave the first N batches out of the median timings (default 20)")
    p.set_defaults(_report=_progress)

    p = sub.add_parser("terminations", help="why Ant episodes end before the horizon, per adaptation phase")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--num-tasks", type=int, default=40)
    p.add_argument("--grad-steps", type=int, default=1)
    p.add_argument("--seed", type=int, default=1000, help="as rlmaml evaluate's --seed (default 1000)")
    p.add_argument("--episodes-per-task", type=int, default=None, help="default: the run's")
    p.set_defaults(_report=_terminations)

    p = sub.add_parser("supervised-summary", help="write README.md into supervised result folders")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    p.set_defaults(_report=_supervised_summary)

    p = sub.add_parser("durations", help="how long every run of results/manifest.yaml took (markdown table)")
    p.add_argument("--results", type=Path, default=ROOT / "results", help="the results folder (default: the repo's)")
    p.set_defaults(_report=_durations)

    p = sub.add_parser("glance", help="the README's at-a-glance tables from results/manifest.yaml")
    p.add_argument("--results", type=Path, default=ROOT / "results", help="the results folder (default: the repo's)")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md", help="the README holding the tables")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the tables in the README")
    mode.add_argument("--check", action="store_true",
                      help="exit 1 when the README's tables or the manifest do not match the files")
    p.set_defaults(_report=_glance)


def run(args) -> int:
    return args._report(args)


def _paper(env: str | None) -> list[float] | None:
    from ..envs.registry import find_family

    family = find_family(env)
    return list(family.paper) if family is not None and family.paper else None


def _table(args) -> int:
    from ..analysis.tables import eval_table_lines

    if not args.eval_json.is_file():
        raise UserError(f"no such file: {str(args.eval_json)!r}; expected an eval.json written by rlmaml evaluate")
    result = json.loads(args.eval_json.read_text())
    if "methods" not in result:
        raise UserError(f"{str(args.eval_json)!r} is not an RL evaluation (no 'methods')")
    print("\n".join(eval_table_lines(result, None if args.no_reference else _paper(result.get("env")))))
    return 0


def _event_times(tb_dir: Path) -> dict[int, float] | None:
    """batch -> wall time at which its ``sample_seconds`` event was written (the latest write of a batch)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    if "sample_seconds" not in accumulator.Tags().get("scalars", []):
        return None
    return {event.step: event.wall_time for event in accumulator.Scalars("sample_seconds")}


def _progress(args) -> int:
    import torch

    from ..analysis.progress import progress_lines

    for name in ("checkpoint.pt", "metrics.jsonl"):
        if not (args.run_dir / name).is_file():
            raise UserError(f"run_dir {str(args.run_dir)!r} has no {name}; expected a training run directory")
    checkpoint = torch.load(args.run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    rows = [json.loads(line) for line in (args.run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    config = checkpoint.get("config")
    k = config.get("num_inner_steps", 1) if isinstance(config, dict) else 1
    written = _event_times(args.run_dir / "tb") if (args.run_dir / "tb").is_dir() and rows else None
    print("\n".join(progress_lines(rows, checkpoint["batch"], checkpoint["env_steps"], k, args.block, args.skip,
                                   written)))
    return 0


def _durations(args) -> int:
    from ..analysis import manifest
    from ..analysis.progress import durations_lines

    runs = []
    for name in manifest.load(args.results)["runs"]:
        folder = args.results / name
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
        written = _event_times(folder / "tb") if (folder / "tb").is_dir() and "sample_seconds" in rows[0] else None
        runs.append((name, rows, written))
    print("\n".join(durations_lines(runs)))
    return 0


def _terminations(args) -> int:
    import torch

    from ..analysis.terminations import mean_goal_distance, task_column, termination_table

    if args.num_tasks <= 0 or (args.episodes_per_task is not None and args.episodes_per_task <= 0):
        raise UserError("--num-tasks and --episodes-per-task must be positive integers")
    from ..envs.registry import families_taking
    from ..rl.evaluation import adaptation_returns, held_out_tasks, load_run

    config, policy, params = load_run(args.run_dir)
    ants = [f.env_id for f in families_taking("ant_model")]
    if config.env not in ants:
        raise UserError(f"{str(args.run_dir)!r} trained {config.env!r}; terminations reads the Ant families: "
                        f"{', '.join(ants)}")
    if config.num_threads:  # as rlmaml evaluate, so that the numbers are its numbers
        torch.set_num_threads(config.num_threads)
    tasks = held_out_tasks(config, args.num_tasks, args.seed)
    returns, phases = adaptation_returns(policy, params, config, tasks, args.grad_steps, args.seed,
                                         episodes_per_task=args.episodes_per_task, record_state=True)
    episodes = phases[0].episodes_per_task
    print(f"{args.run_dir}: {config.env}, {args.num_tasks} held-out tasks (seed {args.seed}), {episodes} episodes "
          f"per task and phase; mean return per phase: {', '.join(f'{r:.1f}' for r in returns.mean(dim=1).tolist())}\n")
    if task_column(tasks) == "goal":
        print(f"the goals lie {mean_goal_distance(tasks):.2f} m from the start (0, 0) on average\n")
    print("\n".join(termination_table(config.horizon, tasks, phases)))
    return 0


def _supervised_summary(args) -> int:
    from ..analysis.supervised import summarize

    for run in args.run_dirs:
        if not (run / "eval.json").is_file() and not (run / "checkpoint.pt").is_file():
            raise UserError(f"{str(run)!r} has no eval.json or checkpoint.pt; expected a supervised result folder "
                            "(finished, or in training)")
        if not (run / "eval.json").is_file() or (run / "interim_eval.jsonl").is_file():
            # in training: the curve so far; or with the held-out evaluations of its checkpoints
            from ..supervised.evaluate import plot_learning_curve

            plot_learning_curve(run)
        (run / "README.md").write_text(summarize(run))
        print(f"wrote {run / 'README.md'}")
    return 0


def _glance(args) -> int:
    from ..analysis import manifest

    if not (args.results / manifest.MANIFEST_NAME).is_file():
        raise UserError(f"no {manifest.MANIFEST_NAME} in {str(args.results)!r}")
    data = manifest.load(args.results)
    prefix = Path(os.path.relpath(args.results.resolve(), args.readme.resolve().parent)).as_posix() + "/"
    tables = manifest.glance_tables(data, args.results, link_prefix=prefix)
    if args.write:
        args.readme.write_text(manifest.replace_block(args.readme.read_text(), tables))
        print(f"wrote the at-a-glance tables into {args.readme}")
        return 0
    if args.check:
        problems = manifest.problems(data, args.results)
        if manifest.current_block(args.readme.read_text()) != tables:
            problems.append(f"{args.readme} does not hold the generated tables: run `rlmaml report glance --write`")
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    print(tables)
    return 0
