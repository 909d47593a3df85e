"""The train/val split of a corpus: by document when there are enough, else by held-out ends.

Two ways to hold text out for validation, chosen per corpus:

* ``document``: whole documents go to val, never a piece of one (a sentence from a val book
  must not appear in train). Each id gets a pseudo-random score ``sha256(seed:id)``; within
  each kind, the ``round(val_fraction · n)`` lowest scores go to val. Deterministic, and
  independent of the order of the sources.
* ``tail``: the *end* of each long document (its last ``val_fraction`` of characters, cut at
  a paragraph or line boundary) is held out as val, the beginning stays in train — what
  nanoGPT does with one text file (90 % / 10 %). Used when splitting by document cannot give
  both sides their share of the text: a single book, three files, or a handful of documents
  of which the largest would all land on one side.

Train and val never share text in either mode. ``val_fraction = 0`` gives no val split at all
(mode ``none``): the later stages then refuse to measure a validation loss, with a clear error.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field

from causette.errors import CausetteError

# Splitting by document needs at least this many documents: with fewer, one book more or less
# in val moves the val share far from val_fraction (and a single document cannot be split at all).
MIN_DOCS_FOR_DOCUMENT_SPLIT = 20
# A document's held-out end must hold at least this many characters (~150 tokens), or the
# document stays whole in train (unless no document reaches it: then the longest one is cut).
MIN_TAIL_CHARS = 500

_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_LINE = re.compile(r"\n")
_SENTENCE = re.compile(r"[.!?…»][ \n]")
_SPACE = re.compile(r"\s")


@dataclass
class DocInfo:
    """What the split needs to know of one kept document."""

    id: str
    kind: str
    chars: int
    cut: int | None = None  # where its held-out end would begin (tail_cut), None: too short
    head_chars: int = 0  # characters of its train part and of its val part when cut (split_text)
    tail_chars: int = 0

    @classmethod
    def of(cls, doc_id: str, kind: str, text: str, val_fraction: float) -> "DocInfo":
        cut = tail_cut(text, val_fraction)
        head, tail = split_text(text, cut) if cut is not None else (text, "")
        return cls(doc_id, kind, len(text), cut, len(head), len(tail))


@dataclass
class SplitPlan:
    """The split written to the manifest (``manifest["split"]``)."""

    mode: str  # "document", "tail" or "none"
    train: list[str]
    val: list[str]
    cuts: dict[str, int] = field(default_factory=dict)  # tail mode: id → first character of its val part
    characters: dict[str, int] = field(default_factory=dict)  # {"train": n, "val": n}
    reason: str = ""  # why this mode (one sentence, shown to the user)

    def to_manifest(self, seed: int, val_fraction: float) -> dict:
        out = {"mode": self.mode, "seed": seed, "val_fraction": val_fraction, "reason": self.reason,
               "characters": self.characters, "train": self.train, "val": self.val}
        if self.mode == "tail":
            out["cuts"] = self.cuts
        return out


def tail_cut(text: str, val_fraction: float) -> int | None:
    """Offset where the last ``val_fraction`` of ``text`` begins, moved to a natural boundary.

    The boundary nearest the exact cut is sought within a window of half the tail's length: a
    paragraph break first, else a line break, else the end of a sentence, else a space (the
    earlier one of two equally near). A cut must leave text (not only white space) on both
    sides. None when there is nothing to hold out (``val_fraction`` 0, or a text of one
    character). Linear in the length of ``text``: one pass per kind of boundary.
    """
    tail = round(val_fraction * len(text))
    if val_fraction <= 0 or tail < 1 or len(text) < 2:
        return None
    target = len(text) - tail
    lo, hi = max(target - tail // 2, 1), min(target + tail // 2, len(text) - 1)
    # A cut at e leaves text on both sides when the first non-space character is before e and
    # the last one at e or after: first < e <= last (no non-space character: never).
    first = len(text) - len(text.lstrip())
    last = len(text.rstrip()) - 1
    for pattern in (_PARAGRAPH, _LINE, _SENTENCE, _SPACE):
        best = None
        for m in pattern.finditer(text, lo, hi):
            e = m.end()
            if first < e <= last and (best is None or abs(e - target) < abs(best - target)):
                best = e
        if best is not None:
            return best
    return target if first < target <= last else None


def split_text(text: str, cut: int) -> tuple[str, str]:
    """The train part and the val part of a document cut at ``cut`` (no character in both)."""
    return text[:cut].rstrip(), text[cut:].lstrip()


def split_ids(docs: list[tuple[str, str]], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic train/val split by document, stratified by kind.

    The result depends only on the set of ids and the seed — not on the order of the sources.
    At least one document goes to val when there are two or more and the fraction is > 0.
    """
    def score(doc_id: str) -> str:
        return hashlib.sha256(f"{seed}:{doc_id}".encode("utf-8")).hexdigest()

    groups: dict[str, list[str]] = defaultdict(list)
    for doc_id, kind in docs:
        groups[kind].append(doc_id)
    val: set[str] = set()
    for kind in sorted(groups):
        ranked = sorted(groups[kind], key=score)
        val.update(ranked[: round(val_fraction * len(ranked))])
    if not val and val_fraction > 0 and len(docs) >= 2:
        val.add(min((d for d, _ in docs), key=score))
    train = [d for d, _ in docs if d not in val]
    return train, [d for d, _ in docs if d in val]


def plan_split(docs: list[DocInfo], val_fraction: float, seed: int) -> SplitPlan:
    """Choose the split of a corpus (see the module docstring); never an empty train or val.

    Raises :class:`CausetteError` when no split can give both sides text.
    """
    total = sum(d.chars for d in docs)
    if val_fraction == 0:
        return SplitPlan("none", [d.id for d in docs], [], characters={"train": total, "val": 0},
                         reason="corpus.val_fraction is 0: no validation text")
    by_id = {d.id: d for d in docs}
    train, val = split_ids([(d.id, d.kind) for d in docs], val_fraction, seed)
    val_chars = sum(by_id[i].chars for i in val)
    share = val_chars / total if total else 0.0
    if len(docs) >= MIN_DOCS_FOR_DOCUMENT_SPLIT and val_fraction / 2 <= share <= 2 * val_fraction and train:
        return SplitPlan("document", train, val, characters={"train": total - val_chars, "val": val_chars},
                         reason=f"{len(docs)} documents, whole ones held out")

    if len(docs) < MIN_DOCS_FOR_DOCUMENT_SPLIT:
        why = f"{len(docs)} document{'s' if len(docs) > 1 else ''}: too few (< {MIN_DOCS_FOR_DOCUMENT_SPLIT}) to hold out whole ones"
    else:
        why = f"whole documents would put {share:.0%} of the text in val instead of {val_fraction:.0%}"
    cut_docs = [d for d in docs if d.cut is not None and d.tail_chars >= MIN_TAIL_CHARS]
    if not cut_docs and not (train and val):
        # nothing long enough to hold out MIN_TAIL_CHARS, nor two documents: the end of the longest one
        longest = max((d for d in docs if d.cut is not None), key=lambda d: d.chars, default=None)
        cut_docs = [longest] if longest is not None else []
    if cut_docs:
        cut_ids = {d.id for d in cut_docs}
        cuts = {d.id: d.cut for d in cut_docs}
        val_chars = sum(d.tail_chars for d in cut_docs)
        train_chars = sum(d.head_chars if d.id in cut_ids else d.chars for d in docs)
        return SplitPlan(
            "tail", [d.id for d in docs], [d.id for d in cut_docs], cuts,
            characters={"train": train_chars, "val": val_chars},
            reason=why,
        )
    if train and val:  # no document long enough to cut: whole documents, however uneven
        return SplitPlan("document", train, val, characters={"train": total - val_chars, "val": val_chars},
                         reason=f"{why}, but none is long enough to hold out its end")
    raise CausetteError(f"corpus: no text to split ({len(docs)} document(s) of {total:,} characters kept)")
