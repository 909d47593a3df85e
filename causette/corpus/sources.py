"""Reading the sources of a corpus: ``read_source(src, report)`` yields :class:`Document` objects.

A source is a file, a folder (read recursively), an archive or a Hugging Face dataset. For
every file this module decides how to read it and hands it to one reader:

- ``tei`` (:mod:`.readers.tei`): ``.xml``, ``.tei``, or a file starting with ``<?xml``;
- ``jsonl`` (:mod:`.readers.tabular`): ``.jsonl``, ``.json``, ``.ndjson``;
- ``parquet`` (:mod:`.readers.tabular`): ``.parquet``, or a file starting with ``PAR1``;
- ``csv`` (:mod:`.readers.delimited`): ``.csv``, ``.tsv``, ``.tab``: one document per row;
- EPUB, DOCX and ODT files (:mod:`.readers.office`): zip archives recognised by their content;
- ``gutenberg`` (:mod:`.readers.gutenberg`): text mentioning Project Gutenberg in its first 20 KB;
- ``text`` (:mod:`.readers.text`): any other text file;
- ``hf`` (:mod:`.readers.hf`): a Hugging Face dataset, only when asked for.

An explicit ``format`` in the source overrides the automatic choice for every file.
Compression (``.gz``, ``.bz2``, ``.xz``) and archives (``.tar*``, ``.zip``) are undone first,
whatever the format (see :mod:`causette.corpus.readers.inputs`), and UTF-16 or UTF-32 text is
converted to UTF-8 (see :mod:`causette.corpus.readers.encoding`). Everything streams: one
document is in memory at a time (and, for big archives, one member).

Bookkeeping: every input file is recorded in the report once (``report.file``) with its
hash, size, format, encoding and number of documents; anything unreadable is a
``report.problem`` naming the file (and line), which raises in strict mode and otherwise
lets the build go on with the next file or record. The same goes for what a folder holds that
cannot be read (an unreadable sub-folder, a link loop, a broken link). File names are printed
and recorded with :func:`~causette.utils.text.printable_path` (a name that is not UTF-8 keeps
its odd bytes as ``\\xNN``), and text is repaired at reading (lone surrogates of JSON escapes,
:func:`~causette.utils.text.valid_unicode`): nothing read can crash a later write.
"""

from __future__ import annotations

import contextlib
import lzma
import os
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Iterator

from causette.corpus.config import SourceConfig
from causette.corpus.document import Document, InputFile, Report
from causette.corpus.readers.context import ReadContext
from causette.corpus.readers.delimited import read_csv
from causette.corpus.readers.encoding import sniff_binary, wide_encoding
from causette.corpus.readers.gutenberg import SNIFF_BYTES, looks_like_gutenberg, read_gutenberg
from causette.corpus.readers.hf import read_hf
from causette.corpus.readers.office import container_kind, read_container
from causette.corpus.readers.inputs import (
    Item, archive_kind, file_item, tar_members, walk_folder, zip_members,
)
from causette.corpus.readers.tabular import PARQUET_MAGIC, read_jsonl, read_parquet
from causette.corpus.readers.tei import read_tei
from causette.corpus.readers.text import guess_kind, read_text
from causette.errors import CausetteError
from causette.utils.io import sha256_file
from causette.utils.text import printable_path

__all__ = ["read_source", "guess_kind", "choose_format"]

Reader = Callable[[Item, ReadContext], Iterator[Document]]
READERS: dict[str, Reader] = {
    "text": read_text,
    "gutenberg": read_gutenberg,
    "tei": read_tei,
    "jsonl": read_jsonl,
    "parquet": read_parquet,
    "csv": read_csv,
}
_EXTENSIONS = {
    ".xml": "tei", ".tei": "tei",
    ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".csv": "csv", ".tsv": "csv", ".tab": "csv",
}
MAX_ARCHIVE_DEPTH = 3  # an archive in an archive in an archive is the most we open
# What reading a damaged file raises: I/O and decompression errors, broken archives, encrypted
# or unsupported zip members (RuntimeError, NotImplementedError, which RecursionError from
# absurdly deep XML also is), undecodable zip member names.
_READ_ERRORS = (
    OSError, EOFError, lzma.LZMAError, zlib.error, tarfile.TarError, zipfile.BadZipFile,
    RuntimeError, NotImplementedError, UnicodeDecodeError,  # a zip member name flagged UTF-8 that is not
)


def read_source(src: SourceConfig, report: Report) -> Iterator[Document]:
    """Yield the documents of one source, at most ``src.limit`` of them (0 = all).

    A source whose path does not exist raises :class:`CausetteError` at once (when called,
    not when iterated). Unreadable files or records are reported to ``report`` and skipped.
    """
    if not src.path:
        raise CausetteError("a corpus source needs a 'path'")
    if src.format == "hf":
        documents = read_hf(src, report)
    else:
        path = Path(src.path).expanduser()
        if not path.exists():
            raise CausetteError(f"{printable_path(src.path)}: no such file or directory")
        documents = _read_path(path, src, report)
    return _limited(documents, src.limit)


def _limited(documents: Iterator[Document], limit: int) -> Iterator[Document]:
    """Stop after ``limit`` documents, without opening the next file."""
    with contextlib.closing(documents):  # closes open files of the reader at once
        for count, doc in enumerate(documents, 1):
            yield doc
            if limit and count >= limit:
                return


def _read_path(path: Path, src: SourceConfig, report: Report) -> Iterator[Document]:
    problems = len(report.problems)
    if path.is_dir():
        files = walk_folder(path, lambda where, why: report.problem(printable_path(where), why))
    else:
        files = iter([path])
    found = False
    for file in files:
        found = True
        name = printable_path(file)
        entry = report.file(InputFile(path=name, format=src.format))
        try:
            entry.size = file.stat().st_size
            entry.sha256 = sha256_file(file)
        except OSError as e:
            report.problem(name, f"unreadable file ({_describe(e)})")
            continue
        ctx = ReadContext(src, report, entry)
        for doc in _read_item(file_item(file), ctx):
            entry.documents += 1
            yield doc
    if not found and len(report.problems) == problems:
        report.problem(printable_path(path), "no input files in this folder (hidden files are skipped)")


def choose_format(item: Item, head: bytes, requested: str = "auto") -> str:
    """The reader for one file: the source's explicit format, else from the name and first bytes."""
    if requested != "auto":
        return requested
    extension = os.path.splitext(item.logical_name.lower())[1]
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    start = head[:200].lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith((b"<?xml", b"<TEI")):
        return "tei"
    if looks_like_gutenberg(head):
        return "gutenberg"
    return "text"


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _read_item(item: Item, ctx: ReadContext) -> Iterator[Document]:
    """Read one file or archive member, reporting (not raising) what makes it unreadable."""
    try:
        head = item.head(SNIFF_BYTES)
    except _READ_ERRORS as e:
        ctx.problem(item.name, f"unreadable file ({_describe(e)})")
        return
    if not head:
        ctx.problem(item.name, "empty file")
        return

    archive = archive_kind(item, head)
    if archive is not None:
        if item.depth >= MAX_ARCHIVE_DEPTH:
            ctx.problem(item.name, "archive nested too deeply, skipped")
            return
        try:
            container = container_kind(item) if archive == "zip" else None
            if item.depth == 0:
                ctx.entry.format = container or archive
            if container is not None:  # an e-book or a word-processor file, not an archive of files
                yield from read_container(item, container, ctx)
                return
            members = tar_members(item) if archive == "tar" else zip_members(item)
            for member in members:
                yield from _read_item(member, ctx)
        except _READ_ERRORS as e:
            ctx.problem(item.name, f"unreadable {archive} archive ({_describe(e)})")
        return

    parquet = ctx.src.format == "parquet" or (ctx.src.format == "auto" and head.startswith(PARQUET_MAGIC))
    wide = None if parquet else wide_encoding(head)
    if wide is not None:  # UTF-16 or UTF-32 text: read as UTF-8 from here on
        item = item.recoded(wide[0])
        try:
            head = item.head(SNIFF_BYTES)
        except _READ_ERRORS as e:
            ctx.problem(item.name, f"unreadable file ({_describe(e)})")
            return
    ctx.recoded = wide[1] if wide else ""

    fmt = choose_format(item, head, ctx.src.format)
    if item.depth == 0:
        ctx.entry.format = fmt
    if fmt != "parquet":
        binary = sniff_binary(head)
        if binary is not None:
            ctx.problem(item.name, binary)
            return
    try:
        yield from READERS[fmt](item, ctx)
    except _READ_ERRORS as e:
        ctx.problem(item.name, f"unreadable file ({_describe(e)})")
