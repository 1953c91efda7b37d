"""``results/manifest.yaml``: every run folder of results/ with its preset, overrides, seed, evaluation protocol
and paper reference; checked against the folders, and the source of the README's at-a-glance tables.

The tables sit in README.md between :data:`BEGIN` and :data:`END`; ``rlmaml report glance --write`` rewrites
them from the manifest and the eval.json files, ``rlmaml report glance --check`` fails when they differ.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

MANIFEST_NAME = "manifest.yaml"
BEGIN = "<!-- results-at-a-glance: generated from results/manifest.yaml by `rlmaml report glance --write` -->"
END = "<!-- end of results-at-a-glance -->"
RUN_FILES = ("config.yaml", "metrics.jsonl")  # a folder holding either is a run folder
RL_PROTOCOL = ("num_tasks", "seed", "episodes_per_task", "later_step_scale", "step_sizes")


def load(results_dir: str | Path) -> dict:
    """The parsed manifest of a results folder."""
    return yaml.safe_load((Path(results_dir) / MANIFEST_NAME).read_text())


def folders(results_dir: str | Path) -> list[str]:
    """Every folder under results/ that holds a run's or a study's files (``family/run``), sorted."""
    root = Path(results_dir)
    found = set()
    for path in root.rglob("*"):
        if path.is_file() and (path.name in RUN_FILES or path.name == "README.md" or
                               (path.name.startswith("eval") and path.suffix == ".json")):
            rel = path.parent.relative_to(root)
            if len(rel.parts) == 2:
                found.add(rel.as_posix())
    return sorted(found)


def checkpoint_count(path: str | Path) -> int | None:
    """The meta-batches (RL: ``batch``) or meta-iterations (supervised: ``iteration``) a checkpoint has done."""
    from ..checkpoint import load_checkpoint

    state = load_checkpoint(path)
    return state.get("batch", state.get("iteration"))


def eval_protocol(result: dict) -> dict:
    """The protocol an RL ``eval.json`` records, in the manifest's terms."""
    return {"num_tasks": result["num_tasks"], "grad_steps": max(result["grad_steps"]), "seed": result["seed"],
            "episodes_per_task": result["episodes_per_task"], "later_step_scale": result["later_step_scale"],
            "step_sizes": result["step_sizes"], "methods": list(result["methods"])}


def supervised_protocol(result: dict) -> dict:
    """The protocol a supervised ``eval.json`` records, in the manifest's terms."""
    return {"num_tasks": result["num_tasks"], "steps": result["eval_steps"], "seed": result["eval_seed"],
            "query": result["num_query"], "methods": ["maml"] + (["pretrained"] if "pretrained" in result else [])}


def problems(manifest: dict, results_dir: str | Path) -> list[str]:
    """What does not hold between the manifest and the folders; empty when everything does.

    Every manifest run exists with its config.yaml and README.md and the seed of its config; every study folder
    exists with a README.md; a run's ``batches`` is the count its checkpoint.pt holds (its ``batch`` or
    ``iteration``), so an unfinished run states how far it is in one place; every run or study folder is in the
    manifest; every eval*.json of a folder is listed with the protocol it records; every glance row names manifest
    runs and evaluations.
    """
    root = Path(results_dir)
    runs, studies = manifest.get("runs", {}), manifest.get("studies", {})
    out = []
    for name, entry in runs.items():
        folder = root / name
        for required in ("config.yaml", "README.md"):
            if not (folder / required).is_file():
                out.append(f"{name}: no {required}")
        if (folder / "config.yaml").is_file():
            seed = yaml.safe_load((folder / "config.yaml").read_text()).get("seed")
            if seed != entry.get("seed"):
                out.append(f"{name}: seed {entry.get('seed')} in the manifest, {seed} in config.yaml")
        if (folder / "checkpoint.pt").is_file():
            done = checkpoint_count(folder / "checkpoint.pt")
            if done != entry.get("batches"):
                out.append(f"{name}: batches {entry.get('batches')} in the manifest, {done} in checkpoint.pt")
    for name in studies:
        if not (root / name / "README.md").is_file():
            out.append(f"{name}: no README.md")
    listed = set(runs) | set(studies)
    out += [f"{name}: not in {MANIFEST_NAME}" for name in folders(root) if name not in listed]
    for name, entry in {**runs, **studies}.items():
        recorded = entry.get("evaluations") or {}
        present = sorted(p.name for p in (root / name).glob("eval*.json"))
        if sorted(recorded) != present:
            out.append(f"{name}: evaluations {sorted(recorded)} in the manifest, {present} in the folder")
        for file, protocol in recorded.items():
            path = root / name / file
            if not path.is_file():
                continue
            result = json.loads(path.read_text())
            actual = eval_protocol(result) if "methods" in result else supervised_protocol(result)
            if actual != protocol:
                out.append(f"{name}/{file}: protocol {protocol} in the manifest, {actual} in the file")
    for kind in ("rl", "supervised"):
        for row in manifest.get("glance", {}).get(kind, []):
            for run in row["runs"]:
                file = row.get("eval", "eval.json")
                if run not in runs or file not in (runs[run].get("evaluations") or {}):
                    out.append(f"glance row {row['label']!r}: {run}/{file} is not a manifest evaluation")
    return out


def _num(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}".replace("-", "−")


def _paper(value: float) -> str:
    return f"{value:g}".replace("-", "−")


def _read(results_dir: Path, run: str, file: str) -> dict:
    return json.loads((results_dir / run / file).read_text())


def rl_row(manifest: dict, results_dir: Path, row: dict, link_prefix: str) -> str:
    """One at-a-glance row: the mean over ``row["runs"]`` of the method's mean return after 0, 1, 2 steps."""
    file, method = row.get("eval", "eval.json"), row.get("method", "maml")
    means = np.array([_read(results_dir, run, file)["methods"][method]["mean"][:3] for run in row["runs"]])
    ours = " / ".join(_num(v) for v in means.mean(axis=0))
    reference = manifest["runs"][row["runs"][0]].get("paper")
    paper = " / ".join(_paper(v) for v in reference[:3]) if reference else row.get("paper_note", "—")
    link = row.get("link", f"{row['runs'][0]}/README.md")
    return f"| [{row['label']}]({link_prefix}{link}) | {ours} | {paper} | {row.get('note', '')} |"


def supervised_row(manifest: dict, results_dir: Path, row: dict, link_prefix: str) -> str:
    """One supervised row: MSE after every evaluated step (and the pretrained baseline's), or the accuracy after
    the last step with its 95% CI; then the paper's figure and MAML++'s published one (``row["mamlpp"]``)."""
    run = row["runs"][0]
    result = _read(results_dir, run, row.get("eval", "eval.json"))
    reference = manifest["runs"][run].get("paper")
    if "mse_by_steps" in result:
        ours = " / ".join(f"{v:.3f}" for v in result["mse_by_steps"].values())
        pre = result.get("pretrained")
        baseline = "pretrained " + " / ".join(f"{v:.3f}" for v in pre["mse_by_steps"].values()) if pre else "—"
    else:
        last = str(result["eval_steps"][-1])
        ours = (f"{100 * result['accuracy_by_steps'][last]:.2f} ± "
                f"{100 * result['ci95_by_steps'][last]:.2f} %")
        baseline = "—"
    if isinstance(reference, dict) and "accuracy_percent" in reference:
        paper = f"{reference['accuracy_percent']:g} ± {reference['ci95_percent']:g} %"
    else:
        paper = row.get("paper_note", "—")
    link = row.get("link", f"{run}/README.md")
    return f"| [{row['label']}]({link_prefix}{link}) | {ours} | {baseline} | {paper} | {row.get('mamlpp', '—')} |"


def metaworld_row(manifest: dict, results_dir: Path, row: dict, link_prefix: str) -> str:
    """One Meta-World row: over ``row["runs"]`` (seeds), MAML's held-out success rate before and after one step
    (the mean over seeds, with each seed's in brackets when several) and its return, against ``row["published"]``."""
    results = [_read(results_dir, run, row.get("eval", "eval.json"))["methods"]["maml"] for run in row["runs"]]
    success = np.array([r["success"]["mean"][:2] for r in results]) * 100
    returns = np.array([r["mean"][:2] for r in results])

    def cell(values):
        mean = f"{values.mean():.1f} %"
        return mean if len(values) == 1 else f"{mean} ({', '.join(f'{v:.0f}' for v in values)})"

    ours = f"{cell(success[:, 0])} → {cell(success[:, 1])}"
    ret = f"{returns[:, 0].mean():.0f} → {returns[:, 1].mean():.0f}"
    link = row.get("link", f"{row['runs'][0]}/README.md")
    seeds = f"{len(row['runs'])} seed{'s' if len(row['runs']) > 1 else ''}"
    return (f"| [{row['label']}]({link_prefix}{link}) | {seeds} | {ours} | {ret} | {row.get('published', '—')} | "
            f"{row.get('note', '')} |")


def glance_tables(manifest: dict, results_dir: str | Path, link_prefix: str = "results/") -> str:
    """The README's at-a-glance tables (markdown), links relative to the README (``link_prefix``)."""
    root = Path(results_dir)
    glance = manifest.get("glance", {})
    lines = ["| meta-RL task | ours: 0 / 1 / 2 steps | paper: 0 / 1 / 2 steps | |", "|---|---|---|---|"]
    lines += [rl_row(manifest, root, row, link_prefix) for row in glance.get("rl", [])]
    if glance.get("metaworld"):
        head = "| Meta-World (held-out tasks) | runs | success: 0 → 1 step | return: 0 → 1 step | published (MAML) | |"
        lines += ["", head, "|---|---|---|---|---|---|"]
        lines += [metaworld_row(manifest, root, row, link_prefix) for row in glance["metaworld"]]
    lines += ["", "| supervised benchmark | MAML (ours) | baseline | paper (MAML) | MAML++ (published) |",
              "|---|---|---|---|---|"]
    lines += [supervised_row(manifest, root, row, link_prefix) for row in glance.get("supervised", [])]
    return "\n".join(lines)


def current_block(text: str) -> str | None:
    """What README.md holds between the markers (None without them)."""
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def replace_block(text: str, block: str) -> str:
    """``text`` with the part between the markers replaced by ``block``."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"no {BEGIN!r} ... {END!r} block")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"
