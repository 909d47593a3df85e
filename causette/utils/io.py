"""Atomic file writes and small file helpers shared by every stage.

A crash (or Ctrl-C, or SIGKILL) in the middle of a write must never leave a half-written
checkpoint, tokenizer or dataset behind that a later stage would trust. We therefore
always write to a temporary name in the same directory, flush it to disk, then
``os.replace`` it over the final name: on POSIX and Windows the rename is atomic.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from causette.errors import CausetteError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it to ``path``.

    If the body raises, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600: give the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if is_disk_full(e) and not isinstance(e, DiskFullError):
            raise disk_full(path, path.name) from None
        raise


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    """Atomically write ``obj`` as pretty, UTF-8 JSON (accents kept as is)."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def read_json(path: str | os.PathLike, missing: str = "no such file") -> Any:
    """The JSON value in ``path``; a :class:`CausetteError` naming the file when it is absent
    (``f"{path}: {missing}"``) or unreadable."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CausetteError(f"{path}: {missing}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CausetteError(f"{path}: not a readable JSON file ({e})") from None


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, kind: str, force: bool = False, protect=(), option: str = "--out",
               need_bytes: int | None = None) -> Iterator[Path]:
    """Build a ``kind`` folder (see :mod:`causette.utils.artefact`) under a temporary name; rename it
    to ``path`` on success, marked as Causette's.

    An existing ``path`` is replaced only once the new one is complete, and only if it is empty or
    a Causette folder of the same kind (``force``: any folder but those never replaced; ``protect``:
    the sources being read). A full disk is reported as :class:`DiskFullError` (``need_bytes``: the
    size expected, when the caller knows it).
    """
    from causette.utils.artefact import check_output, mark

    path = Path(path)
    check_output(path, kind, force=force, protect=protect, option=option)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_free_space(path, need_bytes, f"the {kind} folder")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        mark(tmp, kind)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
        if path.exists() or path.is_symlink():
            # a unique name: two processes finishing the same folder never collide here
            old = path.with_name(f".{path.name}.{secrets.token_hex(6)}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException as e:
        written = tree_size(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if is_disk_full(e):
            raise disk_full(path, f"the {kind} folder", written=written, need=need_bytes) from None
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def tree_size(path: str | os.PathLike) -> int:
    """Bytes held by the files under ``path``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_size
    return total


# ----------------------------------------------------------------------------- a full disk


class DiskFullError(CausetteError):
    """The disk filled up while Causette was writing: one line saying what, where, how much."""


_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_FULL_WORDS = ("No space left on device", "os error 28", "Disk quota exceeded", "StorageFull")


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says that the disk is full.

    Libraries wrap the operating system's error differently: safetensors says "os error 28"
    in its message, torch.save raises a RuntimeError whose context is the OSError.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFullError):
            return True
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        if any(w in str(exc) for w in _FULL_WORDS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n / 1e3:,.0f} kB"


def free_bytes(path: str | os.PathLike) -> int | None:
    """Free bytes on the filesystem holding ``path`` (its nearest existing parent), or None."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def disk_full(where: str | os.PathLike, what: str, written: int | None = None,
              need: int | None = None) -> DiskFullError:
    """The one line for a full disk: what was being written, where, how much it needed, and that
    running the same command again once there is room goes on from what was finished."""
    free = free_bytes(where)
    if need:
        needed = f"it needs about {_mb(need)}"
    elif written:
        needed = f"it needs more than the {_mb(written)} written before the disk filled"
    else:
        needed = "it needs more room"
    room = f", {_mb(free)} free there now" if free is not None else ""
    return DiskFullError(
        f"disk full while writing {what} ({where}): {needed}{room}; free some space and run the same command "
        f"again: what was finished is kept and an interrupted stage resumes from its last checkpoint"
    )


@contextlib.contextmanager
def full_disk_as(where: str | os.PathLike, what: str) -> Iterator[None]:
    """Inside the body, a full disk becomes the one line of :func:`disk_full` for ``what``."""
    try:
        yield
    except Exception as e:
        if is_disk_full(e) and not isinstance(e, DiskFullError):
            raise disk_full(where, what) from None
        raise


def check_free_space(path: str | os.PathLike, need: int | None, what: str) -> None:
    """Refuse before writing ``path`` when ``need`` bytes are known and its disk has fewer free."""
    if not need:
        return
    free = free_bytes(path)
    if free is not None and free < need:
        raise disk_full(path, what, need=need)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_SHA_CACHE: dict[tuple, str] = {}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (memory stays flat). Remembered for this process
    while the file's identity, size and modification time stay the same (a checkpoint checked,
    then loaded, is read once)."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _SHA_CACHE:
        return _SHA_CACHE[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    _SHA_CACHE[key] = digest = h.hexdigest()
    return digest
