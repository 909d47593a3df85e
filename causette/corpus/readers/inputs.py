"""Finding the input files of a source and opening them: folders, compression, archives.

Everything a reader gets is an :class:`Item`: a named sequence of bytes that can be opened
again and again, already decompressed. An item is a file on disk or a member of a ``.tar`` or
``.zip`` archive; ``.gz``, ``.bz2`` and ``.xz`` compression is recognised by its magic bytes
(the first bytes of the file), so a misnamed file is still read, and by its name otherwise.

Opening an item twice is how we look at the first bytes of a file (to choose a reader)
without keeping it in memory: the first opening reads a few KB, the second one streams.
"""

from __future__ import annotations

import bz2
import contextlib
import dataclasses
import errno
import gzip
import io
import lzma
import os
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, Callable, Iterator

from causette.utils.text import printable_path

# Magic bytes at the start of compressed streams.
_COMPRESSIONS: dict[str, tuple[bytes, Callable[[BinaryIO], BinaryIO]]] = {
    "gzip": (b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    "bzip2": (b"BZh", lambda f: bz2.BZ2File(f, mode="rb")),
    "xz": (b"\xfd7zXZ\x00", lambda f: lzma.LZMAFile(f, mode="rb")),
}
_COMPRESSED_SUFFIXES = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}
_TAR_SUFFIXES = (".tar", ".tgz", ".tbz", ".tbz2", ".txz")
ZIP_MAGIC = b"PK\x03\x04"
TAR_MAGIC_OFFSET = 257  # "ustar" sits at byte 257 of every POSIX tar header

# Archive members up to this size are held in memory; bigger ones go to a temporary file.
MEMBER_IN_MEMORY_BYTES = 64 * 1024 * 1024
_COPY_CHUNK = 1 << 20


@dataclass
class Item:
    """One input to read: a file on disk or an archive member, opened decompressed."""

    name: str  # shown to the user and used as ``Document.source``: "dir/a.txt", "x.tar.xz:tei/a.xml" (printable)
    open_raw: Callable[[], BinaryIO]  # a fresh stream of the stored (maybe compressed) bytes
    own_name: str  # the file's own path: on disk, or inside its archive ("tei/a.xml"), as the system gives it
    disk_path: Path | None = None  # the file itself when the item is a plain file on disk
    depth: int = 0  # how many archives this item is nested in
    codec: str | None = None  # text in UTF-16 or UTF-32, converted to UTF-8 when read (see recoded)
    _compression: str | None = field(default=None, repr=False)
    _sniffed: bool = field(default=False, repr=False)

    @property
    def basename(self) -> str:
        """Last component of the item's own path: ``"a.txt.gz"`` (printable, see ``printable_path``)."""
        return printable_path(PurePosixPath(self.own_name.replace("\\", "/")).name)

    @property
    def logical_name(self) -> str:
        """The base name without its compression suffix: ``"a.jsonl.gz"`` → ``"a.jsonl"``."""
        name = self.basename
        suffix = os.path.splitext(name)[1].lower()
        if self.compression is not None and suffix in _COMPRESSED_SUFFIXES:
            return name[: -len(suffix)]
        return name

    @property
    def stem(self) -> str:
        """Document id for a file: its name without any extension (``"a.txt.gz"`` → ``"a"``)."""
        name = self.logical_name
        if name.lower().endswith(".tar"):
            name = name[: -len(".tar")]
        return os.path.splitext(name)[0] or name

    @property
    def compression(self) -> str | None:
        """``"gzip"``, ``"bzip2"``, ``"xz"`` or ``None``, from the magic bytes (looked at once)."""
        if not self._sniffed:
            with self.open_raw() as raw:
                magic = raw.read(8)
            self._compression = next(
                (name for name, (sig, _) in _COMPRESSIONS.items() if magic.startswith(sig)), None
            )
            self._sniffed = True
        return self._compression

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """A fresh binary stream of the decompressed content (in UTF-8 if :meth:`recoded`); closed
        at the end of the ``with``."""
        with contextlib.ExitStack() as stack:
            raw = stack.enter_context(self.open_raw())
            if self.compression is not None:
                raw = stack.enter_context(_COMPRESSIONS[self.compression][1](raw))
            if self.codec is not None:
                raw = stack.enter_context(io.BufferedReader(_Utf8Reader(raw, self.codec), _COPY_CHUNK))
            yield raw

    def recoded(self, codec: str) -> "Item":
        """The same item, its text (in ``codec``: UTF-16, UTF-32) read as UTF-8."""
        return dataclasses.replace(self, codec=codec)

    def head(self, n: int) -> bytes:
        """The first ``n`` decompressed bytes (fewer if the item is shorter)."""
        with self.open() as f:
            return read_at_most(f, n)

    @contextlib.contextmanager
    def seekable(self) -> Iterator[str | IO[bytes]]:
        """A seekable view of the content, for formats that read from the end (Parquet, zip).

        A plain file on disk is given by its path; anything else is first copied,
        decompressed, to a temporary file (never to memory: it may be big).
        """
        if self.disk_path is not None and self.compression is None and self.codec is None:
            yield str(self.disk_path)
            return
        with tempfile.TemporaryFile() as tmp, self.open() as src:
            shutil.copyfileobj(src, tmp, _COPY_CHUNK)
            tmp.seek(0)
            yield tmp


class _Utf8Reader(io.RawIOBase):
    """The UTF-8 bytes of a stream of text in another encoding, converted as they are read.

    Undecodable code units (half a surrogate pair, an odd last byte) become U+FFFD.
    """

    def __init__(self, raw: BinaryIO, codec: str):
        self._text = io.TextIOWrapper(raw, encoding=codec, errors="replace", newline="")
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = self._text.read(_COPY_CHUNK // 4)
            if not chunk:
                return 0
            self._pending = chunk.encode("utf-8")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def read_at_most(f: BinaryIO, n: int) -> bytes:
    """Read up to ``n`` bytes (decompressing streams may return short reads)."""
    chunks, size = [], 0
    while size < n:
        block = f.read(n - size)
        if not block:
            break
        chunks.append(block)
        size += len(block)
    return b"".join(chunks)


def file_item(path: Path) -> Item:
    """An item for a file on disk; its name is printable whatever bytes the file name holds."""
    return Item(name=printable_path(path), open_raw=lambda: open(path, "rb"), own_name=path.name, disk_path=path)


def is_hidden(relative: str) -> bool:
    """Hidden files and folders (".git", "._x" from macOS), and macOS's "__MACOSX" folders."""
    return any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(relative).parts)


def walk_folder(root: Path, problem: Callable[[Path, str], None] = lambda path, message: None) -> Iterator[Path]:
    """Every non-hidden file under ``root``, recursively, sorted by path (``a.txt``, ``b/c.txt``, ``d.txt``).

    Sorting makes the corpus the same on every machine: ``os.scandir`` returns names in
    whatever order the file system keeps them. Symbolic links to files are followed; links to
    folders are not (a link back up the tree would never end, a link to ``~`` would read a home
    folder): give the folder itself as a source to read it. Nothing is skipped silently: an
    unreadable folder, a link to a folder, a link loop or a broken link is told to
    ``problem(path, why)`` and the rest is read.
    """
    try:
        with os.scandir(root) as entries:
            listing = sorted((e for e in entries if not is_hidden(e.name)), key=lambda e: e.name)
    except OSError as e:
        problem(root, f"unreadable folder ({_why(e)}), skipped")
        return
    for entry in listing:
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from walk_folder(path, problem)
            elif entry.is_file():  # follows a symbolic link
                yield path
            elif entry.is_dir():
                problem(path, "symbolic link to a folder, not followed (give the folder itself as a source)")
            elif entry.is_symlink():
                problem(path, "broken symbolic link, skipped")
            else:
                problem(path, "not a regular file (a device, a socket or a pipe), skipped")
        except OSError as e:  # a link loop, a file removed meanwhile...
            problem(path, f"unreadable ({_why(e)}), skipped")


def _why(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "symbolic link loop"
    return error.strerror or str(error)


def archive_kind(item: Item, head: bytes) -> str | None:
    """``"tar"``, ``"zip"`` or ``None``: from the decompressed first bytes, else from the name."""
    if head.startswith(ZIP_MAGIC):
        return "zip"
    if head[TAR_MAGIC_OFFSET:TAR_MAGIC_OFFSET + 5] == b"ustar":
        return "tar"
    name = item.logical_name.lower()
    if name.endswith(_TAR_SUFFIXES):
        return "tar"  # an old (pre-POSIX) tar has no magic
    return None


def tar_members(item: Item) -> Iterator[Item]:
    """The regular files of a tar archive, one at a time, in archive order.

    ``mode="r|"`` reads the archive as a stream, front to back, so a 200 MB archive never sits in
    memory or on disk: each member is copied out (to memory, or to a temporary file when big)
    just before it is read. Members are only usable while the iteration is on that member.
    """
    with item.open() as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if not member.isfile() or is_hidden(member.name):
                continue  # folders, links and devices hold no text of their own
            source = tar.extractfile(member)
            if source is None:
                continue
            name = f"{item.name}:{printable_path(member.name)}"  # tar keeps names as bytes: maybe not UTF-8
            if member.size <= MEMBER_IN_MEMORY_BYTES:
                data = source.read()
                yield Item(name, lambda data=data: io.BytesIO(data), member.name, depth=item.depth + 1)
            else:
                with tempfile.TemporaryDirectory() as tmpdir:
                    copy = Path(tmpdir) / "member"
                    with open(copy, "wb") as out:
                        shutil.copyfileobj(source, out, _COPY_CHUNK)
                    yield Item(name, lambda copy=copy: open(copy, "rb"), member.name, depth=item.depth + 1)


def zip_members(item: Item) -> Iterator[Item]:
    """The files of a zip archive, in archive order (zip needs random access: see ``seekable``)."""
    with item.seekable() as target, zipfile.ZipFile(target) as archive:
        for info in archive.infolist():
            if info.is_dir() or is_hidden(info.filename):
                continue
            yield Item(
                name=f"{item.name}:{info.filename}",
                open_raw=lambda info=info: archive.open(info),
                own_name=info.filename,
                depth=item.depth + 1,
            )
