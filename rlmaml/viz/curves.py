"""Learning curves and adaptation curves from run directories (PNG).

What ``rlmaml plot RUN_DIR...`` draws (its arguments are in :mod:`rlmaml.cli.plot`):

* RL runs (``metrics.jsonl`` with ``returns_before``/``returns_after``): average return before and
  after adaptation against environment steps. Runs sharing a label (by default the directory name
  without a trailing seed tag such as ``-seed3``; or explicit ``--labels``) are aggregated: the line
  is the mean over runs, the band spans min..max (or mean ± std) over runs.
* Supervised runs (``metrics.jsonl`` with ``query_loss``/``query_accuracy``): query loss and accuracy
  against meta-iterations, aggregated the same way.
* Envs that report success (Meta-World): a second panel with the success rate, in both figures.
* Evaluations (``eval.json``): average return against the number of inner gradient steps, one line
  per method with its 95% confidence band; a constant ``oracle`` is a dashed horizontal reference;
  ``--reference paper`` adds the MAML paper's reported numbers (the family's ``paper`` in
  :mod:`rlmaml.envs.registry`) as markers.

Smoothing is :func:`rlmaml.stats.moving_average`.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.registry import canonical_name, find_family
from ..errors import UserError
from ..stats import moving_average

METRICS_NAME = "metrics.jsonl"
EVAL_NAME = "eval.json"
CONFIG_NAMES = ("config.yaml", "config.yml", "config.json")

METRIC_LABELS = {"return": "average return per episode", "accuracy": "query accuracy",
                 "mse": "query mean squared error", "success": "success rate (episodes with a success)"}
METHOD_STYLE = {  # colour, marker
    "maml": ("tab:blue", "o"),
    "pretrained": ("tab:orange", "s"),
    "random": ("tab:gray", "^"),
    "oracle": ("tab:green", None),
}
_SEED_SUFFIX = re.compile(r"([-_.]?(seed|s)[-_=]?\d+)$", re.IGNORECASE)


env_key = canonical_name  # "rlmaml/HalfCheetahVel-v0" -> "halfcheetahvel", old runs' aliases included


def paper_reference(env: str | None) -> list[float] | None:
    """The MAML paper's reported returns after 0, 1, 2, ... inner steps for ``env`` (an id or an eval.json's
    ``env``), from its family's record; None when the family has none or is not registered."""
    record = find_family(env)
    return list(record.paper) if record is not None and record.paper is not None else None


# ----------------------------------------------------------------------------------------------- reading runs
@dataclass
class Run:
    """What one run directory holds."""

    path: Path
    label: str
    config: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None

    @property
    def kind(self) -> str | None:
        """``"rl"``, ``"supervised"`` or None (no usable metrics)."""
        if not self.metrics:
            return None
        keys = set().union(*(r.keys() for r in self.metrics))
        if "returns_after" in keys or "returns_before" in keys:
            return "rl"
        if "query_loss" in keys or "query_accuracy" in keys:
            return "supervised"
        return None

    @property
    def title(self) -> str:
        """Environment or dataset name for figure titles."""
        if self.evaluation and self.evaluation.get("env"):
            return str(self.evaluation["env"])
        for key in ("env", "env_id", "env_name", "dataset", "task"):
            if self.config.get(key):
                return str(self.config[key])
        return self.path.name


def default_label(path: Path) -> str:
    """Directory name without a trailing seed tag (``nav-seed2`` -> ``nav``), so seeds aggregate."""
    name = path.resolve().name
    stripped = _SEED_SUFFIX.sub("", name)
    return stripped or name


def _read_config(path: Path) -> dict[str, Any]:
    for name in CONFIG_NAMES:
        f = path / name
        if f.is_file():
            try:
                if name.endswith(".json"):
                    data = json.loads(f.read_text())
                else:
                    import yaml

                    data = yaml.safe_load(f.read_text())
            except Exception:  # noqa: BLE001 - a broken config only loses the title
                return {}
            return data if isinstance(data, dict) else {}
    return {}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise UserError(f"{str(path)!r} line {n} is not valid JSON") from None
    return records


def load_run(path: str | Path, label: str | None = None) -> Run:
    """Read ``metrics.jsonl``, ``eval.json`` and the config of a run directory (or an eval.json / metrics.jsonl file)."""
    path = Path(path)
    if path.is_file() and path.name in (METRICS_NAME, EVAL_NAME):
        path = path.parent
    if not path.is_dir():
        raise UserError(f"run directory {str(path)!r} does not exist")
    metrics_file, eval_file = path / METRICS_NAME, path / EVAL_NAME
    if not metrics_file.is_file() and not eval_file.is_file():
        raise UserError(f"run directory {str(path)!r} has neither {METRICS_NAME} nor {EVAL_NAME}; "
                        "pass the directory of a training run (rlmaml train/supervised) or an evaluation")
    run = Run(path=path, label=label or default_label(path), config=_read_config(path))
    if metrics_file.is_file():
        run.metrics = _read_jsonl(metrics_file)
    if eval_file.is_file():
        try:
            run.evaluation = json.loads(eval_file.read_text())
        except json.JSONDecodeError:
            raise UserError(f"{str(eval_file)!r} is not valid JSON") from None
        if isinstance(run.evaluation, dict) and not isinstance(run.evaluation.get("methods"), dict):
            run.evaluation = supervised_evaluation(run.evaluation)
        if not isinstance(run.evaluation, dict) or not isinstance(run.evaluation.get("methods"), dict):
            raise UserError(f"{str(eval_file)!r} has no 'methods' mapping; expected the output of rlmaml evaluate "
                            "or rlmaml supervised")
    if run.kind is None and run.evaluation is None:
        raise UserError(f"{str(metrics_file)!r} has no returns_before/returns_after or query_loss/query_accuracy "
                        "records to plot")
    return run


def supervised_evaluation(data: dict[str, Any]) -> dict[str, Any] | None:
    """The eval.json of a supervised run (``accuracy_by_steps``/``ci95_by_steps`` or ``mse_by_steps``/
    ``mse_ci95_by_steps``, keyed by the step count, with a ``pretrained`` block) in the RL layout
    ``{"env", "grad_steps", "methods": {name: {"mean", "ci95"}}, "metric"}``; None when it is neither."""
    for metric, mean_key, ci_key in (("accuracy", "accuracy_by_steps", "ci95_by_steps"),
                                     ("mse", "mse_by_steps", "mse_ci95_by_steps")):
        if isinstance(data.get(mean_key), dict):
            break
    else:
        return None
    steps = sorted(int(k) for k in data[mean_key])

    def method(block):
        return {"mean": [float(block[mean_key][str(k)]) for k in steps],
                "ci95": [float(block.get(ci_key, {}).get(str(k), 0.0)) for k in steps]}

    methods = {str(data.get("algorithm") or "maml"): method(data)}
    if isinstance(data.get("pretrained"), dict) and isinstance(data["pretrained"].get(mean_key), dict):
        methods["pretrained"] = method(data["pretrained"])
    name = str(data.get("task") or "supervised")
    if data.get("num_ways"):
        name += f" {data['num_ways']}-way {data.get('num_shots', '?')}-shot"
    elif data.get("num_shots"):
        name += f" {data['num_shots']}-shot"
    return {"env": name, "num_tasks": data.get("num_tasks"), "grad_steps": steps, "methods": methods,
            "metric": metric}


# ---------------------------------------------------------------------------------------------- aggregation
def _series(records: list[dict[str, Any]], key: str) -> np.ndarray:
    out = []
    for r in records:
        v = r.get(key)
        out.append(float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan)
    return np.asarray(out, dtype=np.float64)


def aggregate(curves: Sequence[np.ndarray], band: str = "minmax") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and band (``minmax``: min..max, ``std``: mean ± std) over runs, on the first ``min(len)`` points.

    NaNs (non-finite logged values) are ignored per point."""
    n = min(len(c) for c in curves)
    stack = np.stack([np.asarray(c[:n], dtype=np.float64) for c in curves])
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(stack, axis=0)
            if band == "std":
                std = np.nanstd(stack, axis=0)
                return mean, mean - std, mean + std
            if band == "minmax":
                return mean, np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
    raise UserError(f"--band {band!r} is not allowed; allowed: minmax, std")


def _groups(runs: Sequence[Run]) -> OrderedDict[str, list[Run]]:
    groups: OrderedDict[str, list[Run]] = OrderedDict()
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    return groups


def _new_figure(ncols: int = 1, width: float = 6.4, height: float = 4.4):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), dpi=110, layout="constrained")
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _band_label(band: str, n: int) -> str:
    return "" if n < 2 else (f" (mean of {n}, min–max)" if band == "minmax" else f" (mean ± std of {n})")


# ------------------------------------------------------------------------------------------------ figures
def smoothing_window(smooth: int | None, length: int) -> int:
    """``smooth`` points, or (None) about 1/40 of the curve."""
    if smooth is None:
        return max(1, round(length / 40))
    if smooth < 1:
        raise UserError(f"--smooth must be a positive number of points, got {smooth}")
    return int(smooth)


def _draw(ax, x, mean, lo, hi, window, color, style, label, members, alpha):
    """Mean (smoothed by ``window``; raw mean faint behind it) and the band over runs."""
    if window > 1:
        ax.plot(x, mean, style, color=color, lw=0.7, alpha=0.25)
    ax.plot(x, moving_average(mean, window), style, color=color, lw=1.8, label=label)
    if members > 1:
        ax.fill_between(x, moving_average(lo, window), moving_average(hi, window), color=color,
                        alpha=alpha, lw=0)


PHASE_KEYS = {"return": ("returns_after", "returns_before"), "success": ("success_after", "success_before")}
PHASE_LABELS = {"return": "average return per episode", "success": "success rate (episodes with a success)"}


def learning_curve_figure(runs: Sequence[Run], band: str = "minmax", smooth: int | None = 1):
    """Average return per episode before (dashed) and after (solid) adaptation against environment steps; for
    envs that report success (Meta-World: ``success_before``/``success_after`` in metrics.jsonl) a second panel
    with the success rate, drawn the same way."""
    runs = [r for r in runs if r.kind == "rl"]
    if not runs:
        raise UserError("no RL runs (metrics.jsonl with returns_before/returns_after) to plot")
    panels = ["return"] + (["success"] if all(any("success_after" in r for r in run.metrics) for run in runs)
                           else [])
    fig, axes = _new_figure(len(panels))
    x_is_steps = all(any("env_steps" in r for r in run.metrics) for run in runs)
    for ax, panel in zip(axes, panels):
        _learning_panel(ax, runs, panel, band, smooth, x_is_steps)
    titles = sorted({r.title for r in runs})
    meta = all(r.config.get("algorithm", "maml") == "maml" for r in runs)
    title = f"{', '.join(titles)}: {'meta-training' if meta else 'training'}"
    if len(axes) == 1:
        axes[0].set_title(title)
    else:
        fig.suptitle(title)
    return fig


def _learning_panel(ax, runs: Sequence[Run], panel: str, band: str, smooth: int | None, x_is_steps: bool) -> None:
    """One metric (``return`` or ``success``) before and after adaptation, a line per label, on ``ax``."""
    after_key, before_key = PHASE_KEYS[panel]
    colors = _colors(len(_groups(runs)))
    for color, (label, members) in zip(colors, _groups(runs).items()):
        xs = [_series(m.metrics, "env_steps") if x_is_steps else _series(m.metrics, "batch") for m in members]
        x, _, _ = aggregate(xs, "minmax")
        suffix = _band_label(band, len(members))
        unadapted = all(np.array_equal(_series(m.metrics, before_key), _series(m.metrics, after_key),
                                       equal_nan=True) for m in members)
        for key, style, phase in ((after_key, "-", "after adaptation"), (before_key, "--", "before adaptation")):
            if not all(any(key in r for r in m.metrics) for m in members):
                continue
            if unadapted:  # no inner step during training (pretrained, oracle): one curve
                if key == before_key:
                    continue
                phase = "no adaptation"
            mean, lo, hi = aggregate([_series(m.metrics, key) for m in members], band)
            _draw(ax, x, mean, lo, hi, smoothing_window(smooth, len(x)), color, style, f"{label}: {phase}{suffix}",
                  len(members), 0.18 if style == "-" else 0.08)
    ax.set_xlabel("environment steps" if x_is_steps else "meta-batch")
    ax.set_ylabel(PHASE_LABELS[panel])
    if panel == "success":
        ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    if x_is_steps:
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))


def supervised_curve_figure(runs: Sequence[Run], band: str = "minmax", smooth: int | None = None):
    """Query loss (and query accuracy when logged) against meta-iterations."""
    runs = [r for r in runs if r.kind == "supervised"]
    if not runs:
        raise UserError("no supervised runs (metrics.jsonl with query_loss/query_accuracy) to plot")
    keys = [k for k in ("query_loss", "query_accuracy") if any(k in rec for r in runs for rec in r.metrics)]
    fig, axes = _new_figure(len(keys))
    colors = _colors(len(_groups(runs)))
    for ax, key in zip(axes, keys):
        for color, (label, members) in zip(colors, _groups(runs).items()):
            members = [m for m in members if any(key in rec for rec in m.metrics)]
            if not members:
                continue
            x, _, _ = aggregate([_series(m.metrics, "iteration") for m in members], "minmax")
            mean, lo, hi = aggregate([_series(m.metrics, key) for m in members], band)
            _draw(ax, x, mean, lo, hi, smoothing_window(smooth, len(x)), color, "-",
                  f"{label}{_band_label(band, len(members))}", len(members), 0.2)
        ax.set_xlabel("meta-iteration")
        ax.set_ylabel("query loss" if key == "query_loss" else "query accuracy")
        if key == "query_loss" and _all_positive(runs, key):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    titles = sorted({r.title for r in runs})
    fig.suptitle(f"{', '.join(titles)}: meta-training (after adaptation, on query sets)")
    return fig


def _all_positive(runs: Sequence[Run], key: str) -> bool:
    values = np.concatenate([_series(r.metrics, key) for r in runs])
    values = values[np.isfinite(values)]  # log scale only when positive and spanning more than a decade
    return values.size > 0 and bool((values > 0).all()) and values.max() > 10 * values.min()


def adaptation_figure(evaluation: dict[str, Any], reference: str | None = None, title: str | None = None):
    """Average return against the number of inner gradient steps, one line per method with a 95% CI band.

    ``evaluation`` is the content of eval.json: ``{"env", "num_tasks", "grad_steps", "methods":
    {name: {"mean": [...], "ci95": [...]}}}``. A method whose mean is a single value or constant
    (the oracle) is drawn as a dashed horizontal line. Where the methods carry ``success`` (envs that report
    it, e.g. Meta-World) a second panel draws the success rate the same way, with a thin line per task class of
    ``success_by_class`` when there are several (ML10, ML45)."""
    methods = evaluation.get("methods") or {}
    if not methods:
        raise UserError("eval.json has no methods to plot")
    env = evaluation.get("env")
    steps = list(evaluation.get("grad_steps") or range(max(len(m.get("mean", [])) for m in methods.values())))
    panels = ["return"] + (["success"] if all("success" in m for m in methods.values()) else [])
    fig, axes = _new_figure(len(panels))
    n = evaluation.get("num_tasks")
    title = title or f"{env or 'evaluation'}: adaptation to new tasks" + (f" ({n} tasks)" if n else "")
    for ax, panel in zip(axes, panels):
        ticks = _adaptation_panel(ax, methods, steps, panel)
        _finish_adaptation_axes(ax, evaluation if panel == "return" else {**evaluation, "metric": "success"},
                                ticks, reference if panel == "return" else None, ncol=3,
                                title=title if len(panels) == 1 else "")
    if len(panels) > 1:
        fig.suptitle(title)
    return fig


def _adaptation_panel(ax, methods: dict[str, Any], steps: list, panel: str) -> set[int]:
    """Each method's mean ± 95% CI of ``panel`` (``return``: the method's own mean; ``success``: its
    ``success`` block) after 0..k steps on ``ax``; returns the step ticks."""
    palette = iter(_colors(len(methods) + 4)[4:])
    for name, result in methods.items():
        block = result if panel == "return" else result["success"]
        mean = np.asarray(block.get("mean", []), dtype=np.float64).reshape(-1)
        if mean.size == 0:
            continue
        ci = np.asarray(block.get("ci95", np.zeros_like(mean)), dtype=np.float64).reshape(-1)
        if ci.size != mean.size:
            ci = np.resize(ci, mean.size)
        color, marker = METHOD_STYLE.get(name, (next(palette), "D"))
        label = _method_label(name)
        constant = mean.size == 1 or np.allclose(mean, mean[0])
        if constant and (name == "oracle" or mean.size == 1):
            ax.axhline(mean[0], color=color, ls="--", lw=1.6, label=f"{label} ({mean[0]:.{3 if panel == 'success' else 1}f})")
            ax.axhspan(mean[0] - ci[0], mean[0] + ci[0], color=color, alpha=0.12, lw=0)
            continue
        x = np.asarray(steps[: mean.size], dtype=np.float64)
        ax.errorbar(x, mean, yerr=ci, color=color, marker=marker, lw=1.8, capsize=4, label=label)
        ax.fill_between(x, mean - ci, mean + ci, color=color, alpha=0.15, lw=0)
        by_class = result.get("success_by_class") or {}
        if panel == "success" and len(by_class) > 1:
            for i, (cls, values) in enumerate(by_class.items()):
                ax.plot(x, np.asarray(values, dtype=np.float64)[: mean.size], color=color, lw=0.8, alpha=0.5,
                        ls=(":", "-.", "--")[i % 3], label=f"{label}: {cls}")
    if panel == "success":
        ax.set_ylim(-0.02, 1.02)
    return {int(k) for k in steps}


def _finish_adaptation_axes(ax, evaluation: dict[str, Any], ticks: set[int], reference: str | None, ncol: int,
                            title: str) -> None:
    """The paper's markers (``reference="paper"``), title, axis labels, ticks, grid and legend of an adaptation
    figure whose metric and env are those of ``evaluation``."""
    if reference == "paper":
        ref = paper_reference(evaluation.get("env"))
        if ref is not None:
            xr = np.arange(len(ref), dtype=np.float64)
            ax.plot(xr, ref, ls="none", marker="*", ms=12, color="black", label="MAML, paper (Finn et al. 2017)")
            ticks = ticks | set(range(len(ref)))
    elif reference is not None:
        raise UserError(f"--reference {reference!r} is not allowed; allowed: paper")
    ax.set_title(title)
    ax.set_xlabel("number of gradient steps")
    ax.set_ylabel(METRIC_LABELS.get(evaluation.get("metric", "return"), str(evaluation.get("metric"))))
    ax.set_xticks(sorted(ticks) or [0])
    ax.grid(alpha=0.3)
    # below the axes: adaptation curves span the whole plot, so any inside position can hide a point
    ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=ncol, frameon=False)


def adaptation_runs_figure(runs: Sequence[Run], band: str = "minmax", reference: str | None = None):
    """Adaptation curves of several evaluated runs: for each label, the mean over its runs of each run's own
    method (the first in its eval.json) after 0..k inner steps, with the band over runs (``minmax`` or
    ``std``), or the run's 95% CI over tasks for a label with one run; ``reference="paper"`` adds the paper."""
    runs = [r for r in runs if r.evaluation is not None]
    if not runs:
        raise UserError("no eval.json among the run directories; run rlmaml evaluate first")
    fig, (ax,) = _new_figure()
    steps_seen: set[int] = set()
    for color, (label, members) in zip(_colors(len(_groups(runs))), _groups(runs).items()):
        own = [next(iter((m.evaluation.get("methods") or {}).values()), {}) for m in members]
        curves = [np.asarray(o.get("mean", []), dtype=np.float64).reshape(-1) for o in own]
        if any(c.size == 0 for c in curves):
            raise UserError(f"an eval.json of {label!r} has no returns to plot")
        mean, lo, hi = aggregate(curves, band)
        if len(members) == 1:
            ci = np.resize(np.asarray(own[0].get("ci95", np.zeros_like(mean)), dtype=np.float64), mean.size)
            lo, hi = mean - ci, mean + ci
            suffix = " (95% CI over tasks)"
        else:
            suffix = _band_label(band, len(members))
        x = np.arange(mean.size, dtype=np.float64)
        steps_seen |= set(range(mean.size))
        ax.plot(x, mean, color=color, marker="o", lw=1.8, label=f"{label}{suffix}")
        ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)
    env = runs[0].evaluation.get("env")
    _finish_adaptation_axes(ax, runs[0].evaluation, steps_seen, reference, ncol=1,
                            title=f"{env or 'evaluation'}: adaptation to new tasks")
    return fig


def _method_label(name: str) -> str:
    return {"maml": "MAML", "pretrained": "pretrained", "random": "random init", "oracle": "oracle"}.get(name, name)


def _colors(n: int) -> list:
    base = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
            "tab:olive", "tab:cyan", "tab:gray"]
    return [base[i % len(base)] for i in range(n)]


def figure_texts(fig) -> list[str]:
    """Every title, axis label and legend entry of ``fig`` (for checks before saving)."""
    texts = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) is not None else []
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend is not None:
            texts += [t.get_text() for t in legend.get_texts()]
    return [t for t in texts if t]


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` as PNG (parent directories are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


# ------------------------------------------------------------------------------------------ all of a run
PLOT_KINDS = ("learning", "supervised", "adaptation")


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path | None = None, labels: Sequence[str] | None = None,
              band: str = "minmax", reference: str | None = None, only: str | None = None,
              smooth: int | None = None) -> list[Path]:
    """Make every plot the run directories support (or ``only`` one kind: learning, supervised,
    adaptation); returns the PNG paths written. Runs sharing a label (``labels``, or the directory name
    without a trailing seed tag) are averaged, in learning curves and, for several evaluated runs, in one
    adaptation figure (``adaptation_curves.png``; a single evaluated run gives ``adaptation_curve.png`` with
    every method of its eval.json).

    ``out``: a ``.png`` file (used as is for a single figure, as ``<stem>_<kind>.png`` for several) or a
    directory; default: the run directory when there is one, else ``plots/``."""
    if not run_dirs:
        raise UserError("give at least one run directory")
    if labels and len(labels) != len(run_dirs):
        raise UserError(f"--labels has {len(labels)} names for {len(run_dirs)} run directories; give one per directory")
    if band not in ("minmax", "std"):
        raise UserError(f"--band {band!r} is not allowed; allowed: minmax, std")
    if reference not in (None, "paper"):
        raise UserError(f"--reference {reference!r} is not allowed; allowed: paper")
    if only not in (None, *PLOT_KINDS):
        raise UserError(f"--only {only!r} is not allowed; allowed: {', '.join(PLOT_KINDS)}")
    runs = [load_run(d, labels[i] if labels else None) for i, d in enumerate(run_dirs)]

    figures: list[tuple[str, Any]] = []
    if only in (None, "learning") and (any(r.kind == "rl" for r in runs) or only):
        figures.append(("learning_curve", learning_curve_figure(runs, band, smooth)))
    if only in (None, "supervised") and (any(r.kind == "supervised" for r in runs) or only):
        figures.append(("supervised_curve", supervised_curve_figure(runs, band, smooth)))
    evaluated = [r for r in runs if r.evaluation is not None] if only in (None, "adaptation") else []
    if only == "adaptation" and not evaluated:
        raise UserError("no eval.json among the run directories; run rlmaml evaluate first")
    if len(evaluated) == 1:
        figures.append(("adaptation_curve", adaptation_figure(evaluated[0].evaluation, reference)))
    elif evaluated:  # one figure across runs: each run's own method, runs sharing a label averaged
        figures.append(("adaptation_curves", adaptation_runs_figure(evaluated, band, reference)))

    if out is None:
        out_path = runs[0].path if len(runs) == 1 else Path("plots")
    else:
        out_path = Path(out)
    written = []
    if out_path.suffix.lower() == ".png":
        for name, fig in figures:
            target = out_path if len(figures) == 1 else out_path.with_name(f"{out_path.stem}_{name}.png")
            written.append(save_figure(fig, target))
    else:
        for name, fig in figures:
            written.append(save_figure(fig, out_path / f"{name}.png"))
    return written
