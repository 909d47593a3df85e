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

Files in UTF-16 or UTF-32 (Windows' "Unicode" text, some exports) hold a NUL byte in most
characters, which no 8-bit text does: :func:`wide_encoding` recognises them, by their
byte-order mark (UTF-32's starts like UTF-16's, so it is looked for first) or, for UTF-16
without a mark, when the first kilobyte clearly is UTF-16 (one byte of most pairs is zero, the
other almost never, and it decodes to words: spaces, no control characters). Such a file
is converted to UTF-8 as it is read (:meth:`~causette.corpus.readers.inputs.Item.recoded`), so
every reader sees UTF-8.
"""

from __future__ import annotations

import codecs

from causette.corpus.document import InputFile

UTF8_BOM = codecs.BOM_UTF8
# byte-order marks → (codec that removes the mark, label); UTF-32 first: its marks start like UTF-16's
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32", "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16", "utf-16-be"),
)
WIDE_LABELS = frozenset(label for _, _, label in _WIDE_BOMS)
# UTF-16 without a mark: in the first KB, at least this share of the bytes at one parity are
# zero (the high bytes of Latin letters; "œ" and "’" have other ones) and at most MAX_TEXT_ZEROS
# of the other parity.
MIN_HIGH_ZEROS = 0.5
MAX_TEXT_ZEROS = 0.02
MIN_WORDS_CHARS = 64  # ... and, from this many characters on, it has spaces or line breaks

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


def wide_encoding(head: bytes) -> tuple[str, str] | None:
    """``(codec, label)`` when the first bytes of a file are UTF-32 or UTF-16 text, else ``None``.

    The codec decodes the whole file (``"utf-16"`` and ``"utf-32"`` read and drop the
    byte-order mark); the label names the encoding in the manifest (``"utf-16-le"``...).
    """
    for bom, codec, label in _WIDE_BOMS:
        if head.startswith(bom):
            return codec, label
    label = _utf16_without_bom(head[:BINARY_SNIFF_BYTES])
    return (label, label) if label else None


def _utf16_without_bom(sample: bytes) -> str | None:
    sample = sample[: len(sample) // 2 * 2]
    if len(sample) < 8 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2], sample[1::2]
    for label, text_bytes, high_bytes in (("utf-16-le", even, odd), ("utf-16-be", odd, even)):
        if high_bytes.count(0) < MIN_HIGH_ZEROS * len(high_bytes) or text_bytes.count(0) > MAX_TEXT_ZEROS * len(text_bytes):
            continue
        try:  # final=False: the sample may end inside a surrogate pair
            text = codecs.getincrementaldecoder(label)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        controls = any(c < " " and c not in "\t\n\r\f" for c in text)
        if not controls and (len(text) < MIN_WORDS_CHARS or " " in text or "\n" in text):
            return label
    return None


def sniff_binary(head: bytes) -> str | None:
    """Why the first bytes of a file say it is not text we can read, or ``None`` if they look fine.

    A NUL byte, or more than 10 % of control bytes in the first KB, mean binary (an image, a
    PDF, a word-processor file...). (UTF-16 and UTF-32 text, full of NUL bytes too, never gets
    here: it is converted to UTF-8 first, see :func:`wide_encoding`.)
    """
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
        # ASCII says nothing about 8-bit encodings; converted from UTF-16/32, it still was UTF-16/32
        if (not data.isascii() or encoding in WIDE_LABELS) and encoding not in self.seen:
            self.seen.append(encoding)
        self.entry.encoding = self.label()

    def label(self) -> str:
        if not self.seen:
            return "utf-8-sig" if self.bom else "utf-8"
        if self.seen == ["utf-8"] and self.bom:
            return "utf-8-sig"
        return "+".join(self.seen)
