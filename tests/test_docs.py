"""The README and the results' READMEs point at files that exist, and every run directory carries its config."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "results").glob("*/README.md"))]
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
    """`results/...` and `scripts/...` in backticks name files of the repository (or of the doc's folder)."""
    quoted = re.findall(r"`((?:results|scripts)/[^`\s]*)`", doc.read_text())
    missing = [q for q in quoted if not (ROOT / q).exists() and not (doc.parent / q).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} names missing paths: {missing}"


def test_every_run_directory_has_its_config():
    runs = [p.parent for p in (ROOT / "results").glob("*/metrics.jsonl")]
    assert runs
    assert [str(r.relative_to(ROOT)) for r in runs if not (r / "config.yaml").exists()] == []
