"""What every reader needs besides the bytes: the source's settings and where to report."""

from __future__ import annotations

from dataclasses import dataclass, field

from causette.corpus.config import SourceConfig
from causette.corpus.document import InputFile, Report
from causette.corpus.readers.encoding import EncodingTally, decode_bytes
from causette.corpus.readers.inputs import Item

# A file read as a single document (plain text without separator, Gutenberg, TEI) is held in
# memory whole; beyond this size it is almost surely a dump that needs splitting, not a book.
MAX_DOCUMENT_BYTES = 512 * 1024 * 1024


@dataclass
class ReadContext:
    """The source being read, the report, and the input file (``entry``) being read.

    For an archive, ``entry`` is the archive itself: its members add to its document count
    and to its encoding label.
    """

    src: SourceConfig
    report: Report
    entry: InputFile
    tally: EncodingTally = field(init=False)
    # the item being read was converted to UTF-8 from this encoding ("utf-16-le"...), "" if not
    recoded: str = ""

    def __post_init__(self) -> None:
        self.tally = EncodingTally(self.entry)

    def decode(self, data: bytes) -> tuple[str, str]:
        """Decode one piece of text (see :func:`decode_bytes`) and record its encoding."""
        text, encoding = decode_bytes(data)
        encoding = self.recoded or encoding
        self.tally.add(data, encoding)
        return text, encoding

    def read_whole(self, item: Item) -> bytes | None:
        """The content of a one-document file, or ``None`` (after a problem) if it is too big."""
        with item.open() as f:
            data = f.read(MAX_DOCUMENT_BYTES + 1)
        if len(data) > MAX_DOCUMENT_BYTES:
            self.problem(
                item.name,
                f"too big to be one document (over {MAX_DOCUMENT_BYTES // 2**20} MiB): "
                "split it with a doc_separator, or convert it to JSON Lines",
            )
            return None
        return data

    def problem(self, name: str, message: str, line: int | None = None) -> None:
        """Report an unreadable file or record (raises in strict mode)."""
        self.report.problem(name, message, line)

    def kind(self, guessed: str) -> str:
        """The source's ``kind`` when the user set one, else the reader's own guess."""
        return self.src.kind or guessed
