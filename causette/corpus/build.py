"""``causette corpus build``: sources → clean, filtered, deduplicated, split French corpus.

Documents stream through::

    read (sources.py) → normalise (normalize.py) → length → French? (language.py)
      → exact duplicate? → near duplicate? (dedup.py) → docs.jsonl.gz

Up to the dedup keys (exact digest, MinHash signature) the work needs no other document and
runs in ``workers`` processes (causette/utils/workers.py: they die with this process and leave
Ctrl-C to it); the dedup decisions and everything after them run here, in document order (see
causette/corpus/checks.py). Every document that does not reach the end is counted with its
reason, so that the manifest always satisfies ``kept + dropped = seen``; a build that keeps too little
says why in one line, reason by reason with the setting behind each. The language filter is
for mixed corpora: the documents of sources the user named on the command line
(``SourceConfig.named``) that it would drop are kept, with one warning line, and listed in the
manifest's ``kept_not_french`` (``corpus.lang_check_named: drop`` drops them instead). The
train/val split is drawn at the end, by document, from the kept ids only (see
:func:`split_ids`). Everything is written into a temporary directory renamed to ``corpus/`` at
the end: an interrupted build leaves the previous corpus untouched.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import platform
import sys
import time
from collections import defaultdict
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from causette import __version__
from causette.config import to_dict
from causette.corpus.checks import Verdict, checked_documents
from causette.corpus.config import CorpusConfig, SourceConfig
from causette.corpus.dedup import ExactDedup, NearDedup
from causette.corpus.document import Document, Report
from causette.corpus.split import DocInfo, plan_split
from causette.corpus.store import DOCS, MANIFEST
from causette.errors import CausetteError
from causette.utils.io import atomic_dir
from causette.utils.paths import DEMO_CORPUS
from causette.utils.text import printable_path

MANIFEST_VERSION = 1

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
            raise CausetteError(f"{printable_path(src.path)}: no such file or directory (corpus source)")


def _warn(line: str) -> None:
    print(line, file=sys.stderr)


def build_corpus(cfg: CorpusConfig, out_dir: str | Path, progress: bool = True, echo: Callable[[str], None] = _warn,
                 force: bool = False) -> BuildResult:
    """Build ``out_dir/docs.jsonl.gz`` and ``out_dir/manifest.json`` from ``cfg.sources``.

    Warnings (``warning: ...`` lines) go to ``echo``, or above the progress bar on stderr.
    ``out_dir`` is replaced only if it is a corpus Causette wrote (or ``force``), and never when it
    holds or lies inside a source (:func:`causette.utils.artefact.check_output`)."""
    sources = cfg.sources or [demo_source()]
    check_sources(sources)
    out_dir = Path(out_dir)
    start = time.time()
    report = Report(strict=cfg.strict, echo=lambda s: tqdm.write(s, file=sys.stderr) if progress else echo(s))
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
    kept_meta: list[DocInfo] = []  # what the split needs of each kept document
    kept_not_french: list[dict] = []  # documents of named sources that the language filter let through

    with atomic_dir(out_dir, "corpus", force=force, protect=[s.path for s in sources]) as tmp:
        with (
            open(tmp / DOCS, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz,
            closing(checked_documents(sources, cfg, report, near)) as checked,  # closed on error too: no worker left
        ):
            bar = tqdm(desc="corpus", unit=" doc", disable=not progress, dynamic_ncols=True)
            for src, doc, text, v in checked:
                v = _dedup_verdict(v, exact, near)
                seen.add(doc.text)
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
                    by_source[printable_path(src.path)].add(text)
                    if v.not_french:
                        kept_not_french.append({"id": doc_id, "source": doc.source, "score": v.score})
                    by_kind[doc.kind].add(text)
                    kept_meta.append(DocInfo.of(doc_id, doc.kind, text, cfg.val_fraction))
                bar.update(1)
                bar.set_postfix(kept=kept.documents, dropped=seen.documents - kept.documents, refresh=False)
            bar.close()

        if kept_not_french:
            report.warn(_kept_not_french_line(kept_not_french, cfg))
        if kept.characters < cfg.min_total_chars or not kept.documents:
            raise CausetteError(_too_little_text(cfg, sources, seen, kept, dropped, report))
        plan = plan_split(kept_meta, cfg.val_fraction, cfg.seed)
        manifest = _manifest(cfg, sources, report, seen, kept, dropped, dropped_docs, by_source, by_kind, plan)
        manifest["kept_not_french"] = kept_not_french
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    result = BuildResult(out_dir, manifest, time.time() - start)
    result.input_bytes = sum(f.size for f in report.files)
    result.summary_lines = summary_table(manifest)
    return result


# Why a document was dropped, in words, and the setting behind it: named when a build keeps too little.
_DROP_REASONS = {
    "empty": ("empty", "nothing left once cleaned"),
    "too_short": ("too short", "under corpus.min_chars = {min_chars} characters"),
    "not_french": ("not French", "French ratio under corpus.min_french_ratio = {min_french_ratio}; corpus.lang_check"),
    "exact_duplicate": ("exact duplicate", "corpus.dedup_exact"),
    "near_duplicate": ("near duplicate", "similar at corpus.near_dup_threshold = {near_dup_threshold}; corpus.near_dup"),
}


def _too_little_text(cfg: CorpusConfig, sources, seen: Tally, kept: Tally, dropped: dict, report: Report) -> str:
    """The one-line error of a build that keeps too little: how much, and why, setting by setting."""
    why = []
    for reason, tally in dropped.items():
        if tally.documents:
            label, setting = _DROP_REASONS[reason]
            if reason == "too_short" and any(s.min_chars is not None for s in sources):
                setting = "under the min_chars of its source, or corpus.min_chars"
            why.append(f"{tally.documents} {label} ({setting.format(**vars(cfg))})")
    if report.problems:
        why.append(f"{len(report.problems)} unreadable input(s) or record(s) (see the warnings)")
    read = f"{kept.documents} document(s) of {seen.documents} read, {seen.characters:,} characters"
    because = f"; dropped: {', '.join(why)}" if why else ""
    if not kept.documents:
        return f"corpus: no text kept ({read}{because}): add text, or change the settings named"
    return (
        f"corpus: only {kept.characters:,} characters of text kept ({read}{because}); training needs at least "
        f"{cfg.min_total_chars:,} (corpus.min_total_chars): add text, or change the settings named"
    )


def _kept_not_french_line(kept: list[dict], cfg: CorpusConfig) -> str:
    """The warning of a build that kept documents of named sources the language filter would drop."""
    n = len(kept)
    first = kept[0]["source"]
    return (
        f"warning: language filter: kept {n} document{'s' if n > 1 else ''} that do{'' if n > 1 else 'es'} not "
        f"look French (French ratio under corpus.min_french_ratio = {cfg.min_french_ratio}; {first}"
        f"{' and others' if n > 1 else ''}) because you named {'their files' if n > 1 else 'its file'}; "
        f"--set corpus.lang_check_named=drop to drop such documents"
    )


def _dedup_verdict(v: Verdict, exact: ExactDedup | None, near: NearDedup | None) -> Verdict:
    """The dedup decision, against the documents kept so far (in document order, in this process)."""
    if v.reason is not None:
        return v
    if exact is not None:
        first = exact.first(v.exact_key)
        if first is not None:
            return Verdict("exact_duplicate", first, 1.0)
    if near is not None:
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


def _manifest(cfg, sources, report, seen, kept, dropped, dropped_docs, by_source, by_kind, plan) -> dict:
    return {
        "format": "causette-corpus",
        "version": MANIFEST_VERSION,
        "causette_version": __version__,
        "python": platform.python_version(),
        "config": _manifest_config(cfg, sources),
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
        "split": plan.to_manifest(cfg.seed, cfg.val_fraction),
    }


def _manifest_config(cfg: CorpusConfig, sources: list[SourceConfig]) -> dict:
    """The settings that shape the corpus: ``workers`` is left out (the corpus is the same for any value)."""
    config = to_dict(dataclasses.replace(cfg, sources=list(sources)))
    config.pop("workers", None)
    for source in config["sources"]:
        source["path"] = printable_path(source["path"])  # a path typed with bytes that are not UTF-8
        source.pop("named", None)  # how the source was given, not what shapes the corpus
    return config


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
    lines.append(split_line(manifest["split"]))
    if manifest["problems"]:
        lines.append(f"{len(manifest['problems'])} unreadable input(s) or record(s): see 'problems' in the manifest")
    return lines


def split_line(split: dict) -> str:
    """One line saying how the corpus was split, and why."""
    chars = split.get("characters", {})
    n_train, n_val = len(split["train"]), len(split["val"])
    c_train, c_val = chars.get("train", 0), chars.get("val", 0)
    if split.get("mode") == "tail":
        return (f"split: val = the last {split['val_fraction']:.0%} of {n_val} of {n_train} document(s), "
                f"{c_val:,} characters (train {c_train:,}); {split['reason']}")
    if split.get("mode") == "none":
        return f"split: train {n_train:,} documents, no val split ({split['reason']})"
    return f"split: train {n_train:,} documents ({c_train:,} characters), val {n_val:,} ({c_val:,} characters)"


def _short(path: str, width: int = 48) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1) :]

