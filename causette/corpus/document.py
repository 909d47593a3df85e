"""What readers produce (:class:`Document`) and how they report problems (:class:`Report`).

Readers never print and never silently skip: every input file they open is recorded with
:meth:`Report.file`, every document they cannot read with :meth:`Report.problem`. In strict
mode a problem is fatal (a :class:`~causette.errors.CausetteError`, exit code 1); otherwise it
is printed as one line on stderr, counted in the manifest, and the build goes on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from causette.errors import CausetteError


@dataclass
class Document:
    """One document as read from a source, before cleaning and filtering."""

    id: str  # stable id chosen by the reader (file stem, JSON id, "file#3", ...)
    text: str
    source: str  # the file it came from ("archive.tar.xz:member.xml" for archive members)
    title: str = ""
    kind: str = "prose"  # theatre, prose, poetry, legal, encyclopedia, dialogue, ...
    meta: dict[str, Any] = field(default_factory=dict)  # author, year, encoding, ...


@dataclass
class InputFile:
    """One input file as listed in the manifest."""

    path: str
    format: str
    sha256: str = ""
    size: int = 0
    encoding: str = ""
    documents: int = 0
    problems: int = 0


@dataclass
class Problem:
    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class Report:
    """Collects input files and problems while sources are read."""

    def __init__(self, strict: bool = False, echo: Callable[[str], None] | None = None):
        self.strict = strict
        self.files: list[InputFile] = []
        self.problems: list[Problem] = []
        self._echo = echo if echo is not None else (lambda s: print(s, file=sys.stderr))

    def file(self, entry: InputFile) -> InputFile:
        """Record an input file; the reader may update ``documents``/``encoding`` later."""
        self.files.append(entry)
        return entry

    def problem(self, file: str, message: str, line: int | None = None) -> None:
        """An input (or one record of it) could not be read: fatal when strict, else warn and go on."""
        p = Problem(str(file), message, line)
        self.problems.append(p)
        for entry in reversed(self.files):
            if entry.path == p.file or p.file.startswith(entry.path + ":"):
                entry.problems += 1
                break
        if self.strict:
            raise CausetteError(f"{p} (--strict)")
        self._echo(f"warning: {p}")

    def warn(self, line: str) -> None:
        """A ``warning: ...`` line about the build, not about an input: printed, never fatal."""
        self._echo(line)
