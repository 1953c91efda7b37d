"""``rlmaml plot RUN_DIR... [--out FILE_OR_DIR] [--labels ...] [--band minmax|std] [--reference paper]
[--smooth N] [--only KIND]``: the figures of :func:`rlmaml.viz.curves.plot_runs`, one path printed per PNG."""

from __future__ import annotations

from ..viz.curves import PLOT_KINDS, plot_runs


def add_arguments(parser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run directories holding metrics.jsonl and/or eval.json")
    parser.add_argument("--out", default=None, metavar="FILE_OR_DIR",
                        help="a .png file or a directory (default: the run directory, or plots/ for several)")
    parser.add_argument("--labels", nargs="+", default=None, metavar="LABEL",
                        help="one legend label per run directory; runs sharing a label are averaged "
                             "(default: directory name without a trailing seed tag)")
    parser.add_argument("--band", choices=("minmax", "std"), default="minmax",
                        help="spread shown around the mean of runs sharing a label (default: minmax)")
    parser.add_argument("--reference", choices=("paper",), default=None,
                        help="add the MAML paper's reported returns to adaptation curves")
    parser.add_argument("--smooth", type=int, default=None, metavar="N",
                        help="moving average over N logged points (default: about 1/40 of the curve; 1 = raw)")
    parser.add_argument("--only", choices=PLOT_KINDS, default=None,
                        help="make only this kind of plot (default: every kind the runs support)")


def run(args) -> int:
    for path in plot_runs(args.run_dirs, args.out, args.labels, args.band, args.reference, args.only, args.smooth):
        print(path)
    return 0
