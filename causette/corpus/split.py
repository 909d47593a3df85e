"""The train/val split of a corpus: by document, deterministic, stratified by kind."""

from __future__ import annotations

import hashlib
from collections import defaultdict


def split_ids(docs: list[tuple[str, str]], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic train/val split by document, stratified by kind.

    Each id gets a pseudo-random score ``sha256(seed:id)``; within each kind, the
    ``round(val_fraction · n)`` lowest scores go to val. The result depends only on the set
    of ids and the seed — not on the order of the sources — and never splits a document.
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
