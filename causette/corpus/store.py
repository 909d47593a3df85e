"""Reading a built corpus back: ``runs/<name>/corpus/{docs.jsonl.gz, manifest.json}``.

``docs.jsonl.gz`` holds one JSON document a line: ``{"id", "text", "source", "title", "kind"}``.
``manifest.json`` says, among the rest, which ids form the train and the val split
(``manifest["split"]["train"]`` and ``manifest["split"]["val"]``) and how: whole documents
(``mode: document``), or the end of each long document held out (``mode: tail``, with
``cuts``: id → first character of its val part). Later stages read the corpus only through
these functions, which hand out the train or val *part* of each document.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterator, Literal

from causette.corpus.split import split_text
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
    """Yield the documents of ``split`` as dicts, streaming (memory stays flat).

    In a ``tail`` split, a cut document appears in both: its ``text`` is its beginning in
    ``train`` and its end in ``val``; ``all`` gives every document whole.
    """
    corpus_dir = Path(corpus_dir)
    wanted: set[str] | None = None
    cuts: dict[str, int] = {}
    if split != "all":
        manifest = read_manifest(corpus_dir)
        try:
            wanted = set(manifest["split"][split])
            cuts = dict(manifest["split"].get("cuts", {})) if manifest["split"].get("mode") == "tail" else {}
        except (KeyError, TypeError, AttributeError, ValueError):
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
                    cut = cuts.get(doc["id"])
                    if cut is not None:
                        head, tail = split_text(doc["text"], cut)
                        doc["text"] = head if split == "train" else tail
                    yield doc
    except (OSError, EOFError) as e:
        raise CausetteError(f"{path}: unreadable corpus file ({e})") from None


def iter_texts(corpus_dir: str | Path, split: Split = "all") -> Iterator[str]:
    """Yield only the texts of ``split``."""
    for doc in iter_documents(corpus_dir, split):
        yield doc["text"]
