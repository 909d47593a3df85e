"""Guessing how a text file was encoded, and telling text from binary.

French text files found in the wild come in three encodings: UTF-8 (today's norm, sometimes
with a byte-order mark written by Windows tools), Windows-1252 (CP1252, the old Windows
default, which has "œ", "€" and typographic quotes) and ISO-8859-1 (Latin-1). The rule:

1. valid UTF-8 is UTF-8. A non-ASCII CP1252 or Latin-1 text is almost never valid UTF-8 by
   chance (an accented letter is one byte ≥ 0x80 followed by an ASCII byte, which UTF-8
   forbids), so this test does not guess wrong for real UTF-8 files;
2. otherwise CP1252 when it decodes: it is a superset of Latin-1's printable characters;
3. otherwise Latin-1, which decodes any byte (only 0x81, 0x8D, 0x8F, 0x90 and 0x9D are
   undefined in CP1252; Latin-1 maps them to control characters that the normaliser removes).

The decision is made on each *piece* a reader decodes (a whole file, one JSON line, one
document of a split file), so a reader never needs the whole file in memory, and a piece is
never decoded twice. :class:`EncodingTally` sums the pieces up into one label per input file.
"""

from __future__ import annotations

import codecs

from causette.corpus.document import InputFile

UTF8_BOM = codecs.BOM_UTF8
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

# Bytes that never appear in text: C0 controls other than tab, newline, form feed and carriage
# return, plus DEL. (0x80-0x9F are *not* counted: they are letters and quotes in CP1252.)
_CONTROL_BYTES = frozenset(set(range(0x00, 0x09)) | {0x0B} | set(range(0x0E, 0x20)) | {0x7F})
BINARY_SNIFF_BYTES = 1024
BINARY_CONTROL_SHARE = 0.10


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode one piece of text; returns ``(text, encoding)``.

    ``encoding`` is ``"utf-8-sig"`` when a UTF-8 byte-order mark was found (and removed),
    else ``"utf-8"``, ``"cp1252"`` or ``"latin-1"`` following the rule of the module docstring.
    """
    if data.startswith(UTF8_BOM):
        try:
            return data[len(UTF8_BOM):].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            data = data[len(UTF8_BOM):]  # a BOM followed by garbage: fall through to the guesses
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1"), "latin-1"


def sniff_binary(head: bytes) -> str | None:
    """Why the first bytes of a file say it is not text we can read, or ``None`` if they look fine.

    A NUL byte, or more than 10 % of control bytes in the first KB, mean binary (an image, a
    PDF, a word-processor file...). UTF-16 text is full of NUL bytes too: it gets its own
    message, since converting it to UTF-8 is all the user has to do.
    """
    if head.startswith(UTF16_BOMS):
        return "UTF-16 text is not supported (convert the file to UTF-8), skipped"
    sample = head[:BINARY_SNIFF_BYTES]
    if b"\x00" in sample:
        return "binary file, skipped"
    if sample and sum(b in _CONTROL_BYTES for b in sample) / len(sample) > BINARY_CONTROL_SHARE:
        return "binary file, skipped"
    return None


class EncodingTally:
    """Sums up the encodings of the pieces of one input file into ``InputFile.encoding``.

    Pure-ASCII pieces are valid in every candidate encoding, so they say nothing and are not
    counted. The label is the single encoding seen (``"utf-8"`` if the file was all ASCII), or
    the encodings joined by ``+`` in order of appearance when pieces disagree (a file that mixes
    UTF-8 and CP1252 lines: it happens when files were concatenated).
    """

    def __init__(self, entry: InputFile):
        self.entry = entry
        self.seen: list[str] = []
        self.bom = False

    def add(self, data: bytes, encoding: str) -> None:
        """Record that ``data`` was decoded as ``encoding``, and update the input file's label."""
        if encoding == "utf-8-sig":
            self.bom, encoding = True, "utf-8"
        if not data.isascii() and encoding not in self.seen:
            self.seen.append(encoding)
        self.entry.encoding = self.label()

    def label(self) -> str:
        if not self.seen:
            return "utf-8-sig" if self.bom else "utf-8"
        if self.seen == ["utf-8"] and self.bom:
            return "utf-8-sig"
        return "+".join(self.seen)
