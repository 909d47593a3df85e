"""Reading a built corpus back: ``runs/<name>/corpus/{docs.jsonl.gz, manifest.json}``.

``docs.jsonl.gz`` holds one JSON document a line: ``{"id", "text", "source", "title", "kind"}``.
``manifest.json`` says, among the rest, which ids form the train and the val split
(``manifest["split"]["train"]`` and ``manifest["split"]["val"]``). Later stages read the
corpus only through these functions.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterator, Literal

from causette.errors import CausetteError

DOCS = "docs.jsonl.gz"
MANIFEST = "manifest.json"

Split = Literal["train", "val", "all"]


def read_manifest(corpus_dir: str | Path) -> dict:
    path = Path(corpus_dir) / MANIFEST
    if not path.is_file():
        raise CausetteError(f"{path}: no corpus manifest here (run `causette corpus build` first)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CausetteError(f"{path}: unreadable corpus manifest ({e})") from None


def iter_documents(corpus_dir: str | Path, split: Split = "all") -> Iterator[dict]:
    """Yield the documents of ``split`` as dicts, streaming (memory stays flat)."""
    corpus_dir = Path(corpus_dir)
    wanted: set[str] | None = None
    if split != "all":
        manifest = read_manifest(corpus_dir)
        try:
            wanted = set(manifest["split"][split])
        except (KeyError, TypeError):
            raise CausetteError(f"{corpus_dir / MANIFEST}: no '{split}' split recorded") from None
    path = corpus_dir / DOCS
    if not path.is_file():
        raise CausetteError(f"{path}: corpus documents not found (run `causette corpus build` first)")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError as e:
                    raise CausetteError(f"{path}:{n}: corrupt corpus line ({e.msg})") from None
                if wanted is None or doc["id"] in wanted:
                    yield doc
    except (OSError, EOFError) as e:
        raise CausetteError(f"{path}: unreadable corpus file ({e})") from None


def iter_texts(corpus_dir: str | Path, split: Split = "all") -> Iterator[str]:
    """Yield only the texts of ``split``."""
    for doc in iter_documents(corpus_dir, split):
        yield doc["text"]
