"""``note_ajouter`` and ``notes_lister``: the user's notes, in one JSON file of their data folder.

The file (``<data folder>/notes.json``, see :mod:`causette.tools.context`) holds
``{"notes": [{"numero": 1, "texte": "..."}, ...]}``. It is rewritten atomically (a temporary file
renamed over it), so a crash never leaves half a file. A file that cannot be read as such a
list (edited by hand, damaged) is never overwritten: both tools answer with an erreur that says so,
and the file stays as it is until the user repairs or moves it.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from causette.errors import CausetteError
from causette.tools.schema import ToolError
from causette.utils.io import atomic_write
from causette.utils.text import valid_unicode

MAX_NOTE = 500
_LOCK = threading.Lock()  # the server may run two calls at once: one read-modify-write at a time


def read_notes(path: Path) -> list[dict]:
    """The notes in ``path`` (none when it does not exist); a :class:`ToolError` when it is damaged."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _damaged(path) from None
    except OSError as e:  # a folder in the way, no permission
        raise ToolError(f"Le fichier de notes {path} n'a pas pu être lu ({e.strerror or e}).") from None
    notes = data.get("notes") if isinstance(data, dict) else None
    if not isinstance(notes, list) or not all(_is_note(n) for n in notes):
        raise _damaged(path)
    return [{"numero": n["numero"], "texte": n["texte"]} for n in notes]


def _is_note(note) -> bool:
    return (isinstance(note, dict) and isinstance(note.get("texte"), str)
            and isinstance(note.get("numero"), int) and not isinstance(note.get("numero"), bool))


def _damaged(path: Path) -> ToolError:
    return ToolError(f"Le fichier de notes {path} est endommagé : il n'a pas été modifié ; réparez-le ou "
                     f"déplacez-le, et une nouvelle liste de notes commencera.")


def add_note(path: Path, text: str) -> dict:
    """Append ``text`` to the notes of ``path``; the result of ``note_ajouter``."""
    text = valid_unicode(text).strip()
    if not text:
        raise ToolError("L'argument « texte » est vide : une note doit contenir du texte.")
    if len(text) > MAX_NOTE:
        raise ToolError(f"L'argument « texte » est trop long ({len(text)} caractères, {MAX_NOTE} au plus).")
    with _LOCK:
        notes = read_notes(path)
        number = max((n["numero"] for n in notes), default=0) + 1
        notes.append({"numero": number, "texte": text})
        try:
            with atomic_write(path) as f:
                json.dump({"notes": notes}, f, ensure_ascii=False, indent=2)
                f.write("\n")
        except (OSError, CausetteError) as e:  # a read-only folder, a full disk (DiskFullError)
            reason = e.strerror if isinstance(e, OSError) and e.strerror else "disque plein ou écriture refusée"
            raise ToolError(f"La note n'a pas pu être enregistrée dans {path} ({reason}).") from None
    return {"ok": True, "numero": number, "texte": text}


def list_notes(path: Path) -> dict:
    """The result of ``notes_lister``."""
    return {"notes": read_notes(path)}
