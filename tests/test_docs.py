"""The README, the pages of docs/ and the results' pages point at files that exist, and every run directory carries
its config."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "results").rglob("*.md"))]
# markdown links and images `[text](target)`, and html `src="target"`
_LINK = re.compile(r"\]\(([^)\s]+)\)|src=\"([^\"]+)\"")


def local_links(text: str) -> list[str]:
    """Relative link targets in a markdown text, without `#anchors`; web addresses are left out."""
    targets = [a or b for a, b in _LINK.findall(text)]
    return [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_local_links_finds_markdown_and_html_targets():
    text = '[a](results/x.md#y) ![b](fig.png) <img src="v/c.png"> [w](https://e.org/z) [s](#top)'
    assert local_links(text) == ["results/x.md", "fig.png", "v/c.png"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_local_link_exists(doc):
    missing = [t for t in local_links(doc.read_text()) if not (doc.parent / t).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} links to missing files: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_quoted_results_or_scripts_path_exists(doc):
    """`results/...`, `scripts/...` and `docs/...` in backticks name files of the repository (or of the doc's
    folder)."""
    quoted = re.findall(r"`((?:results|scripts|docs)/[^`\s]*)`", doc.read_text())
    quoted = [q for q in quoted if not re.search(r"[<*{]", q)]  # `results/<family>/<run>/` is a pattern
    missing = [q for q in quoted if not (ROOT / q).exists() and not (doc.parent / q).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} names missing paths: {missing}"


def test_every_run_directory_has_its_config():
    runs = [p.parent for p in (ROOT / "results").rglob("metrics.jsonl")]
    assert runs
    assert [str(r.relative_to(ROOT)) for r in runs if not (r / "config.yaml").exists()] == []


def test_every_script_is_a_shell_driver_documented_in_reproducing():
    """scripts/ holds only shell drivers, and docs/reproducing.md names each of them."""
    page = (ROOT / "docs" / "reproducing.md").read_text()
    scripts = sorted(p.name for p in (ROOT / "scripts").iterdir() if p.is_file())
    assert [s for s in scripts if not s.endswith(".sh")] == []
    assert [s for s in scripts if f"scripts/{s}" not in page] == []
