"""The documentation cites only what the repository holds: every results/ path and every
relative link in README.md, docs/, results/README.md and tests/README.md exists."""

import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "results" / "README.md", ROOT / "tests" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RESULT_PATH = re.compile(r"results/[\w./{},*-]*[\w}*]")
LINK = re.compile(r"\]\(([^)#\s]+)\)")


def expand(path: str) -> list[str]:
    """``a_{x,y}.png`` -> ``[a_x.png, a_y.png]`` (shell brace expansion, several groups)."""
    parts = re.split(r"\{([^}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def cited(doc: Path) -> list[tuple[str, Path]]:
    text = doc.read_text()
    found = [(p, ROOT / q) for p in RESULT_PATH.findall(text) for q in expand(p)]
    found += [(p, (doc.parent / p)) for p in LINK.findall(text) if "://" not in p]
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_cited_path_exists(doc):
    missing = [name for name, path in cited(doc) if not (any(path.parent.glob(path.name)) if "*" in path.name else path.exists())]
    assert not missing, f"{doc.relative_to(ROOT)} cites what the repository does not hold: {missing}"


def test_expand_braces():
    assert expand("results/fig_{a,b}_{1,2}.png") == ["results/fig_a_1.png", "results/fig_a_2.png",
                                                      "results/fig_b_1.png", "results/fig_b_2.png"]


def test_no_path_outside_the_repository():
    for doc in DOCS:
        assert "../shared" not in doc.read_text(), doc
