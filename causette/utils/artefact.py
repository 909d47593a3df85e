"""What Causette wrote: a marker in every folder it builds, so that it never deletes what it did not.

A stage that builds a folder (a corpus, token data, a checkpoint, a run) replaces the previous
version of that folder when it is done (:func:`causette.utils.io.atomic_dir`). Replacing is safe
only if the previous version was Causette's own: ``causette corpus build mytexts --out mytexts``
must not delete the texts it has just read, nor ``--out ~/Documents`` the user's documents.

So every folder Causette builds holds a small marker file, ``.causette``::

    {"kind": "corpus", "written_by": "causette 0.1.0"}

and before writing, :func:`check_output` refuses a folder that exists, is not empty, and is not
a Causette folder of the same kind, with one line that says why; ``--force`` lets the user
replace it anyway. Some folders are never replaced, even with ``--force``: a folder that holds
(or lies inside) the sources being read, the current folder or one above it, the home folder,
a filesystem root.

Folders written before the marker existed are recognised by the file their stage writes last
(``_LEGACY``), so older runs keep working.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from causette.checkpoint.files import CHECKPOINTS, LATEST, STATE_FILE
from causette.errors import CausetteError

MARKER = ".causette"
LOCK_FILE = ".lock"  # causette/utils/lock.py
KINDS = ("run", "corpus", "tokenizer", "data", "checkpoint")

# Before markers: each kind's folder is recognised by the file its stage writes last.
_LEGACY = {
    "corpus": ("manifest.json",),
    "tokenizer": ("tokenizer.json",),
    "data": ("meta.json",),
    "checkpoint": (STATE_FILE,),
    "run": ("stages.json", "metrics.jsonl", "corpus/manifest.json", "data/meta.json", f"{CHECKPOINTS}/{LATEST}"),
}


def mark(folder: str | os.PathLike, kind: str) -> None:
    """Write ``folder/.causette`` saying that Causette built ``folder`` as a ``kind`` folder."""
    from causette import __version__
    from causette.utils.io import write_json

    if kind not in KINDS:  # pragma: no cover - a programming error
        raise ValueError(f"unknown artefact kind {kind!r}")
    write_json(Path(folder) / MARKER, {"kind": kind, "written_by": f"causette {__version__}"})


def kind_of(folder: str | os.PathLike) -> str | None:
    """The kind of Causette folder ``folder`` is (its marker, else its files), or None."""
    folder = Path(folder)
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("kind") in KINDS:
            return data["kind"]
    except (OSError, ValueError):
        pass
    for kind, files in _LEGACY.items():
        if any((folder / f).is_file() for f in files):
            return kind
    return None


def _entries(folder: Path) -> list[str]:
    """What ``folder`` holds, but for a run lock (causette/utils/lock.py): that file is ours."""
    try:
        return sorted(p.name for p in folder.iterdir() if p.name != LOCK_FILE)
    except OSError as e:
        raise CausetteError(f"{folder}: cannot read this folder ({e.strerror})") from None


def _inside(path: Path, other: Path) -> bool:
    """``path`` is ``other`` or lies somewhere below it."""
    return path == other or other in path.parents


def never_replaced(path: Path, protect: Iterable[str | os.PathLike] = ()) -> str | None:
    """Why ``path`` may never be replaced, even with ``--force`` (or None)."""
    path = Path(os.path.abspath(path))
    real = path.resolve()
    for source in protect:
        src = Path(source).resolve()
        if _inside(src, real):
            return f"it holds {source}, which is being read"
        if _inside(real, src) and src.is_dir():
            return f"it lies inside {source}, which is being read (its next build would read its own output)"
    if real == Path(real.anchor):
        return "it is the root of a filesystem"
    if real == Path.home().resolve():
        return "it is your home folder"
    if _inside(Path.cwd().resolve(), real):
        return "it is the current folder" if real == Path.cwd().resolve() else "it holds the current folder"
    return None


def check_output(path: str | os.PathLike, kind: str, force: bool = False,
                 protect: Iterable[str | os.PathLike] = (), option: str = "--out", replaces: bool = True) -> None:
    """Refuse to replace ``path`` unless it is absent, empty, or a Causette ``kind`` folder.

    ``force`` allows replacing any other folder, except those :func:`never_replaced` protects;
    ``protect``: the sources being read. ``option`` names the setting that chose ``path``, for
    the message; ``replaces=False``: the writer adds its files to the folder instead of replacing it.
    """
    path = Path(path)
    why = never_replaced(path, protect)
    if why is not None:
        raise CausetteError(f"{path}: Causette will not write a {kind} folder here: {why}; choose another {option}")
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir():
        raise CausetteError(f"{path}: exists and is not a folder; choose another {option}")
    entries = _entries(path)
    if not entries or force:
        return
    found = kind_of(path)
    if found == kind:
        return
    if found is not None:
        raise CausetteError(f"{path}: holds a Causette {found} folder, not a {kind} folder; choose another {option} "
                            f"(or --force to replace it)")
    shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
    what = f"delete it and write the {kind} there" if replaces else f"write the {kind} files into it"
    raise CausetteError(f"{path}: exists and was not written by Causette ({shown}); choose another {option}, "
                        f"or --force to {what}")


def ensure_run_folder(root: str | os.PathLike) -> Path:
    """Create the run folder ``root`` (marked ``run``), or check that an existing one is a run.

    A run folder receives several stages' outputs and some are deleted when a stage reruns, so
    an existing folder that is not a run (``run.dir=.`` with ``run.name=.``: the current folder)
    is refused; there is no ``--force`` for this: choose another ``run.name``.
    """
    root = Path(root)
    why = never_replaced(root)
    if why is not None:
        raise CausetteError(f"{root}: cannot be a run folder: {why}; choose another run.name (--name) or run.dir")
    if root.exists():
        if not root.is_dir():
            raise CausetteError(f"{root}: exists and is not a folder; choose another run.name (--name) or run.dir")
        if _entries(root) and kind_of(root) != "run":
            found = kind_of(root)
            what = f"a Causette {found} folder" if found else "not a Causette run folder"
            raise CausetteError(f"{root}: exists and is {what}; choose another run.name (--name) or run.dir")
    root.mkdir(parents=True, exist_ok=True)
    if not (root / MARKER).is_file():
        mark(root, "run")
    return root
