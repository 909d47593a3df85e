"""Every repository path that a docstring, a comment or a page cites exists.

A path like ``causette/train/trainer.py`` or ``configs/model/demo.yaml`` in a docstring, a
comment, README.md, docs/ or bench/ must name a file or folder of the repository: a file that
moved leaves no stale pointer behind (links to code with line anchors are checked, more
strictly, by test_docs_commands.py).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CITED = re.compile(r"(?<![\w./-])((?:causette|tests|bench|configs|docs|data)/[\w./-]*\w)")
SOURCES = [*sorted((REPO / "causette").rglob("*.py")), *sorted((REPO / "tests").glob("*.py")),
           *sorted((REPO / "bench").glob("*.py")), REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
           *sorted((REPO / "bench").glob("*.md")), REPO / "data" / "README.md", *sorted((REPO / "configs").rglob("*.yaml")),
           REPO / "Makefile", REPO / "pyproject.toml"]
# Cited on purpose though absent: files a command writes, and this test's own examples.
WRITTEN = re.compile(r"^(data/(train|val)\.bin|data/meta\.json|bench/RESULTS\.md)$")


def cited_paths(text: str) -> list[tuple[int, str]]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        for m in CITED.finditer(line):
            path = m.group(1).rstrip(".").split("#")[0]
            rest = line[m.end():m.end() + 1]
            if "<" in path or rest == "*" or "XXX" in path:
                continue  # a pattern (tests/test_model*.py) or a placeholder (step_<N>)
            out.append((n, path))
    return out


def missing() -> list[str]:
    bad = []
    for src in SOURCES:
        if not src.is_file() or src == Path(__file__):
            continue
        for line, path in cited_paths(src.read_text(encoding="utf-8")):
            if not (REPO / path).exists() and not WRITTEN.match(path):
                bad.append(f"{src.relative_to(REPO)}:{line}: {path}")
    return bad


def test_cited_paths_exist():
    bad = missing()
    assert not bad, "paths cited but absent:\n" + "\n".join(bad)


def test_the_pattern_finds_paths():
    found = [p for _, p in cited_paths("see causette/train/trainer.py, `configs/demo.yaml`; runs/demo/data/x")]
    assert found == ["causette/train/trainer.py", "configs/demo.yaml"]
