"""Plain text files: one document per file, or several separated by ``doc_separator``.

Also home to two small guessers that other readers share: the title of a text (its first
non-empty line) and its kind (:func:`guess_kind`: is this a play or prose?).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import BinaryIO, Iterator

from causette.corpus.document import Document
from causette.corpus.readers.context import ReadContext
from causette.corpus.readers.inputs import Item

MAX_TITLE_CHARS = 120
_SPLIT_CHUNK = 1 << 20

# A speaker at the start of a line, as printed plays write them: "ALCESTE.", "M. JOURDAIN :",
# "NOM : réplique", "ARGANTE, à part." (an upper-case name, then ".", ":" or ", lower case").
_UPPER = "A-ZÀ-ÖØ-ÞŒ"
_SPEAKER = re.compile(
    rf"^\s*(?P<name>[{_UPPER}][{_UPPER}'’.\- ]{{1,40}}?)\s*(?:[.:](?=\s|$)|,(?=\s+[a-zà-ÿ]))"
)
# Act and scene headings: "ACTE I", "SCÈNE PREMIÈRE", "Scène 3", "ACTE UNIQUE".
_ACT_OR_SCENE = re.compile(
    r"^\s*(?:ACTE|SC[ÈE]NE|Acte|Sc[èe]ne)\s+(?:[IVXLC]+\b|\d+|PREMI|UNIQUE|premi|unique)"
)
_ROMAN = re.compile(r"^[IVXLC]+$")

# guess_kind thresholds: at least 2 characters who each speak 3 times or more, and speaker
# lines are at least 5 % of the lines (or there is an act/scene heading).
_MIN_RECURRING_SPEAKERS = 2
_MIN_SPEECHES_EACH = 3
_MIN_SPEAKER_SHARE = 0.05


def guess_kind(text: str) -> str:
    """``"theatre"`` when ``text`` looks like a play, else ``"prose"``.

    A play is recognised by its speaker lines: upper-case names at the start of lines
    ("ALCESTE.", "PHILINTE : Mais..."), used again and again by the *same* few characters.
    Recurrence is what tells a play from a novel whose chapter titles are also in capitals
    ("UNE VEILLÉE."): chapter titles never repeat. The check is cheap and only looks at line
    starts; it cannot recognise a play printed without speaker names.
    """
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return "prose"
    speakers: Counter[str] = Counter()
    headings = 0
    for line in lines:
        if _ACT_OR_SCENE.match(line):
            headings += 1
            continue
        m = _SPEAKER.match(line)
        if m:
            name = m.group("name").strip(" .")
            if sum(c.isalpha() for c in name) >= 2 and not _ROMAN.match(name):
                speakers[name] += 1
    recurring = sum(1 for n in speakers.values() if n >= _MIN_SPEECHES_EACH)
    share = sum(speakers.values()) / len(lines)
    if recurring >= _MIN_RECURRING_SPEAKERS and (share >= _MIN_SPEAKER_SHARE or headings > 0):
        return "theatre"
    return "prose"


def first_line_title(text: str) -> str:
    """The first non-empty line, stripped and cut to 120 characters: a good-enough title."""
    for line in text.split("\n"):
        line = line.strip()
        if line:
            return line[:MAX_TITLE_CHARS].rstrip()
    return ""


def text_document(ctx: ReadContext, item: Item, doc_id: str, text: str, encoding: str) -> Document:
    """A Document for a piece of plain text, with the guessed title and kind."""
    return Document(
        id=doc_id,
        text=text,
        source=item.name,
        title=first_line_title(text),
        kind=ctx.kind(guess_kind(text)),
        meta={"encoding": encoding},
    )


def read_text(item: Item, ctx: ReadContext) -> Iterator[Document]:
    """Yield the documents of a plain text file (one, or one per ``doc_separator`` piece)."""
    separator = ctx.src.doc_separator
    produced = 0
    if not separator:  # one document: in memory by definition
        data = ctx.read_whole(item)
        if data is None:
            return
        text, encoding = ctx.decode(data)
        if text.strip():
            produced = 1
            yield text_document(ctx, item, item.stem, text.strip("\r\n"), encoding)
    else:
        with item.open() as f:
            for piece in split_stream(f, separator.encode("utf-8")):
                text, encoding = ctx.decode(piece)
                text = text.strip("\r\n")
                if not text.strip():
                    continue  # nothing between two separators: no text lost
                produced += 1
                yield text_document(ctx, item, f"{item.stem}#{produced}", text, encoding)
    if produced == 0:
        ctx.problem(item.name, "empty file (only white space)")


def split_stream(f: BinaryIO, separator: bytes, chunk: int = _SPLIT_CHUNK) -> Iterator[bytes]:
    """Split a binary stream at ``separator`` without reading it whole (memory: one piece + 1 MB).

    Windows line ends (``\\r\\n``) are turned into ``\\n`` first, so a separator written with
    ``\\n`` also splits a file saved on Windows. Working on bytes is safe for UTF-8, CP1252 and
    Latin-1 as long as the separator is ASCII (each piece is decoded on its own afterwards);
    a non-ASCII separator is matched in its UTF-8 form only.
    """
    separator = separator.replace(b"\r\n", b"\n")
    buffer = bytearray()
    while block := f.read(chunk):
        if block.endswith(b"\r"):
            block += f.read(1)  # never cut a "\r\n" in two
        search_from = max(0, len(buffer) - len(separator) + 1)
        buffer += block.replace(b"\r\n", b"\n")
        while (at := buffer.find(separator, search_from)) >= 0:
            yield bytes(buffer[:at])
            del buffer[: at + len(separator)]
            search_from = 0
    yield bytes(buffer)
