"""Project Gutenberg plain-text books: keep the book, drop the header, the licence and the credits.

A Gutenberg file is: a header (title, author, release date, sometimes a long "small print"
licence in old files), a start marker line, maybe a "Produced by ..." credit paragraph, the
book, an end marker line, then the full licence. Only the book must reach the model: a
language model trained on a thousand copies of the licence recites it.

The markers changed over the decades and exist in English and French; we match them
case-insensitively, with or without spaces around the ``***``:

- start: ``*** START OF THE PROJECT GUTENBERG EBOOK X ***``, ``***START OF THIS PROJECT
  GUTENBERG EBOOK``, ``*** DÉBUT DU PROJET GUTENBERG ...``, and the old ``*END*THE SMALL PRINT!``
  line that closed the licence at the top of 1990s files;
- end: ``*** END OF THE/THIS PROJECT GUTENBERG ...``, ``End of the Project Gutenberg EBook``,
  ``End of Project Gutenberg's ...``, ``Fin du Projet Gutenberg ...``, ``FIN DE CE LIVRE ...``;
- licence sections, cut even when no end marker was found: ``*** START: FULL LICENSE ***``,
  ``THE FULL PROJECT GUTENBERG LICENSE``, ``PLEASE READ THIS BEFORE YOU DISTRIBUTE``...
"""

from __future__ import annotations

import re
from typing import Iterator

from causette.corpus.document import Document
from causette.corpus.readers.context import ReadContext
from causette.corpus.readers.inputs import Item
from causette.corpus.readers.text import first_line_title, guess_kind

# Gutenberg markers are looked for in the first 20 KB to choose this reader ...
SNIFF_BYTES = 20_000
# ... and the start marker in the first 100,000 characters (old licences are ~15 KB long).
HEADER_SEARCH_CHARS = 100_000

_FLAGS = re.IGNORECASE | re.MULTILINE
_SNIFF = re.compile(rb"projec?t\s+gutenberg", re.IGNORECASE)
_START = re.compile(
    r"^[^\S\n]*\*+[^\S\n]*(?:START|D[ÉE]BUT)\b[^\n]*GUTENBERG[^\n]*$"  # *** START OF ... GUTENBERG ... ***
    r"|^[^\n]*\*END\*[^\S\n]*THE[^\S\n]+SMALL[^\S\n]+PRINT[^\n]*$",  # *END*THE SMALL PRINT! ... (old files)
    _FLAGS,
)
_END = re.compile(
    r"^[^\S\n]*(?:"
    r"\*+[^\S\n]*(?:END|FIN)\b[^\n]*GUTENBERG"  # *** END OF THE PROJECT GUTENBERG EBOOK ***
    # End of the Project Gutenberg EBook / End of Project Gutenberg's ...
    r"|End[^\S\n]+of[^\S\n]+(?:the[^\S\n]+|this[^\S\n]+)?Project[^\S\n]+Gutenberg"
    r"|Fin\b[^\n]*Proje[ct]t?[^\S\n]+Gutenberg"  # Fin du Projet Gutenberg / Fin de Project Gutenberg
    r"|FIN[^\S\n]+DE[^\S\n]+CE[^\S\n]+LIVRE"
    r")",
    _FLAGS,
)
_LICENCE = re.compile(
    r"^[^\S\n]*(?:"
    r"\*+[^\S\n]*START:?[^\S\n]*FULL[^\S\n]+LICEN[CS]E"
    r"|THE[^\S\n]+FULL[^\S\n]+PROJECT[^\S\n]+GUTENBERG[^\S\n]+LICEN[CS]E"
    r"|PLEASE[^\S\n]+READ[^\S\n]+THIS[^\S\n]+BEFORE[^\S\n]+YOU[^\S\n]+DISTRIBUTE"
    r"|Updated[^\S\n]+editions[^\S\n]+will[^\S\n]+replace[^\S\n]+the[^\S\n]+previous[^\S\n]+one"
    r")",
    _FLAGS,
)
# Credit paragraphs right after the start marker ("Produced by ...", "Produit par ...").
_CREDITS = re.compile(
    r"^\s*\(?\s*(?:produced\s+by|produit\s+par"
    r"|this\s+(?:e-?text|e-?book|file)\s+was\s+(?:produced|prepared|made)"
    r"|e-?text\s+prepared\s+by|transcribed\s+(?:by|from)|prepared\s+by|numérisé\s+par|préparé\s+par"
    r"|ce\s+livre\s+(?:électronique\s+)?a\s+été)",
    re.IGNORECASE,
)
_MAX_CREDIT_PARAGRAPHS = 3
# Without a start marker: leading paragraphs that are Gutenberg boilerplate, not the book.
_BOILERPLATE = re.compile(
    r"gutenberg|e-?book|e-?text|licen[cs]e|^\s*(?:title|titre|author|auteur|release\s+date|posting\s+date"
    r"|last\s+updated|language|langue|character\s+set|produced\s+by|produit\s+par)\s*:",
    _FLAGS,
)
_MAX_BOILERPLATE_PARAGRAPHS = 40
_TITLE = re.compile(r"^[^\S\n]*(?:title|titre)[^\S\n]*:[^\S\n]*(.+(?:\n[^\S\n]+\S.*)*)", _FLAGS)
_AUTHOR = re.compile(r"^[^\S\n]*(?:author|auteur)[^\S\n]*:[^\S\n]*(.+)", _FLAGS)


def looks_like_gutenberg(head: bytes) -> bool:
    """Does the start of a text file mention Project Gutenberg (or "Projet Gutenberg")?"""
    return _SNIFF.search(head[:SNIFF_BYTES]) is not None


def _drop_leading_paragraphs(text: str, pattern: re.Pattern, limit: int) -> str:
    """Remove up to ``limit`` paragraphs at the top of ``text`` that match ``pattern``."""
    text = text.lstrip("\n")
    for _ in range(limit):
        paragraphs = re.split(r"\n[^\S\n]*\n", text, maxsplit=1)
        if not paragraphs[0].strip() or not pattern.search(paragraphs[0]):
            break
        text = paragraphs[1].lstrip("\n") if len(paragraphs) > 1 else ""
    return text


def split_gutenberg(text: str) -> tuple[str, str, dict]:
    """Split a Gutenberg file into ``(header, body, facts)``.

    ``facts`` holds ``gutenberg_start_found`` and ``gutenberg_end_found``. Without a start
    marker, leading boilerplate paragraphs are dropped instead; without an end marker, the body
    runs to the end of the file, minus any licence section found there.
    """
    starts = list(_START.finditer(text, 0, HEADER_SEARCH_CHARS))
    if starts:
        header, body = text[: starts[-1].start()], text[starts[-1].end():]
        body = _drop_leading_paragraphs(body, _CREDITS, _MAX_CREDIT_PARAGRAPHS)
    else:
        body = _drop_leading_paragraphs(text, _BOILERPLATE, _MAX_BOILERPLATE_PARAGRAPHS)
        header = text[: len(text) - len(body)]
    end = _END.search(body)
    licence = _LICENCE.search(body)
    cut = min((m.start() for m in (end, licence) if m is not None), default=len(body))
    facts = {"gutenberg_start_found": bool(starts), "gutenberg_end_found": end is not None}
    return header, body[:cut].strip("\n"), facts


def _header_field(pattern: re.Pattern, header: str) -> str:
    m = pattern.search(header)
    return " ".join(m.group(1).split()) if m else ""


def read_gutenberg(item: Item, ctx: ReadContext) -> Iterator[Document]:
    """Yield the one book of a Project Gutenberg text file, boilerplate removed."""
    data = ctx.read_whole(item)
    if data is None:
        return
    text, encoding = ctx.decode(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    header, body, facts = split_gutenberg(text)
    if not body.strip():
        ctx.problem(item.name, "no text left once the Project Gutenberg header and licence are removed")
        return
    meta: dict = {"encoding": encoding, **facts}
    author = _header_field(_AUTHOR, header)
    if author:
        meta["author"] = author
    yield Document(
        id=item.stem,
        text=body,
        source=item.name,
        title=_header_field(_TITLE, header) or first_line_title(body),
        kind=ctx.kind(guess_kind(body)),
        meta=meta,
    )
