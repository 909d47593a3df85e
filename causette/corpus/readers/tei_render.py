"""Rendering a TEI ``<body>`` as plain text lines (see :mod:`causette.corpus.readers.tei`).

The rules, for plays and novels alike: section headings after a blank line; one line per
verse (``<l>``), paragraph (``<p>``) or speech (``<sp>``, "NOM : ..."); words inside a line
separated by single spaces, whatever the indentation of the XML; editorial notes dropped;
stage directions in parentheses or dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

# Never text of the work: editorial notes, page and column breaks, running heads, figures.
_DROPPED = frozenset({"note", "fw", "pb", "cb", "milestone", "figure", "gap", "anchor", "index", "interp"})
# Elements that hold whole lines, paragraphs or sections (as opposed to words inside a line).
_BLOCKS = frozenset({
    "div", "div1", "div2", "div3", "div4", "div5", "div6", "div7", "body", "group", "text",
    "p", "l", "lg", "sp", "head", "ab", "stage", "speaker", "list", "item", "table", "row",
    "quote", "floatingText", "castList", "castGroup", "castItem", "epigraph", "cit", "opener",
    "closer", "trailer", "byline", "dateline", "salute", "signed", "argument", "postscript",
})
# Inside a line, these are separated from their neighbours by a space ("<s>A.</s><s>B.</s>").
_SPACED = frozenset({"s", "l", "p", "lg", "ab", "head", "speaker", "cell", "row", "item", "label", "lb"})


def local(tag: object) -> str:
    """Tag name without its namespace: ``{http://www.tei-c.org/ns/1.0}sp`` → ``sp``."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def collapse(text: str) -> str:
    """Every run of white space (pretty-printing indentation) becomes one space."""
    return " ".join(text.split())


def parenthesize(direction: str) -> str:
    """A stage direction as "(...)", without doubling parentheses that are already there."""
    if not direction or (direction.startswith("(") and direction.endswith(")")):
        return direction
    return f"({direction})"


class Renderer:
    """Turns the TEI body into lines of text; ``keep_stage`` says what to do with ``<stage>``."""

    def __init__(self, keep_stage: bool):
        self.keep_stage = keep_stage
        self.lines: list[str] = []

    # -- output -------------------------------------------------------------------------
    def line(self, text: str) -> None:
        if text:
            self.lines.append(text)

    def blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def text(self) -> str:
        return "\n".join(self.lines).strip("\n")

    # -- words inside one line ----------------------------------------------------------
    def inline(self, elem: ET.Element) -> str:
        """The text of ``elem`` on one line: notes dropped, stage directions in parentheses."""
        parts: list[str] = []
        self._collect(elem, parts)
        return collapse("".join(parts))

    def _collect(self, elem: ET.Element, parts: list[str]) -> None:
        if elem.text:
            parts.append(elem.text)
        for child in elem:
            tag = local(child.tag)
            if tag in _DROPPED:
                pass
            elif tag == "stage":
                if self.keep_stage:
                    parts.append(f" {parenthesize(self.inline(child))} ")
            elif tag in _SPACED:
                parts.append(" ")
                self._collect(child, parts)
                parts.append(" ")
            else:  # hi, foreign, q, rhyme, persName...: words inside the line
                self._collect(child, parts)
            if child.tail:
                parts.append(child.tail)

    # -- lines and sections -------------------------------------------------------------
    def blocks(self, elem: ET.Element) -> None:
        """Render the children of a section (``body``, ``div``, ``lg``...) line by line."""
        if elem.text and elem.text.strip():
            self.line(collapse(elem.text))
        for child in elem:
            tag = local(child.tag)
            if tag in _DROPPED:
                pass
            elif tag == "head":
                self.blank()
                self.line(self.inline(child))
            elif tag == "sp":
                self.lines.extend(self.speech(child))
            elif tag == "stage":
                if self.keep_stage:
                    self.line(parenthesize(self.inline(child)))
            elif _is_container(child):
                self.blocks(child)
            else:  # p, l, and anything else that holds words: one line
                self.line(self.inline(child))
            if child.tail and child.tail.strip():
                self.line(collapse(child.tail))

    def speech(self, sp: ET.Element) -> list[str]:
        """One ``<sp>``: ``NOM : first line`` then its other verse lines, one per line."""
        name = ""
        pieces: list[tuple[bool, str]] = []  # (is a verse line, text)
        for child in sp:
            if local(child.tag) == "speaker":
                name, direction = split_speaker(self.inline(child))
                if direction and self.keep_stage:
                    pieces.append((False, parenthesize(direction)))
            else:
                self._speech_pieces(child, pieces)
            if child.tail and child.tail.strip():
                pieces.append((False, collapse(child.tail)))
        # Words (prose, stage directions) accumulate until a verse line ends the line: a
        # direction before a verse stays on the verse's line, "(Il se lève.) Dans vos...".
        lines: list[str] = []
        words: list[str] = []
        for is_verse, text in pieces:
            if text:
                words.append(text)
            if is_verse and words:
                lines.append(" ".join(words))
                words = []
        if words:
            lines.append(" ".join(words))
        if lines and name:
            lines[0] = f"{name} : {lines[0]}"
        return lines

    def _speech_pieces(self, elem: ET.Element, pieces: list[tuple[bool, str]]) -> None:
        tag = local(elem.tag)
        if tag in _DROPPED:
            return
        if tag == "l":
            pieces.append((True, self.inline(elem)))
        elif tag == "stage":
            if self.keep_stage:
                pieces.append((False, parenthesize(self.inline(elem))))
        elif _is_container(elem):  # lg, ab holding lg, ...
            for child in elem:
                self._speech_pieces(child, pieces)
                if child.tail and child.tail.strip():
                    pieces.append((False, collapse(child.tail)))
        else:  # p (with its s), and anything else: words of the current line
            pieces.append((False, self.inline(elem)))


def _is_container(elem: ET.Element) -> bool:
    """Does ``elem`` hold lines or sections (and no loose words of its own)?"""
    has_blocks = any(local(c.tag) in _BLOCKS for c in elem)
    return has_blocks and not (elem.text and elem.text.strip()) and local(elem.tag) not in ("p", "l", "head")


def split_speaker(text: str) -> tuple[str, str]:
    """``"ARGANTE, à part."`` → ``("ARGANTE", "à part.")``; ``"Alceste."`` → ``("ALCESTE", "")``.

    The name is upper-cased and loses its trailing ".", ":" and spaces. When the speaker text
    is a name in capitals followed by a comma and a lower-case direction, the direction is
    given back separately (it is a stage direction, not part of the name).
    """
    name, direction = text, ""
    before, comma, after = text.partition(",")
    if comma and before.strip() and before == before.upper() and after != after.upper():
        name, direction = before, after.strip()
    return re.sub(r"[\s.:]+$", "", name).strip().upper(), direction
