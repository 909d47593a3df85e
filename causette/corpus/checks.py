"""The per-document work of ``causette corpus build``, in this process or in worker processes.

Cleaning, the length and French checks and the dedup keys of a document need no other
document: with ``workers`` > 1 they run in a pool of processes (causette/utils/workers.py: they
die with the build and leave Ctrl-C to it), fed batches of documents in order with a bounded
number of batches in flight (memory stays flat), and the results come back in document order.
Only the dedup decisions, which depend on every earlier document, run in the build itself
(build.py): the corpus is byte-identical for any number of workers.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from typing import Iterator

from causette.corpus.config import CorpusConfig, SourceConfig
from causette.corpus.dedup import NearDedup, exact_key
from causette.corpus.document import Document, Report
from causette.corpus.language import french_ratio
from causette.corpus.normalize import normalize
from causette.corpus.sources import read_source
from causette.errors import CausetteError
from causette.utils.workers import OrderedPool, WorkerDied


@dataclass
class Verdict:
    """Why a document is dropped (``reason`` None: kept), and the dedup keys computed on the way."""

    reason: str | None = None
    duplicate_of: str | None = None
    score: float | None = None  # length, French ratio or similarity, depending on the reason
    not_french: bool = False  # kept although the language filter would drop it (a named source)
    exact_key: bytes | None = None
    signature: object = None


BATCH_DOCS = 16  # documents per batch sent to a worker...
BATCH_CHARS = 1_000_000  # ...or fewer when they add up to this many characters (novels)
BATCHES_PER_WORKER = 2  # batches in flight per worker: enough to keep each one busy


class DocumentChecks:
    """The per-document work: ``(text, kind, min_chars, keep_not_french)`` → ``(normalised text, Verdict)``.

    The verdict says ``empty``, ``too_short`` or ``not_french``, or else carries the keys the
    dedup decisions need (``exact_key``, ``signature``); it never says "duplicate". With
    ``keep_not_french`` (a source the user named), a document the language filter would drop
    is kept, its verdict marked ``not_french`` with its French ratio as score.
    """

    def __init__(self, cfg: CorpusConfig, near: NearDedup | None = None):
        self.cfg = cfg
        if near is None and cfg.near_dup:
            near = NearDedup(cfg.near_dup_threshold, cfg.minhash_perms, cfg.shingle_words, seed=cfg.seed)
        self.near = near  # only its signature() is used here, never its index

    def __call__(self, raw: str, kind: str, min_chars: int, keep_not_french: bool = False) -> tuple[str, Verdict]:
        cfg = self.cfg
        text = normalize(raw, cfg.normalize, kind)
        if not text.strip():
            return text, Verdict("empty")
        if len(text) < min_chars:
            return text, Verdict("too_short", score=float(len(text)))
        v = Verdict()
        if cfg.lang_check:
            ratio = french_ratio(text)
            if ratio < cfg.min_french_ratio:
                if not keep_not_french:
                    return text, Verdict("not_french", score=round(ratio, 4))
                v = Verdict(score=round(ratio, 4), not_french=True)
        if cfg.dedup_exact:
            v.exact_key = exact_key(text)
        if self.near is not None:
            v.signature = self.near.signature(text)
        return text, v


_CHECKS: DocumentChecks | None = None  # one per worker process, built by _init_worker


def _init_worker(cfg: CorpusConfig) -> None:
    global _CHECKS
    _CHECKS = DocumentChecks(cfg)


def _check_batch(batch: list[tuple[str, str, int, bool]]) -> list[tuple[str, Verdict]]:
    return [_CHECKS(*item) for item in batch]


def checked_documents(
    sources: list[SourceConfig], cfg: CorpusConfig, report: Report, near: NearDedup | None
) -> Iterator[tuple[SourceConfig, Document, str, Verdict]]:
    """Every document of ``sources`` in order, with its normalised text and its :class:`Verdict`."""

    def documents() -> Iterator[tuple[SourceConfig, Document, tuple[int, bool]]]:
        for src in sources:
            min_chars = cfg.min_chars if src.min_chars is None else src.min_chars
            keep_not_french = src.named and cfg.lang_check_named == "keep"
            for doc in read_source(src, report):
                yield src, doc, (min_chars, keep_not_french)

    workers = cfg.workers or os.cpu_count() or 1
    if workers == 1:
        checks = DocumentChecks(cfg, near)
        for src, doc, settings in documents():
            yield (src, doc, *checks(doc.text, doc.kind, *settings))
        return

    def batches() -> Iterator[list[tuple[SourceConfig, Document, tuple[int, bool]]]]:
        batch, chars = [], 0
        for item in documents():
            batch.append(item)
            chars += len(item[1].text)
            if len(batch) >= BATCH_DOCS or chars >= BATCH_CHARS:
                yield batch
                batch, chars = [], 0
        if batch:
            yield batch

    sent: deque = deque()  # the batches handed to the pool and not yet back, in document order

    def work() -> Iterator[list[tuple[str, str, int, bool]]]:
        for batch in batches():
            sent.append(batch)
            yield [(doc.text, doc.kind, *settings) for _, doc, settings in batch]

    # spawn, not fork: no copy of this process's threads (tqdm's monitor) or locks. Workers die
    # with this process and leave Ctrl-C to it (causette/utils/workers.py).
    with OrderedPool(workers, _check_batch, _init_worker, (cfg,), method="spawn", ahead=BATCHES_PER_WORKER) as pool:
        try:
            for results in pool.imap(work()):
                batch = sent.popleft()
                for (src, doc, _), (text, v) in zip(batch, results):
                    yield src, doc, text, v
        except WorkerDied as e:
            raise CausetteError(f"corpus build: {e}; retry with --set corpus.workers=1") from None
