"""One Causette process at a time in a run folder.

Two ``causette run`` (or ``train``, ``sft``…) on the same ``runs/<name>`` would both append to its
``metrics.jsonl``, delete each other's checkpoints and race to rename the same folders. So a
command that writes into a run folder first takes the folder's lock, ``runs/<name>/.lock``: an
operating-system lock on that file (``flock`` on Linux and macOS, ``msvcrt.locking`` on Windows),
which the system releases when the process ends, however it ends (even ``kill -9``, a crash, a
power cut): a lock never outlives its holder, so there is nothing stale to clean up.

A second command on the same folder stops at once with one line saying who holds it. The file
also holds the holder's description (pid, command, start time), for that message. The lock is
re-entrant within a process: ``causette run`` holds it while its stages, which take it too, run.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Iterator

from causette.errors import CausetteError
from causette.utils.artefact import LOCK_FILE, ensure_run_folder

_held: dict[Path, int] = {}  # folders this process has locked, with their depth of nesting


class RunBusy(CausetteError):
    """Another process holds the run folder's lock."""


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, command: str | None = None) -> Iterator[Path]:
    """Hold ``folder``'s lock for the body (``folder`` is created if needed); raise :class:`RunBusy`
    naming the holder when another process has it."""
    folder = Path(folder).resolve()
    if folder in _held:
        _held[folder] += 1
        try:
            yield folder
        finally:
            _held[folder] -= 1
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(fd):
            raise RunBusy(f"{folder}: in use by another Causette process ({_holder(path)}); wait for it to end "
                          f"or stop it, or use another run name (--name)")
        info = {"pid": os.getpid(), "command": command or " ".join(["causette", *sys.argv[1:]]),
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(info, ensure_ascii=False) + "\n").encode("utf-8"))
        _held[folder] = 1
        try:
            yield folder
        finally:
            del _held[folder]
            _unlock(fd)
    finally:
        os.close(fd)


def is_locked(folder: str | os.PathLike) -> bool:
    """Whether some process (this one included) holds ``folder``'s lock now."""
    folder = Path(folder).resolve()
    if folder in _held:
        return True
    path = folder / LOCK_FILE
    if not path.is_file():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        if _try_lock(fd):
            _unlock(fd)
            return False
        return True
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {info['pid']}, `{info['command']}`, since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


if os.name == "nt":  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def claim_run(root: str | os.PathLike | None) -> Iterator[Path | None]:
    """Work in the run folder ``root``: check that it is one (or create it,
    :func:`causette.utils.artefact.ensure_run_folder`) and hold its lock for the body. ``None``:
    nothing to claim (the command writes outside any run folder)."""
    if root is None:
        yield None
        return
    with run_lock(ensure_run_folder(root)) as folder:
        yield folder
