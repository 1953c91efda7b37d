"""Evaluation of a supervised run on held-out tasks, and its learning curve.

``eval_tasks`` tasks (default 600) are drawn with ``eval_seed`` — the same tasks for every
model evaluated — from the meta-test distribution (Omniglot: the held-out characters, not
rotated; sinusoid: fresh tasks, ``num_shots`` support points and ``eval_query`` query points).
Each model is adapted with plain gradient steps θ_{j+1} = θ_j − α_j ∇L_S(θ_j) (α = the
training ``inner_step_size``, the learned Meta-SGD α, or the learned per-step α_j of ``lslr``) and scored on the query set after
every step count in ``eval_steps``; the mean and the 95% confidence interval
1.96·s/√n over tasks are reported.

``eval.json``:

* classification: ``accuracy_mean`` / ``accuracy_ci95`` after ``max(eval_steps)`` steps
  (Omniglot presets: 3 for 5-way, 5 for 20-way), plus ``accuracy_by_steps``, ``ci95_by_steps``
  and ``loss_by_steps`` keyed by the step count as a string;
* regression: ``mse_by_steps`` / ``mse_ci95_by_steps`` (keys "0", "1", "10") for the
  meta-learned model and the same under ``"pretrained"`` for the baseline trained jointly on
  all tasks with the same number of updates, fine-tuned identically.

``interim_eval.jsonl`` (``rlmaml supervised --evaluate-only DIR --interim``, while training goes on
or between sessions): one line per evaluated checkpoint, the same dict as ``eval.json``, sorted by
``iterations``; evaluating a checkpoint again replaces its line. These are the held-out tasks of the
final evaluation, so they show where a long run stands; nothing in training reads them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..checkpoint import CHECKPOINT_NAME, load_checkpoint, write_text_atomic
from ..core import detach_params
from ..logging import read_metrics
from ..stats import mean_ci95, moving_average
from .experiment import (
    SupervisedConfig,
    TaskSource,
    adapt_trajectory,
    batched_tasks,
    build_model,
    initial_fast,
    query_scores,
)

EVAL_NAME = "eval.json"
INTERIM_NAME = "interim_eval.jsonl"
CHUNK = 25


def adaptation_scores(model, params, step_sizes, tasks: TaskSource, cfg: SupervisedConfig,
                      progress: bool = False, desc: str = "evaluate") -> dict[int, dict[str, np.ndarray]]:
    """Per-task query loss (and accuracy) after each step count in ``eval_steps``.

    Step j uses α_j and the batch-norm row j of θ (``lslr``, ``per_step_bn``), the last learned
    one for j ≥ ``inner_steps``."""
    rng = np.random.default_rng(cfg.eval_seed)
    steps = sorted(set(cfg.eval_steps))
    batched = batched_tasks(cfg)
    scores = {k: {"loss": [], "accuracy": []} for k in steps}
    theta = detach_params(params)
    if isinstance(step_sizes, dict):
        step_sizes = {n: a.detach() for n, a in step_sizes.items()}

    def detached(fast):
        return {name: v.detach() for name, v in fast.items()}

    remaining = cfg.eval_tasks
    with tqdm(total=cfg.eval_tasks, desc=desc, disable=not progress, leave=False) as bar:
        while remaining > 0:
            n = min(CHUNK, remaining)
            batch = tasks.sample(rng, n, "test", num_query=cfg.eval_query)
            fast = initial_fast(model, theta, cfg, n, batched)
            done = 0
            for k in steps:
                if k > done:  # continue adapting from the previous step count
                    if batched:
                        fast = detached(adapt_trajectory(model, theta, step_sizes, batch[0], batch[1], cfg, fast,
                                                         k - done, True, True, done)[-1])
                    else:
                        fast = [detached(adapt_trajectory(model, theta, step_sizes, batch[0][i], batch[1][i], cfg, fp,
                                                          k - done, True, False, done)[-1])
                                for i, fp in enumerate(fast)]
                    done = k
                with torch.no_grad():
                    losses, accs = query_scores(model, fast, batch, cfg, batched, theta, k)
                scores[k]["loss"].append(losses.cpu().numpy())
                if accs is not None:
                    scores[k]["accuracy"].append(accs.cpu().numpy())
            remaining -= n
            bar.update(n)
    return {k: {m: np.concatenate(v) for m, v in s.items() if v} for k, s in scores.items()}


def summarize(scores: dict[int, dict[str, np.ndarray]], classification: bool) -> dict:
    out: dict = {}
    if classification:
        last = max(scores)
        out["accuracy_mean"], out["accuracy_ci95"] = mean_ci95(scores[last]["accuracy"])
        out["inner_steps"] = last
        out["accuracy_by_steps"] = {str(k): mean_ci95(s["accuracy"])[0] for k, s in scores.items()}
        out["ci95_by_steps"] = {str(k): mean_ci95(s["accuracy"])[1] for k, s in scores.items()}
        out["loss_by_steps"] = {str(k): mean_ci95(s["loss"])[0] for k, s in scores.items()}
    else:
        out["mse_by_steps"] = {str(k): mean_ci95(s["loss"])[0] for k, s in scores.items()}
        out["mse_ci95_by_steps"] = {str(k): mean_ci95(s["loss"])[1] for k, s in scores.items()}
    return out


def evaluate_checkpoint(run_dir: str | Path, cfg: SupervisedConfig, progress: bool = True,
                        interim: bool = False) -> dict:
    """Evaluate the checkpoint in ``run_dir`` (and the pretrained baseline) and write eval.json, or with
    ``interim`` put the result in interim_eval.jsonl (:func:`record_interim`) and leave eval.json alone."""
    run_dir = Path(run_dir)
    device = torch.device(cfg.device)
    state = load_checkpoint(run_dir / CHECKPOINT_NAME, map_location=device)
    tasks = TaskSource(cfg, device)
    model = build_model(cfg).to(device)
    params = {n: p.to(device) for n, p in state["params"].items()}
    step_sizes = state["step_sizes"]
    if isinstance(step_sizes, dict):
        step_sizes = {n: a.to(device) for n, a in step_sizes.items()}
    result = {
        "task": cfg.task, "algorithm": cfg.algorithm, "first_order": cfg.first_order, "meta_sgd": cfg.meta_sgd,
        **{k: getattr(cfg, k) for k in ("multi_step_loss", "lslr", "per_step_bn") if getattr(cfg, k)},
        "iterations": state["iteration"], "train_seconds": round(state["seconds"], 1),
        "num_tasks": cfg.eval_tasks, "num_shots": cfg.num_shots, "num_query": cfg.eval_query,
        "inner_step_size": cfg.inner_step_size, "eval_steps": sorted(set(cfg.eval_steps)), "eval_seed": cfg.eval_seed,
    }
    if cfg.classification:
        result["num_ways"] = cfg.num_ways
    result.update(summarize(adaptation_scores(model, params, step_sizes, tasks, cfg, progress), cfg.classification))
    if "pretrained" in state:
        pre = {n: p.to(device) for n, p in state["pretrained"]["params"].items()}
        scores = adaptation_scores(model, pre, cfg.inner_step_size, tasks, cfg, progress, "evaluate pretrained")
        result["pretrained"] = summarize(scores, cfg.classification)
    if interim:
        record_interim(run_dir, result)
    else:
        write_text_atomic(run_dir / EVAL_NAME, json.dumps(result, indent=2) + "\n")
    return result


def read_interim(run_dir: str | Path) -> list[dict]:
    """The records of ``run_dir/interim_eval.jsonl`` sorted by iteration (none when there is no file)."""
    path = Path(run_dir) / INTERIM_NAME
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def record_interim(run_dir: str | Path, result: dict) -> Path:
    """Add ``result`` to ``run_dir/interim_eval.jsonl``, replacing the record of the same iteration (atomic)."""
    records = [r for r in read_interim(run_dir) if r["iterations"] != result["iterations"]] + [result]
    records.sort(key=lambda r: r["iterations"])
    return write_text_atomic(Path(run_dir) / INTERIM_NAME, "".join(json.dumps(r) + "\n" for r in records))


def plot_learning_curve(run_dir: str | Path, path: str | Path | None = None, window: int | None = None) -> Path:
    """``learning_curve.png``: query loss (and accuracy) per iteration, smoothed by a moving average."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    path = Path(path) if path else run_dir / "learning_curve.png"
    it = np.array([r["iteration"] for r in records])
    window = window or max(1, len(records) // 100)

    def smooth(key):  # full windows only
        y = np.array([np.nan if r.get(key) is None else r[key] for r in records], dtype=float)
        return it[window - 1:], moving_average(y, window)[window - 1:]

    keys = [k for k in ("query_accuracy", "query_loss") if records and k in records[0]]
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4), squeeze=False)
    held_out = read_interim(run_dir)
    if (run_dir / EVAL_NAME).is_file():
        held_out = [r for r in held_out if r["iterations"] < json.loads((run_dir / EVAL_NAME).read_text())["iterations"]]
        held_out.append(json.loads((run_dir / EVAL_NAME).read_text()))
    for ax, key in zip(axes[0], keys):
        ax.plot(*smooth(key), label="MAML: query after the inner step(s)")
        if key == "query_accuracy" and held_out and "accuracy_mean" in held_out[0]:
            ax.errorbar([r["iterations"] for r in held_out], [r["accuracy_mean"] for r in held_out],
                        yerr=[r["accuracy_ci95"] for r in held_out], fmt="o", color="C3", capsize=3,
                        label=f"held-out tasks after {held_out[-1]['inner_steps']} steps (95 % CI)")
        if key == "query_loss" and "pretrained_loss" in records[0]:
            ax.plot(*smooth("pretrained_loss"), label="pretrained: joint-regression training loss")
        ax.set_xlabel("meta-iteration")
        ax.set_ylabel(key.replace("_", " ") + (" (MSE)" if "accuracy" not in key and "pretrained_loss" in records[0]
                                                 else ""))
        if key == "query_loss" and "pretrained_loss" in records[0]:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    cfg_name = run_dir.name
    fig.suptitle(f"Learning curve: {cfg_name} (moving average over {window} iterations)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
