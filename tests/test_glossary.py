"""One word per notion (docs/glossaire.md), and French typography, in the text a learner reads.

The glossary's "à éviter" column lists the variants we do not use; this test finds them in the
prose of README.md and docs/*.md: outside code blocks, inline code, link targets, web addresses
and English glosses in italics (*embedding*). It also checks French typography there: a
no-break space (U+00A0) before « : » and inside « », a narrow no-break space (U+202F) before
« ; ? ! », never an ordinary space or line break.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GLOSSARY = REPO / "docs" / "glossaire.md"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
SKIP = re.compile(
    r"`[^`]*`"  # inline code (may run over a line break)
    r"|\]\([^)]*\)"  # a link's target
    r"|<[^>\n]+>"  # an HTML tag or autolink
    r"|https?://\S+"
    r"|(?<![\w*])\*(?![\s*])[^*]+?(?<![\s*])\*(?![\w*])"  # *an English gloss in italics*
)


def prose(text: str) -> str:
    """``text`` with everything that is not prose blanked out (same length, same line breaks)."""
    lines = text.splitlines(keepends=True)
    fence = None
    for i, line in enumerate(lines):
        m = FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and line.strip() == m.group(1):
                fence = None
            lines[i] = blank(line)
        elif m:
            fence = m.group(1)
            lines[i] = blank(line)
    text = "".join(lines)
    return SKIP.sub(lambda m: blank(m.group(0)), text)


def blank(s: str) -> str:
    return re.sub(r"[^\n]", " ", s)


def rejected_variants() -> dict[str, str]:
    """``{variant: the word to use}`` from the glossary's table."""
    out = {}
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[2] and cells[0] not in ("en français",) and not set(cells[0]) <= set("-"):
            for variant in cells[2].split(","):
                out[variant.replace("(dans le texte)", "").strip()] = cells[0]
    return out


def variant_pattern(variant: str) -> re.Pattern:
    # the word and its plural, any case of the first letter; not a file name (tokenizer.md) nor
    # part of a name (hf-tokenizer, tie_embeddings)
    first, rest = variant[0], re.escape(variant[1:])
    return re.compile(rf"(?<![\w/.\-])[{first.lower()}{first.upper()}]{rest}s?(?![\w\-]|\.\w)")


def line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def test_the_glossary_lists_the_usual_variants():
    rejected = rejected_variants()
    assert {"jeton", "embedding", "checkpoint", "tokenizer", "préentraînement", "batch", "loss"} <= set(rejected)
    assert rejected["jeton"] == "token" and rejected["checkpoint"] == "point de contrôle"


def test_prose_blanking():
    text = "Un `tokenizer` et [le tokenizer](tokenizer.md) *embedding*\n```\njeton\n```\nun jeton.\n"
    kept = prose(text)
    assert len(kept) == len(text) and "jeton" not in kept.splitlines()[2] and "un jeton." in kept
    assert "tokenizer" in kept  # the link's text is prose
    assert not variant_pattern("tokenizer").search("voir tokenizer.md et hf-tokenizer")
    assert variant_pattern("jeton").search("des jetons")


@pytest.mark.parametrize("page", [p for p in PAGES if p != GLOSSARY], ids=lambda p: str(p.relative_to(REPO)))
def test_one_word_per_notion(page: Path):
    text = prose(page.read_text(encoding="utf-8"))
    problems = [
        f"{page.relative_to(REPO)}:{line_of(text, m.start())}: « {m.group(0)} » → « {word} » (docs/glossaire.md)"
        for variant, word in rejected_variants().items()
        for m in variant_pattern(variant).finditer(text)
    ]
    assert not problems, "\n".join(problems)


TYPOGRAPHY = [
    (re.compile(r"[ \n]:(?=[\s\n])"), "an ordinary space before « : » (U+00A0 goes there)"),
    (re.compile(r"[ \n][;?!](?=[\s\n»)]|$)"), "an ordinary space before « ; ? ! » (U+202F goes there)"),
    (re.compile(r"«[ \n]"), "an ordinary space after « (U+00A0 goes there)"),
    (re.compile(r"[ \n]»"), "an ordinary space before » (U+00A0 goes there)"),
]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_french_typography(page: Path):
    text = prose(page.read_text(encoding="utf-8"))
    problems = [
        f"{page.relative_to(REPO)}:{line_of(text, m.start())}: {what}: …{text[max(0, m.start() - 20):m.end() + 5]!r}"
        for pattern, what in TYPOGRAPHY
        for m in pattern.finditer(text)
    ]
    assert not problems, "\n".join(problems[:20]) + (f"\n… {len(problems)} in all" if len(problems) > 20 else "")
