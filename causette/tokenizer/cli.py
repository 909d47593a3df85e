"""``causette tokenizer train|stats``: the commands of the tokenizer stage.

Examples::

    causette tokenizer train                      # runs/demo/corpus (train split) → runs/demo/tokenizer/
    causette tokenizer train --set tokenizer.vocab_size=16384 --name big
    causette tokenizer train livre1.txt textes/   # any UTF-8 text files or folders
    causette tokenizer stats                      # bytes/token etc. on runs/demo/corpus (val split)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from causette.cli_args import add_config_args, config_from_args
from causette.errors import CausetteError
from causette.utils.artefact import check_output
from causette.utils.lock import claim_run
from causette.utils.paths import RunLayout


def register(subparsers) -> None:
    parser = subparsers.add_parser("tokenizer", help="train a tokenizer, or measure one")
    sub = parser.add_subparsers(dest="tokenizer_command", metavar="<command>")
    parser.set_defaults(func=lambda args: _usage(parser))

    train = sub.add_parser(
        "train",
        help="train the tokenizer on the run's corpus (or on text files)",
        description="Train a byte-level BPE (or char) tokenizer: tokenizer.json and hf/tokenizer.json.",
    )
    add_config_args(train)
    train.add_argument(
        "files", nargs="*", help="UTF-8 text files or folders (.gz allowed) instead of a corpus"
    )
    train.add_argument(
        "--corpus", help="corpus folder built by `causette corpus build` (default: runs/<name>/corpus)"
    )
    train.add_argument("--out", help="output folder (default: runs/<name>/tokenizer)")
    train.add_argument("--force", action="store_true", help="write into --out even if it is not a tokenizer folder")
    train.set_defaults(func=run_train)

    stats = sub.add_parser(
        "stats",
        help="bytes per token, vocabulary usage, longest tokens, sample segmentations",
        description="Measure a trained tokenizer on the validation split of a corpus (or on text files).",
    )
    add_config_args(stats)
    stats.add_argument(
        "files", nargs="*", help="UTF-8 text files or folders to measure on instead of a corpus"
    )
    stats.add_argument("--tokenizer", help="tokenizer folder or file (default: runs/<name>/tokenizer)")
    stats.add_argument("--corpus", help="corpus folder (default: runs/<name>/corpus)")
    stats.add_argument(
        "--split", default="val", choices=["train", "val", "all"], help="corpus split (default: val)"
    )
    stats.add_argument(
        "--color", choices=["auto", "always", "never"], default="auto", help="colour the tokens"
    )
    stats.set_defaults(func=run_stats)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _inputs(args, cfg, split: str):
    """(texts, description, corpus folder or None) from FILES or --corpus or the run's corpus."""
    from causette.tokenizer.train import read_text_files

    if args.files and args.corpus:
        raise CausetteError("give either text files or --corpus, not both")
    if args.files:
        return read_text_files(args.files), ", ".join(args.files), None
    from causette.corpus.store import iter_texts, read_manifest

    corpus = Path(args.corpus) if args.corpus else RunLayout(cfg.run.path).corpus
    read_manifest(corpus)  # a clear error now if the corpus is missing
    return iter_texts(corpus, split), f"{corpus} ({split} split)", corpus


def run_train(args) -> int:
    from causette.tokenizer.train import train_tokenizer

    cfg = config_from_args(args)
    texts, source, corpus = _inputs(args, cfg, "train")
    out = Path(args.out) if args.out else RunLayout(cfg.run.path).tokenizer
    check_output(out, "tokenizer", force=args.force, protect=[*args.files, *([corpus] if corpus else [])],
                 replaces=False)
    start = time.perf_counter()
    with claim_run(None if args.out else cfg.run.path):
        tok = train_tokenizer(cfg.tokenizer, texts, out_dir=out, progress=True, source=source)
    seconds = time.perf_counter() - start
    learned = tok.vocab_size - 256 - len(tok.special_tokens)
    kind = "merges" if tok.kind == "bpe" else "characters"
    measure = _bytes_per_token(tok, corpus)
    print(
        f"tokenizer: {tok.vocab_size:,} tokens (256 bytes + {learned:,} {kind} + {len(tok.special_tokens)}"
        f" specials) in {seconds:.1f} s on {tok.metadata.get('characters', 0):,} characters{measure}"
        f" → {out / 'tokenizer.json'}"
    )
    return 0


def _bytes_per_token(tok, corpus) -> str:
    """The end of the summary line: ``, 3.92 bytes/token on val`` when there is a val split."""
    if corpus is None:
        return ""
    from causette.corpus.store import iter_texts

    texts = [t for t in iter_texts(corpus, "val") if t]
    if not texts:
        return ""
    n_tokens = sum(len(ids) for ids in tok.encode_batch(texts))
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return f", {n_bytes / max(1, n_tokens):.2f} bytes/token on val"


def run_stats(args) -> int:
    from causette.tokenizer.io import load_tokenizer
    from causette.tokenizer.stats import compute_stats, format_report

    cfg = config_from_args(args)
    tok = load_tokenizer(Path(args.tokenizer) if args.tokenizer else RunLayout(cfg.run.path).tokenizer)
    texts, source, _ = _inputs(args, cfg, args.split)
    stats = compute_stats(tok, texts)
    if stats["tokens"] == 0:
        raise CausetteError(f"no text to measure on: {source} is empty")
    colour = args.color == "always" or (
        args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    )
    print(format_report(tok, stats, source, colour=colour))
    return 0
