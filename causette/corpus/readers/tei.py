"""TEI XML files: plays (FreDraCor, Théâtre classique) and novels (ELTeC) as plain text.

TEI is the XML of digital humanities: a ``teiHeader`` (metadata: title, author, licence,
list of characters...) and a ``text`` with the work itself. We keep the work and drop the
header (except the title and author lines we print on top). A play is rendered the way a
reader expects it on paper::

    Le Misanthrope
    Molière

    ACTE I

    SCÈNE PREMIÈRE. Philinte, Alceste.
    PHILINTE : Qu'est-ce donc ? Qu'avez-vous ?
    ALCESTE : Laissez-moi, je vous prie.
    PHILINTE : Dans vos brusques chagrins je ne puis vous comprendre,
    Et quoique amis enfin, je suis tout des premiers...

- a speech (``<sp>``) starts with its speaker in capitals and " : "; verse lines (``<l>``)
  keep one line each; prose (``<p>``, ``<s>``) and stage directions inside the speech are
  joined by spaces (a direction right before a verse line goes at the start of that line);
- stage directions (``<stage>``) are kept as ``(...)`` or dropped, as the source says; a
  speaker written "ARGANTE, à part." gives the speaker "ARGANTE" and the direction "(à part.)";
- act and scene headings (``<head>``) stand on their own line after a blank line;
- editorial notes (``<note>``), page breaks and running heads never reach the text;
- only ``<body>`` is rendered: ``<front>`` (title page, cast list, dedication, printing
  privilege) and ``<back>`` (appendices, notes) are not part of the play or the novel.

A novel (no ``<sp>`` at all) is rendered the same way: headings after a blank line, one
paragraph per line. Whitespace inside elements is indentation from pretty-printing: every run
of white space becomes one space.

Parsing uses the standard library's ElementTree, which never fetches external entities or
DTDs (an ``<!ENTITY x SYSTEM "file:///...">`` stays undefined and the file is reported as
malformed), so a hostile file cannot read other files or reach the network.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Iterator

from causette.corpus.document import Document
from causette.corpus.readers.context import ReadContext
from causette.corpus.readers.encoding import UTF8_BOM, decode_bytes
from causette.corpus.readers.inputs import Item
from causette.corpus.readers.tei_render import Renderer, collapse, local

_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_EVENT_TYPES = ("written", "premiere", "print")
_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_POSITION = re.compile(r": line \d+, column \d+$")
_ELTEC_SUFFIX = re.compile(r"\s*[:;,-]?\s*ELTeC\s+[ée]dition\s*$", re.IGNORECASE)
_LIFE_DATES = re.compile(r"\s*\(\s*\d{3,4}\s*-\s*\d{0,4}\s*\)\s*$")


def _children(elem: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in elem if local(child.tag) == name]


def _child(elem: ET.Element | None, *path: str) -> ET.Element | None:
    """Follow a path of direct children by local name (``_child(header, "fileDesc", "titleStmt")``)."""
    for name in path:
        if elem is None:
            return None
        elem = next((c for c in elem if local(c.tag) == name), None)
    return elem

def _title(title_stmt: ET.Element | None, renderer: Renderer) -> str:
    """``titleStmt/title``, preferring ``type="main"``, then an untyped one, then the first."""
    titles = _children(title_stmt, "title") if title_stmt is not None else []
    if not titles:
        return ""
    # (careful: an ElementTree element without children is falsy, hence the "is None" tests)
    best = next((t for t in titles if t.get("type") == "main"), None)
    if best is None:
        best = next((t for t in titles if t.get("type") is None), titles[0])
    return _ELTEC_SUFFIX.sub("", renderer.inline(best))


def _author_name(author: ET.Element) -> str:
    """An author's name: the first plain ``persName`` (a real name rather than a pen name), else the text."""
    names = _children(author, "persName")
    if names:
        chosen = next((n for n in names if n.get("type") is None), names[0])
        return collapse(" ".join(chosen.itertext()))
    parts = [author.text or ""]
    for child in author:
        if local(child.tag) not in ("idno", "note"):
            parts.append(" ".join(child.itertext()))
        parts.append(child.tail or "")
    return _LIFE_DATES.sub("", collapse(" ".join(parts)))


def _year(root: ET.Element, header: ET.Element | None) -> int | None:
    """A year for the work, where it is cheap to find: the earliest of written/premiere/print
    events (DraCor's ``standOff``), else the first edition's date, else any source date."""
    years: list[int] = []
    for part in (header, _child(root, "standOff")):
        for event in part.iter() if part is not None else ():
            if local(event.tag) == "event" and event.get("type") in _EVENT_TYPES:
                m = _YEAR.search(event.get("when") or event.get("notBefore") or "")
                if m:
                    years.append(int(m.group(1)))
    if years:
        return min(years)
    source_desc = _child(header, "fileDesc", "sourceDesc")
    if source_desc is None:
        return None
    first = [b for b in source_desc.iter() if local(b.tag) == "bibl" and b.get("type") == "firstEdition"]
    for scope in (first[0] if first else None, source_desc):
        for date in scope.iter() if scope is not None else ():
            if local(date.tag) == "date":
                m = _YEAR.search(date.get("when") or " ".join(date.itertext()))
                if m:
                    return int(m.group(1))
    return None


def _outer_bodies(elem: ET.Element) -> list[ET.Element]:
    """The ``<body>`` elements under ``elem`` that are not inside another body.

    ``<text><group><text><body>`` holds several bodies; a letter read on stage
    (``<floatingText><body>``) is inside the play's body and is rendered with it, once.
    """
    if local(elem.tag) == "body":
        return [elem]
    return [body for child in elem for body in _outer_bodies(child)]


def _parse(data: bytes, ctx: ReadContext) -> tuple[ET.Element, str]:
    """Parse XML bytes; returns the root and the encoding used.

    Files that declare their encoding (or have a BOM) are decoded by the XML parser itself.
    A file that claims UTF-8 (or nothing, which means UTF-8 in XML) but is not valid UTF-8 is
    decoded with the usual guess (CP1252, Latin-1) instead of being rejected.
    """
    if ctx.recoded:  # converted to UTF-8 from UTF-16/32: the declaration, if any, is no longer true
        ctx.tally.add(data, ctx.recoded)
        return ET.fromstring(data.decode("utf-8")), ctx.recoded
    declared = _XML_ENCODING.match(data[:400])
    declared_name = declared.group(1).decode("ascii").lower().replace("_", "-") if declared else ""
    if data.startswith(UTF8_BOM):
        encoding = "utf-8-sig"
    elif declared_name and declared_name not in ("utf-8", "utf8"):
        encoding = declared_name
    else:
        try:
            data.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            text, encoding = decode_bytes(data)
            ctx.tally.add(data, encoding)
            return ET.fromstring(text), encoding
    root = ET.fromstring(data)
    ctx.tally.add(data, encoding)
    return root, encoding


def read_tei(item: Item, ctx: ReadContext) -> Iterator[Document]:
    """Yield the one play or novel of a TEI file (a problem if it is malformed or has no body)."""
    data = ctx.read_whole(item)
    if data is None:
        return
    try:
        root, encoding = _parse(data, ctx)
    except ET.ParseError as e:
        reason = _POSITION.sub("", str(e))
        ctx.problem(item.name, f"malformed XML: {reason}", line=e.position[0])
        return
    except (LookupError, ValueError) as e:  # an encoding name Python does not know
        ctx.problem(item.name, f"malformed XML: {e}")
        return
    del data
    text_elem = _child(root, "text") if local(root.tag) != "text" else root
    bodies = _outer_bodies(text_elem) if text_elem is not None else []
    if not bodies:
        ctx.problem(item.name, "no TEI <text><body> found")
        return

    renderer = Renderer(keep_stage=ctx.src.stage_directions == "keep")
    header = _child(root, "teiHeader")
    title_stmt = _child(header, "fileDesc", "titleStmt")
    title = _title(title_stmt, renderer)
    authors = [_author_name(a) for a in _children(title_stmt, "author")] if title_stmt is not None else []
    author = ", ".join(a for a in authors if a)
    renderer.line(title)
    renderer.line(author)
    renderer.blank()
    head_lines = len(renderer.lines)
    for body in bodies:
        renderer.blocks(body)
    if len(renderer.lines) == head_lines:
        ctx.problem(item.name, "the TEI <body> holds no text")
        return

    is_play = any(local(e.tag) == "sp" for body in bodies for e in body.iter())
    meta: dict = {"encoding": encoding}
    if author:
        meta["author"] = author
    year = _year(root, header)
    if year is not None:
        meta["year"] = year
    yield Document(
        id=item.stem,
        text=renderer.text(),
        source=item.name,
        title=title,
        kind=ctx.kind("theatre" if is_play else "prose"),
        meta=meta,
    )
