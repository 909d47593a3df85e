"""Text that can always be written: the one repair every reader applies to what it reads.

Python strings may hold *lone surrogates* (U+D800–U+DFFF alone), which are not Unicode
characters and cannot be encoded as UTF-8: ``json.loads('"\\ud800"')`` makes one, and so does
Python's ``surrogateescape`` decoding of a file name or terminal input that is not valid UTF-8.
Left in a string, they crash the first write (``UnicodeEncodeError``), far from where they came
in. Every reader of user text (corpus sources, SFT files, chat input, server requests) passes
it through :func:`valid_unicode` at reading time.
"""

from __future__ import annotations


def valid_unicode(text: str) -> str:
    """Lone surrogates (not valid Unicode, they cannot be UTF-8 encoded) become U+FFFD, and a
    surrogate pair becomes its character: the same repair tiktoken makes, so both agree."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def printable_path(path) -> str:
    """A file name that can be printed whatever bytes it holds (a non-UTF-8 name keeps its
    undecodable bytes as ``\\xNN``)."""
    s = str(path)
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
