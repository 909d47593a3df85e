"""``causette corpus build``: the command-line face of :mod:`causette.corpus.build`."""

from __future__ import annotations

import argparse
from pathlib import Path

from causette.cli_args import add_config_args, config_from_args
from causette.utils.lock import claim_run
from causette.utils.paths import RunLayout

FORMATS = ["auto", "text", "gutenberg", "tei", "jsonl", "parquet", "csv", "hf"]


def register(sub: argparse._SubParsersAction) -> None:
    corpus = sub.add_parser("corpus", help="gather, clean, deduplicate and split French text")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", metavar="<command>")
    corpus.set_defaults(func=lambda args: (corpus.print_help(), 2)[1])

    build = corpus_sub.add_parser(
        "build",
        help="build runs/<name>/corpus/{docs.jsonl.gz, manifest.json}",
        description="Build a clean French corpus from the sources of the config, or from the "
        "SOURCE paths given here (files, folders, archives). With neither, the shipped demo corpus.",
    )
    build.add_argument("sources", nargs="*", metavar="SOURCE", help="file, folder or archive (replaces the config's sources)")
    build.add_argument("--format", choices=FORMATS, default="auto", help="format of the SOURCE paths (default: auto)")
    build.add_argument("--kind", default="", help="kind of the SOURCE documents (theatre, prose, ...; default: guessed)")
    build.add_argument("--text-field", default="text", help="JSONL/Parquet field holding the text (default: text)")
    build.add_argument("--strict", action="store_true", help="any unreadable input is fatal (exit code 1)")
    build.add_argument("--out", type=Path, help="output folder (default: runs/<name>/corpus)")
    build.add_argument("--force", action="store_true", help="replace --out even if it is not a corpus Causette wrote")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_args(build)
    build.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from causette.corpus.build import build_corpus
    from causette.corpus.config import SourceConfig

    cfg = config_from_args(args)
    corpus_cfg = cfg.corpus
    if args.sources:
        corpus_cfg.sources = [
            SourceConfig(path=s, format=args.format, kind=args.kind, text_field=args.text_field, named=True)
            for s in args.sources
        ]
    if args.strict:
        corpus_cfg.strict = True
    out = args.out or RunLayout(cfg.run.path).corpus
    with claim_run(None if args.out else cfg.run.path):
        result = build_corpus(corpus_cfg, out, progress=not args.no_progress, force=args.force)
    for line in result.summary_lines:
        print(line)
    m = result.manifest
    mb = m["bytes"]["kept"] / 1e6
    print(
        f"corpus: {m['documents']['kept']:,} documents, {m['characters']['kept']:,} characters ({mb:.1f} MB) "
        f"→ {out}/docs.jsonl.gz in {result.seconds:.1f}s"
    )
    return 0
