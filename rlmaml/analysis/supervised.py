"""The README of a supervised result folder, written from its eval.json, metrics.jsonl and config.yaml (and its
bench.json when there is one)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

# the driver that made each supervised run of results/, by its path under results/
COMMANDS = {
    "sinusoid/preset": "scripts/supervised_results.sh sinusoid",
    "sinusoid/k5-batched": "scripts/supervised_results.sh sinusoid-batched",
    "sinusoid/k10-batched": "scripts/supervised_results.sh sinusoid-batched",
    "omniglot/5way-1shot": "scripts/supervised_results.sh omniglot",
    "omniglot/5way-1shot-60k": "scripts/supervised_results.sh omniglot-60k",
    "omniglot/20way-1shot-60k": "scripts/supervised_results.sh omniglot-20way",
    "omniglot/5way-1shot-mamlpp": "scripts/supervised_results.sh omniglot-mamlpp",
    "omniglot/5way-5shot-60k": "scripts/supervised_results.sh omniglot-5shot",
}
# how each one continues from its checkpoint
RESUME = {name: "RESUME=1 " + COMMANDS[name] for name in
          ("omniglot/5way-1shot-60k", "omniglot/20way-1shot-60k", "omniglot/5way-1shot-mamlpp",
           "omniglot/5way-5shot-60k")}

# how each one's checkpoint is evaluated while it trains (interim_eval.jsonl)
INTERIM = {name: "INTERIM=1 " + COMMANDS[name] for name in RESUME}


def run_name(run: Path) -> str:
    """``family/run`` for a folder of results/ (``results/sinusoid/preset`` -> ``sinusoid/preset``); the README
    names the run by its place in results/, wherever the command ran from."""
    return "/".join(Path(run).resolve().parts[-2:])


def _header(name: str, cfg: dict) -> list[str]:
    """The title and the command lines of a supervised run's README."""
    return [f"# {name}", "",
            f"Made by `{COMMANDS.get(name, '?')}` (config: `config.yaml`, seed {cfg['seed']}); "
            "README written by `rlmaml report supervised-summary results/" + name + "`.", ""]


def _threads(cfg: dict) -> str:
    n = int(cfg.get("num_threads", 1))
    return "one shared CPU thread" if n == 1 else f"{n} shared CPU threads"


def held_out_during_training(run: Path) -> list[str]:
    """The README table of ``interim_eval.jsonl``: held-out accuracy (or MSE) by iteration while training."""
    from ..supervised.evaluate import read_interim

    records = read_interim(run)
    if not records:
        return []
    name = run_name(run)
    steps = list(records[-1].get("accuracy_by_steps") or records[-1]["mse_by_steps"])
    metric = "accuracy" if "accuracy_by_steps" in records[-1] else "MSE"
    command = INTERIM.get(name, f"rlmaml supervised --evaluate-only results/{name} --interim")
    out = [(f"Held-out {metric} during training (`interim_eval.jsonl`): checkpoints evaluated on the tasks of the "
            f"final evaluation ({records[-1]['num_tasks']} held-out tasks, eval_seed {records[-1]['eval_seed']}), "
            f"the committed ones by `scripts/supervised_interim_history.sh results/{name}`, the current one by "
            f"`{command}`; nothing in training reads them."), "",
           "| meta-iterations | training hours | "
           + " | ".join(f"after {k} step{'' if k == '1' else 's'}" for k in steps) + " |",
           "|---|---|" + "---|" * len(steps)]
    for r in records:
        if metric == "accuracy":
            cells = [f"{100 * r['accuracy_by_steps'][k]:.2f} ± {100 * r['ci95_by_steps'][k]:.2f} %" for k in steps]
        else:
            cells = [f"{r['mse_by_steps'][k]:.3f} ± {r['mse_ci95_by_steps'][k]:.3f}" for k in steps]
        out.append(f"| {r['iterations']} | {r['train_seconds'] / 3600:.2f} | " + " | ".join(cells) + " |")
    return out + [""]


def in_progress(run: Path) -> str:
    """The README text of a supervised run still training (no eval.json yet): how far it is and how it goes on."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    name = run_name(run)
    # what the checkpoint holds: the iterations logged after it are redone on resume
    done = int(torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)["iteration"])
    lines = [r for r in lines if r["iteration"] < done]
    hours = lines[-1]["seconds"] / 3600 if lines else 0.0
    last = lines[-500:]
    accuracy = sum(r["query_accuracy"] for r in last) / len(last) if last else float("nan")
    out = [*_header(name, cfg),
           (f"**In progress:** {done} of {cfg['num_iterations']} meta-iterations of {cfg['meta_batch_size']} tasks, "
            f"{hours:.2f} h of training time on {_threads(cfg)} (engine {cfg.get('engine', 'loop')}, algorithm "
            f"{cfg['algorithm']}, first_order={cfg['first_order']}, inner step size {cfg['inner_step_size']}, "
            f"{cfg['inner_steps']} inner step(s) in training). No evaluation yet: `eval.json` comes at the end."), "",
           (f"Training query accuracy after the inner step(s), mean of the last {len(last)} meta-batches: "
            f"{100 * accuracy:.2f} % (the meta-batches' own tasks, not held-out ones)."), "",
           (f"Continue with `{RESUME.get(name, 'rlmaml supervised --resume results/' + name)}` (the checkpoint "
            f"`checkpoint.pt` is written every {cfg['checkpoint_every']} iterations)."), "",
           *held_out_during_training(run)]
    if (run / "learning_curve.png").is_file():
        out += ["![learning curve so far](learning_curve.png)", ""]
    return "\n".join(out)


#: Finn et al. (2017), Table 1: Omniglot accuracy of MAML by (ways, shots), mean ± 95 % CI
PAPER_OMNIGLOT = {(5, 1): "98.7 ± 0.4 %", (5, 5): "99.9 ± 0.1 %", (20, 1): "95.8 ± 0.3 %", (20, 5): "98.9 ± 0.2 %"}


def summarize(run: Path) -> str:
    """The README text of a supervised run directory (:func:`in_progress` while it has no eval.json)."""
    run = Path(run)
    if not (run / "eval.json").is_file() and (run / "checkpoint.pt").is_file():
        return in_progress(run)
    ev = json.loads((run / "eval.json").read_text())
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    bench = json.loads((run / "bench.json").read_text()) if (run / "bench.json").is_file() else None
    hours = lines[-1]["seconds"] / 3600 if lines else 0.0
    name = run_name(run)
    out = [*_header(name, cfg),
           (f"Meta-training: {ev['iterations']} iterations of {cfg['meta_batch_size']} tasks, "
           f"{hours:.2f} h of training time on {_threads(cfg)} "
           f"(engine {cfg.get('engine', 'loop')}, algorithm {cfg['algorithm']}, first_order={cfg['first_order']}, "
           f"inner step size {cfg['inner_step_size']}, {cfg['inner_steps']} inner step(s) in training)."), "",
           (f"Evaluation: {ev['num_tasks']} held-out tasks (eval_seed {ev['eval_seed']}), mean ± 95% CI "
           "(1.96·s/√n)."), ""]
    if "accuracy_mean" in ev:
        out += [f"{cfg['num_ways']}-way {cfg['num_shots']}-shot, {ev['num_query']} query images per class:", "",
                "| inner steps at test | accuracy |", "|---|---|"]
        for k, acc in ev["accuracy_by_steps"].items():
            out.append(f"| {k} | {100 * acc:.2f} ± {100 * ev['ci95_by_steps'][k]:.2f} % |")
        ref = PAPER_OMNIGLOT.get((cfg["num_ways"], cfg["num_shots"]))
        if ref is not None:
            budget = ("the same number of iterations" if ev["iterations"] >= 60000
                      else f"{ev['iterations']} of them, what the CPU budget allowed")
            out += ["", (f"Reference: Finn et al. (2017) report {ref} for {cfg['num_ways']}-way "
                    f"{cfg['num_shots']}-shot after 60000 meta-iterations; this run had {budget}.")]
    else:
        pre = ev["pretrained"]
        out += [f"K = {cfg['num_shots']} support points, MSE on {ev['num_query']} query points per task:", "",
                "| gradient steps at test | MAML | pretrained (joint regression) |", "|---|---|---|"]
        for k, mse in ev["mse_by_steps"].items():
            out.append(f"| {k} | {mse:.3f} ± {ev['mse_ci95_by_steps'][k]:.3f} | "
                       f"{pre['mse_by_steps'][k]:.3f} ± {pre['mse_ci95_by_steps'][k]:.3f} |")
    out += ["", *held_out_during_training(run), "![learning curve](learning_curve.png)", ""]
    if bench:
        out += [("Speed (`scripts/supervised_bench.sh`, `bench.json`): "
                f"{bench['rlmaml_first_order_batches_per_s']} meta-batches/s vs "
                f"{bench['naive_first_order_batches_per_s']} for a per-task deepcopy loop "
                f"(first-order both, ratio {bench['ratio']}); second-order "
                f"{bench['rlmaml_second_order_batches_per_s']} meta-batches/s."), ""]
    out += ["Files: `config.yaml`, `metrics.jsonl`, `eval.json`, `learning_curve.png`, `tb/` (TensorBoard), "
            "`checkpoint.pt` (resume with `rlmaml supervised --resume results/" + name + " num_iterations=N`).", ""]
    return "\n".join(out)
