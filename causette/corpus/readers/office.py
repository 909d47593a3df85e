"""E-books and word-processor files as plain text: EPUB, DOCX (Word), ODT (LibreOffice, OpenOffice).

All three are zip archives of XML files, which the standard library reads:

- **EPUB**: ``META-INF/container.xml`` names the package file (``.opf``), whose *spine* lists
  the book's XHTML files in reading order; each is rendered one paragraph or heading a line
  (an HTML parser, which also knows ``&nbsp;`` and the other HTML entities), chapters separated
  by a blank line;
- **DOCX**: ``word/document.xml``, one line per paragraph (``w:p``), its text runs (``w:t``),
  tabs and line breaks (deleted text and field codes are other elements, never read);
- **ODT**: ``content.xml``, one line per paragraph or heading (``text:p``, ``text:h``), with
  its spaces (``text:s``), tabs and line breaks; notes and comments are dropped, as in TEI.

Each file is one document; its title is the one in its metadata, else its first line. Other
zip-based office files (spreadsheets, presentations, drawings) hold no running text: they are
refused with one line saying what to do. Parsing never fetches anything (ElementTree resolves
no external entity), and no member is read beyond ``MAX_DOCUMENT_BYTES``.
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
from html.parser import HTMLParser
from typing import Iterator
from urllib.parse import unquote

from causette.corpus.document import Document
from causette.corpus.readers import context
from causette.corpus.readers.context import ReadContext
from causette.corpus.readers.inputs import Item
from causette.corpus.readers.tei_render import local
from causette.corpus.readers.text import first_line_title, guess_kind

# What a zip archive is, from its "mimetype" member (EPUB, OpenDocument) or its members (Office Open XML).
_OPENDOCUMENT = "application/vnd.oasis.opendocument."
_REFUSED = {
    "xlsx": "a spreadsheet (XLSX) holds no running text: save the column of text as CSV",
    "ods": "a spreadsheet (ODS) holds no running text: save the column of text as CSV",
    "pptx": "a presentation (PPTX) holds no running text: export its text (PDF or plain text) first",
    "odp": "a presentation (ODP) holds no running text: export its text first",
}
_MAX_SPACES = 100  # text:s c="..." in ODT: more is not text (and could be a billion)
_SPACES = re.compile(r"[ \t\r\n]+")


def container_kind(item: Item) -> str | None:
    """``"epub"``, ``"docx"``, ``"odt"`` (read), ``"xlsx"``, ``"ods"``, ``"pptx"``, ``"odp"`` or
    another OpenDocument kind (refused), or ``None`` for a plain zip archive of files."""
    with item.seekable() as target, zipfile.ZipFile(target) as archive:
        names = set(archive.namelist())
        if "mimetype" in names:
            with archive.open("mimetype") as f:
                mime = f.read(200).decode("ascii", "replace").strip()
            if mime == "application/epub+zip":
                return "epub"
            if mime.startswith(_OPENDOCUMENT):
                kind = mime[len(_OPENDOCUMENT):]
                return {"text": "odt", "spreadsheet": "ods", "presentation": "odp"}.get(kind, f"OpenDocument {kind}")
        if "META-INF/container.xml" in names and any(n.endswith(".opf") for n in names):
            return "epub"
        if "[Content_Types].xml" in names:
            if "word/document.xml" in names:
                return "docx"
            if "xl/workbook.xml" in names:
                return "xlsx"
            if "ppt/presentation.xml" in names:
                return "pptx"
    return None


def read_container(item: Item, kind: str, ctx: ReadContext) -> Iterator[Document]:
    """The one document of an EPUB, DOCX or ODT file; a problem for the kinds that hold no text."""
    if kind not in _READERS:
        why = _REFUSED.get(kind, f"an {kind} file holds no running text: export its text first")
        ctx.problem(item.name, f"{why}, skipped")
        return
    with item.seekable() as target, zipfile.ZipFile(target) as archive:
        try:
            text, meta = _READERS[kind](archive, ctx)
        except (KeyError, ET.ParseError, _TooBig) as e:
            ctx.problem(item.name, f"not a readable {kind.upper()} file ({_reason(e)}), skipped")
            return
    text = text.strip("\n")
    if not text.strip():
        ctx.problem(item.name, f"no text in this {kind.upper()} file")
        return
    title = meta.pop("title", "") or first_line_title(text)
    yield Document(id=item.stem, text=text, source=item.name, title=title,
                   kind=ctx.kind(guess_kind(text)), meta={"encoding": "utf-8", **meta})


class _TooBig(Exception):
    pass


def _reason(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"no {error.args[0]} inside"
    if isinstance(error, ET.ParseError):
        return f"malformed XML: {error}"
    return str(error)


def _member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes, at most MAX_DOCUMENT_BYTES (a zip bomb is refused, not inflated)."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise KeyError(name) from None
    with archive.open(info) as f:
        data = f.read(context.MAX_DOCUMENT_BYTES + 1)
    if len(data) > context.MAX_DOCUMENT_BYTES:
        raise _TooBig(f"{name} is over {context.MAX_DOCUMENT_BYTES // 2**20} MiB")
    return data


def _metadata(root: ET.Element | None) -> dict:
    """Dublin Core title and author(s) (``dc:title``, ``dc:creator``) found under ``root``."""
    meta: dict = {}
    if root is None:
        return meta
    titles = [" ".join("".join(e.itertext()).split()) for e in root.iter() if local(e.tag) == "title"]
    authors = [" ".join("".join(e.itertext()).split()) for e in root.iter() if local(e.tag) in ("creator", "initial-creator")]
    if titles and titles[0]:
        meta["title"] = titles[0]
    if any(authors):
        meta["author"] = ", ".join(dict.fromkeys(a for a in authors if a))
    return meta


# ----------------------------------------------------------------------------- EPUB
_BLOCK_TAGS = frozenset({
    "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "blockquote", "section", "article",
    "header", "footer", "aside", "dd", "dt", "pre", "figcaption", "table", "ul", "ol", "dl", "hr", "body",
})
_SKIPPED_TAGS = frozenset({"head", "script", "style", "title", "svg", "math", "template"})


class _HtmlText(HTMLParser):
    """The text of an (X)HTML page: one line per paragraph or heading, white space collapsed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._words: list[str] = []
        self._skipping = 0

    def _end_line(self) -> None:
        line = _SPACES.sub(" ", "".join(self._words)).strip()
        if line:
            self.lines.append(line)
        self._words = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag == "br" or tag in _BLOCK_TAGS:  # <br> ends a line too (verse)
            self._end_line()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self._end_line()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._words.append(data)

    def text(self) -> list[str]:
        self._end_line()
        return self.lines


def _epub(archive: zipfile.ZipFile, ctx: ReadContext) -> tuple[str, dict]:
    container = ET.fromstring(_member(archive, "META-INF/container.xml"))
    rootfile = next((e.get("full-path") for e in container.iter() if local(e.tag) == "rootfile"), None)
    if not rootfile:
        raise KeyError("rootfile in META-INF/container.xml")
    package = ET.fromstring(_member(archive, rootfile))
    folder = posixpath.dirname(rootfile)
    manifest = {e.get("id"): e.get("href", "") for e in package.iter() if local(e.tag) == "item"}
    spine = [e for e in package.iter() if local(e.tag) == "itemref" and e.get("linear") != "no"]
    chapters: list[str] = []
    for ref in spine:
        href = manifest.get(ref.get("idref"))
        if not href:
            continue
        name = posixpath.normpath(posixpath.join(folder, unquote(href.split("#")[0])))
        page, _ = ctx.decode(_member(archive, name))
        parser = _HtmlText()
        parser.feed(page)
        parser.close()
        lines = parser.text()
        if lines:
            chapters.append("\n".join(lines))
    metadata = next((e for e in package if local(e.tag) == "metadata"), None)
    return "\n\n".join(chapters), _metadata(metadata)


# ----------------------------------------------------------------------------- DOCX


def _docx(archive: zipfile.ZipFile, ctx: ReadContext) -> tuple[str, dict]:
    root = ET.fromstring(_member(archive, "word/document.xml"))
    ctx.tally.add(b"", "utf-8")
    lines: list[str] = []
    _docx_blocks(root, lines)
    try:
        meta = _metadata(ET.fromstring(_member(archive, "docProps/core.xml")))
    except (KeyError, ET.ParseError):
        meta = {}
    return "\n".join(lines), meta


def _docx_blocks(elem: ET.Element, lines: list[str]) -> None:
    for child in elem:
        if local(child.tag) == "p":
            words: list[str] = []
            _docx_runs(child, words, lines)
            lines.append("".join(words).strip())
        else:  # body, tables, rows, cells, sections...
            _docx_blocks(child, lines)


def _docx_runs(elem: ET.Element, words: list[str], lines: list[str]) -> None:
    for child in elem:
        tag = local(child.tag)
        if tag == "t":
            words.append(child.text or "")
        elif tag == "tab":
            words.append("\t")
        elif tag in ("br", "cr"):
            words.append("\n")
        elif tag == "p":  # a paragraph in a text box inside this one: a line of its own
            inner: list[str] = []
            _docx_runs(child, inner, lines)
            lines.append("".join(inner).strip())
        else:  # runs (w:r), hyperlinks, smart tags, insertions...; w:delText and w:instrText are never "t"
            _docx_runs(child, words, lines)


# ----------------------------------------------------------------------------- ODT
_ODT_DROPPED = frozenset({"note", "annotation", "tracked-changes", "sequence-decls", "bookmark", "soft-page-break"})


def _odt(archive: zipfile.ZipFile, ctx: ReadContext) -> tuple[str, dict]:
    root = ET.fromstring(_member(archive, "content.xml"))
    ctx.tally.add(b"", "utf-8")
    body = next((e for e in root.iter() if local(e.tag) == "body"), None)
    if body is None:
        raise KeyError("office:body in content.xml")
    lines: list[str] = []
    _odt_blocks(body, lines)
    try:
        meta = _metadata(ET.fromstring(_member(archive, "meta.xml")))
    except (KeyError, ET.ParseError):
        meta = {}
    return "\n".join(lines), meta


def _odt_blocks(elem: ET.Element, lines: list[str]) -> None:
    for child in elem:
        tag = local(child.tag)
        if tag in ("p", "h"):
            words: list[str] = []
            _odt_inline(child, words)
            lines.append("".join(words).strip(" "))
        elif tag not in _ODT_DROPPED:  # lists, sections, tables, frames...
            _odt_blocks(child, lines)


def _odt_inline(elem: ET.Element, words: list[str]) -> None:
    """The words of a paragraph: white space in the XML collapses, as ODF says; ``text:s``,
    ``text:tab`` and ``text:line-break`` are the real spaces, tabs and line breaks."""
    if elem.text:
        words.append(_SPACES.sub(" ", elem.text))
    for child in elem:
        tag = local(child.tag)
        if tag == "s":
            count = child.get("{urn:oasis:names:tc:opendocument:xmlns:text:1.0}c", "1")
            words.append(" " * min(int(count) if count.isdigit() else 1, _MAX_SPACES))
        elif tag == "tab":
            words.append("\t")
        elif tag == "line-break":
            words.append("\n")
        elif tag not in _ODT_DROPPED:  # spans, links...
            _odt_inline(child, words)
        if child.tail:
            words.append(_SPACES.sub(" ", child.tail))


_READERS = {"epub": _epub, "docx": _docx, "odt": _odt}
