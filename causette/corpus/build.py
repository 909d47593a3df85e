"""``causette corpus build``: sources → clean, filtered, deduplicated, split French corpus.

Documents stream one at a time through::

    read (sources.py) → normalise (normalize.py) → length → French? (language.py)
      → exact duplicate? → near duplicate? (dedup.py) → docs.jsonl.gz

and every document that does not reach the end is counted with its reason, so that the
manifest always satisfies ``kept + dropped = seen``. The train/val split is drawn at the end,
by document, from the kept ids only (see :func:`split_ids`). Everything is written into a
temporary directory renamed to ``corpus/`` at the end: an interrupted build leaves the
previous corpus untouched.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import platform
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from causette import __version__
from causette.config import to_dict
from causette.corpus.config import CorpusConfig, SourceConfig
from causette.corpus.dedup import ExactDedup, NearDedup
from causette.corpus.document import Document, Report
from causette.corpus.language import french_ratio
from causette.corpus.normalize import normalize
from causette.corpus.sources import read_source
from causette.corpus.split import split_ids
from causette.corpus.store import DOCS, MANIFEST
from causette.errors import CausetteError
from causette.utils.io import atomic_dir

MANIFEST_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parents[2]
# The demo corpus shipped with Causette (see data/README.md): used when no source is given.
DEMO_CORPUS = REPO_ROOT / "data" / "demo_fr_pd.txt.gz"

# Why a document can be dropped (the manifest counts each of them).
REASONS = ("empty", "too_short", "not_french", "exact_duplicate", "near_duplicate")


def demo_source() -> SourceConfig:
    """The shipped demo corpus: one gzip text file, documents separated by two blank lines."""
    return SourceConfig(path=str(DEMO_CORPUS), format="text", doc_separator="\n\n\n")


@dataclass
class Tally:
    """Documents, characters and UTF-8 bytes of a group of documents."""

    documents: int = 0
    characters: int = 0
    bytes: int = 0

    def add(self, text: str) -> None:
        self.documents += 1
        self.characters += len(text)
        self.bytes += len(text.encode("utf-8"))


@dataclass
class BuildResult:
    out_dir: Path
    manifest: dict
    seconds: float
    input_bytes: int = 0
    summary_lines: list[str] = field(default_factory=list)


def check_sources(sources: list[SourceConfig]) -> None:
    """Fail fast, before any work, when a source path does not exist."""
    for src in sources:
        if src.format == "hf" and not Path(src.path).exists():
            continue  # a dataset name on the Hugging Face hub, not a local path
        if not Path(src.path).exists():
            raise CausetteError(f"{src.path}: no such file or directory (corpus source)")


def build_corpus(cfg: CorpusConfig, out_dir: str | Path, progress: bool = True, echo: Callable[[str], None] = print) -> BuildResult:
    """Build ``out_dir/docs.jsonl.gz`` and ``out_dir/manifest.json`` from ``cfg.sources``."""
    sources = cfg.sources or [demo_source()]
    check_sources(sources)
    out_dir = Path(out_dir)
    start = time.time()
    report = Report(strict=cfg.strict, echo=lambda s: tqdm.write(s) if progress else echo(s))
    exact = ExactDedup() if cfg.dedup_exact else None
    near = (
        NearDedup(cfg.near_dup_threshold, cfg.minhash_perms, cfg.shingle_words, seed=cfg.seed) if cfg.near_dup else None
    )
    seen, kept = Tally(), Tally()
    dropped: dict[str, Tally] = {r: Tally() for r in REASONS}
    dropped_docs: list[dict] = []
    by_source: dict[str, Tally] = defaultdict(Tally)
    by_kind: dict[str, Tally] = defaultdict(Tally)
    ids: set[str] = set()
    kept_meta: list[tuple[str, str]] = []  # (id, kind) of kept documents, for the split

    with atomic_dir(out_dir) as tmp:
        with open(tmp / DOCS, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
            bar = tqdm(desc="corpus", unit=" doc", disable=not progress, dynamic_ncols=True)
            for src in sources:
                min_chars = cfg.min_chars if src.min_chars is None else src.min_chars
                for doc in read_source(src, report):
                    seen.add(doc.text)
                    text = normalize(doc.text, cfg.normalize, doc.kind)
                    v = _verdict(text, min_chars, cfg, exact, near)
                    if v.reason is not None:
                        dropped[v.reason].add(doc.text)
                        dropped_docs.append(_dropped_entry(doc, v))
                    else:
                        doc_id = _unique_id(doc.id, ids)
                        if exact is not None:
                            exact.add(v.exact_key, doc_id)
                        if near is not None:
                            near.add(v.signature, doc_id)
                        record = {"id": doc_id, "text": text, "source": doc.source, "title": doc.title, "kind": doc.kind}
                        gz.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
                        kept.add(text)
                        by_source[src.path].add(text)
                        by_kind[doc.kind].add(text)
                        kept_meta.append((doc_id, doc.kind))
                    bar.update(1)
                    bar.set_postfix(kept=kept.documents, dropped=seen.documents - kept.documents, refresh=False)
            bar.close()

        train, val = split_ids(kept_meta, cfg.val_fraction, cfg.seed)
        manifest = _manifest(cfg, sources, report, seen, kept, dropped, dropped_docs, by_source, by_kind, train, val)
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    result = BuildResult(out_dir, manifest, time.time() - start)
    result.input_bytes = sum(f.size for f in report.files)
    result.summary_lines = summary_table(manifest)
    return result


@dataclass
class Verdict:
    """Why a document is dropped (``reason`` None: kept), and the dedup keys computed on the way."""

    reason: str | None = None
    duplicate_of: str | None = None
    score: float | None = None  # length, French ratio or similarity, depending on the reason
    exact_key: bytes | None = None
    signature: object = None


def _verdict(text: str, min_chars: int, cfg: CorpusConfig, exact: ExactDedup | None, near: NearDedup | None) -> Verdict:
    if not text.strip():
        return Verdict("empty")
    if len(text) < min_chars:
        return Verdict("too_short", score=float(len(text)))
    if cfg.lang_check:
        ratio = french_ratio(text)
        if ratio < cfg.min_french_ratio:
            return Verdict("not_french", score=round(ratio, 4))
    v = Verdict()
    if exact is not None:
        v.exact_key, first = exact.check(text)
        if first is not None:
            return Verdict("exact_duplicate", first, 1.0)
    if near is not None:
        v.signature = near.signature(text)
        first, sim = near.check(v.signature)
        if first is not None:
            return Verdict("near_duplicate", first, round(sim, 4))
    return v


def _dropped_entry(doc: Document, v: Verdict) -> dict:
    entry = {"id": doc.id, "source": doc.source, "title": doc.title, "reason": v.reason, "characters": len(doc.text)}
    if v.duplicate_of is not None:
        entry["duplicate_of"] = v.duplicate_of
    if v.score is not None:
        entry["score"] = v.score
    return entry


def _unique_id(doc_id: str, ids: set[str]) -> str:
    """The reader's id, made unique with a ``~2``, ``~3``... suffix when already taken."""
    base = doc_id or "doc"
    candidate, n = base, 1
    while candidate in ids:
        n += 1
        candidate = f"{base}~{n}"
    ids.add(candidate)
    return candidate


def _manifest(cfg, sources, report, seen, kept, dropped, dropped_docs, by_source, by_kind, train, val) -> dict:
    return {
        "format": "causette-corpus",
        "version": MANIFEST_VERSION,
        "causette_version": __version__,
        "python": platform.python_version(),
        "config": to_dict(dataclasses.replace(cfg, sources=list(sources))),
        "inputs": [dataclasses.asdict(f) for f in report.files],
        "problems": [{"file": p.file, "line": p.line, "message": p.message} for p in report.problems],
        "documents": {
            "seen": seen.documents,
            "kept": kept.documents,
            "dropped": {r: t.documents for r, t in dropped.items()},
        },
        "characters": {
            "seen": seen.characters,
            "kept": kept.characters,
            "dropped": {r: t.characters for r, t in dropped.items()},
        },
        "bytes": {"kept": kept.bytes},
        "by_source": {k: dataclasses.asdict(v) for k, v in by_source.items()},
        "by_kind": {k: dataclasses.asdict(v) for k, v in sorted(by_kind.items())},
        "dropped_documents": dropped_docs,
        "split": {"seed": cfg.seed, "val_fraction": cfg.val_fraction, "train": train, "val": val},
    }


def summary_table(manifest: dict) -> list[str]:
    """Lines of a plain-text table: documents, characters and bytes per source and per kind."""
    rows = [("source", k, v) for k, v in manifest["by_source"].items()]
    rows += [("kind", k, v) for k, v in manifest["by_kind"].items()]
    name_w = max([len(_short(r[1])) for r in rows] + [10])
    lines = [f"{'':6} {'':{name_w}} {'docs':>8} {'chars':>13} {'bytes':>13}"]
    for group, name, t in rows:
        lines.append(f"{group:6} {_short(name):{name_w}} {t['documents']:>8,} {t['characters']:>13,} {t['bytes']:>13,}")
    d = manifest["documents"]
    drops = ", ".join(f"{r} {n}" for r, n in d["dropped"].items() if n) or "none"
    lines.append(f"seen {d['seen']:,} documents, kept {d['kept']:,}, dropped: {drops}")
    lines.append(f"split: train {len(manifest['split']['train']):,} documents, val {len(manifest['split']['val']):,}")
    if manifest["problems"]:
        lines.append(f"{len(manifest['problems'])} unreadable input(s) or record(s): see 'problems' in the manifest")
    return lines


def _short(path: str, width: int = 48) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def dropped_counts(manifest: dict) -> Counter:
    return Counter(manifest["documents"]["dropped"])
