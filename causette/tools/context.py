"""What a tool may touch: the user's data folder, the texts it searches, the clock.

Every tool receives a :class:`ToolContext`. Callers build it once (``ToolContext.from_env()``
reads the environment); tests build their own with a ``tmp_path`` and a fixed clock, so nothing
ever touches the real home folder or depends on the time of day.

Where the notes live (``data_dir``), first match wins:

1. ``$CAUSETTE_DATA_DIR``;
2. ``$XDG_DATA_HOME/causette``;
3. on Windows ``%APPDATA%\\causette``;
4. ``~/.local/share/causette``.

What ``chercher`` searches (``roots``): the folders or files in ``$CAUSETTE_NOTES_DIR`` (several
joined by ``os.pathsep``), else the demo corpus shipped with the package.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

NOTES_FILE = "notes.json"


def data_dir(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """The user's Causette data folder (see the module's docstring for the order)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if env.get("CAUSETTE_DATA_DIR"):
        return Path(env["CAUSETTE_DATA_DIR"]).expanduser()
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]).expanduser() / "causette"
    if platform.startswith("win") and env.get("APPDATA"):
        return Path(env["APPDATA"]) / "causette"
    return Path("~").expanduser() / ".local" / "share" / "causette"


def search_roots(env: Mapping[str, str] | None = None) -> tuple[Path, ...] | None:
    """The folders named by ``$CAUSETTE_NOTES_DIR``, or None (the demo corpus)."""
    env = os.environ if env is None else env
    value = env.get("CAUSETTE_NOTES_DIR", "").strip()
    if not value:
        return None
    return tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p.strip())


@dataclass(frozen=True)
class ToolContext:
    """The folder of the notes, the texts ``chercher`` reads (None: the demo corpus) and the clock."""

    data_dir: Path
    roots: tuple[Path, ...] | None = None
    clock: Callable[[], datetime] = field(default=datetime.now)

    def __post_init__(self):
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.roots is not None:
            roots = (self.roots,) if isinstance(self.roots, (str, os.PathLike)) else self.roots
            object.__setattr__(self, "roots", tuple(Path(r) for r in roots))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, roots=None,
                 clock: Callable[[], datetime] | None = None) -> ToolContext:
        """The context of this process: folders from the environment unless ``roots`` is given."""
        return cls(data_dir=data_dir(env), roots=search_roots(env) if roots is None else roots,
                   clock=clock or datetime.now)

    @property
    def notes_file(self) -> Path:
        return self.data_dir / NOTES_FILE
