"""Settings of the corpus stage (``corpus:`` section of a config file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal, Optional

from causette.utils.ranges import SEED, WORKERS, Range, check_fields

SourceFormat = Literal["auto", "text", "gutenberg", "tei", "jsonl", "parquet", "csv", "hf"]


@dataclass
class SourceConfig:
    """One input: a file, a folder (read recursively), an archive, or a Hugging Face dataset.

    ``format: auto`` decides per file from its name and first bytes: ``.xml`` → TEI,
    ``.jsonl``/``.json`` → JSONL, ``.parquet`` → Parquet, ``.csv``/``.tsv`` → CSV (one document
    per row), a text file with Project Gutenberg markers → Gutenberg, any other text file →
    plain text. ``.gz``, ``.bz2`` and ``.xz`` are decompressed transparently; ``.tar*`` and
    ``.zip`` archives are read member by member, except EPUB, DOCX and ODT files (zip archives
    too), each read as one document.
    """

    path: str = ""
    format: SourceFormat = "auto"
    # Label of the documents when the reader cannot tell (theatre, prose, poetry, legal, ...).
    # Empty: the reader decides (TEI plays → theatre, novels → prose, text → guessed).
    kind: str = ""
    # Plain text: split a file into several documents at this separator ("" = one file, one document).
    doc_separator: str = ""
    # JSONL / Parquet / CSV / Hugging Face: which fields hold the text, the title and the id
    # (CSV: a column named text, texte, content or contenu, else the one with the most letters).
    text_field: str = "text"
    title_field: str = "title"
    id_field: str = "id"
    # Hugging Face datasets: configuration name and split (path is the dataset name or a local folder).
    hf_config: str = ""
    split: str = "train"
    # TEI plays: stage directions kept in parentheses "(Il sort.)" or dropped.
    stage_directions: Literal["keep", "drop"] = "keep"
    # Minimum length for this source's documents (overrides corpus.min_chars; e.g. for sentences).
    min_chars: Optional[int] = None
    # Keep at most this many documents from this source (0 = all); handy to sample big dumps.
    limit: int = 0
    # Named by the user on the command line (`causette run FILE`, `causette corpus build FILE`),
    # set by those commands: the language filter keeps its documents (corpus.lang_check_named).
    named: bool = False

    RANGES: ClassVar[dict[str, Range]] = {
        "min_chars": Range(min=0, note="null = corpus.min_chars"),
        "limit": Range(min=0, note="0 = all"),
    }

    def validate(self) -> None:
        if not self.path:
            raise ValueError("path is required (a file, a folder, an archive or a dataset name)")
        check_fields(self)


@dataclass
class NormalizeConfig:
    """French-aware cleaning rules, each one can be switched off."""

    nfc: bool = True  # Unicode NFC: 'é' as one code point, never e + combining accent
    # NBSP (U+00A0), narrow NBSP (U+202F), thin/figure/ideographic spaces, tabs:
    # "space" maps them all to a plain space (one spelling of "mot ?" for the model),
    # "nbsp" maps them all to U+00A0 (keeps French typographic spacing, one form only).
    exotic_spaces: Literal["space", "nbsp"] = "space"
    remove_control: bool = True  # zero-width characters, soft hyphens, C0/C1 controls (not \n)
    apostrophes: bool = True  # ’ ‘ ʼ → ' (typographic apostrophes and single quotes)
    strip_lines: bool = True  # trailing spaces at line ends, leading/trailing blank lines
    # Re-join hard-wrapped lines of plain-text books (Gutenberg wraps at ~70 columns):
    # "auto" when the document looks hard-wrapped (never theatre or poetry), "never" to keep lines.
    rejoin_lines: Literal["auto", "never"] = "auto"
    dehyphenate: bool = True  # "exem-\nple" → "exemple" while re-joining ("peut-\nêtre" keeps its hyphen)
    max_blank_lines: int = 1  # runs of blank lines collapsed to at most this many

    # More than a page of blank lines is a typo (and a huge count breaks the regex that applies it).
    RANGES: ClassVar[dict[str, Range]] = {"max_blank_lines": Range(0, 1000)}

    def validate(self) -> None:
        check_fields(self)


@dataclass
class CorpusConfig:
    """``causette corpus build``: sources → runs/<name>/corpus/{docs.jsonl.gz, manifest.json}."""

    # No sources: the demo corpus shipped in data/ is used.
    sources: list[SourceConfig] = field(default_factory=list)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    min_chars: int = 200  # documents shorter than this (after cleaning) are dropped
    # Offline French check: share of words that are French stop-words (French prose ≈ 0.35-0.45,
    # English ≈ 0.02-0.05 of French stop-words). Documents below the threshold are dropped.
    lang_check: bool = True
    min_french_ratio: float = 0.15
    # The filter is for mixed corpora (the sources of a config). Your own files, named on the
    # command line, are yours to choose: "keep" keeps what the filter would drop from them, with
    # one warning line; "drop" drops it like any other.
    lang_check_named: Literal["keep", "drop"] = "keep"
    dedup_exact: bool = True  # drop documents whose normalised text was already seen
    # Near duplicates (MinHash over word n-grams + LSH): drop a document whose estimated Jaccard
    # similarity with an earlier kept one is at least near_dup_threshold.
    near_dup: bool = True
    near_dup_threshold: float = 0.8
    minhash_perms: int = 128
    shingle_words: int = 5
    # Share held out for validation: whole documents when there are enough of them (>= 20, and
    # their characters near this share), else the last val_fraction of each long document
    # (see causette/corpus/split.py). 0: no val split (training then needs train.eval_tokens=0).
    val_fraction: float = 0.1
    # A corpus with fewer kept characters is refused at build time: too little to train on.
    min_total_chars: int = 10_000
    seed: int = 1337
    strict: bool = False  # any unreadable input aborts the build (exit code 1)
    # Processes cleaning and hashing documents (0: one per core; 1: all in this process, no pool).
    # The dedup decisions stay in document order: the corpus is the same for any value.
    workers: int = 0

    RANGES: ClassVar[dict[str, Range]] = {
        "min_chars": Range(min=0),
        "min_french_ratio": Range(0, 1, note="0 keeps every language"),
        "near_dup_threshold": Range(0, 1, min_open=True),
        "minhash_perms": Range(8, 1024),
        "shingle_words": Range(min=1),
        "val_fraction": Range(0, 1, max_open=True, note="0 = no val split"),
        "min_total_chars": Range(min=0),
        "seed": SEED,
        "workers": WORKERS,
    }

    def validate(self) -> None:
        check_fields(self)
