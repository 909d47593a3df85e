"""``causette prepare``: the command-line face of :mod:`causette.data.prepare`."""

from __future__ import annotations

import argparse
from pathlib import Path

from causette.cli_args import add_config_args, config_from_args
from causette.utils.lock import claim_run
from causette.utils.paths import RunLayout


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="tokenise the corpus into runs/<name>/data/{train,val}.bin + meta.json",
        description="Tokenise the train and val splits of a built corpus with the run's tokenizer.",
    )
    p.add_argument("--corpus", type=Path, help="corpus folder (default: runs/<name>/corpus)")
    p.add_argument("--tokenizer", type=Path, help="tokenizer folder or file (default: runs/<name>/tokenizer)")
    p.add_argument("--out", type=Path, help="output folder (default: runs/<name>/data)")
    p.add_argument("--workers", type=int, default=0, help="processes (default: one per core)")
    p.add_argument("--force", action="store_true", help="replace --out even if it is not token data Causette wrote")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_args(p)
    p.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    from causette.data.prepare import prepare

    cfg = config_from_args(args)
    run = RunLayout(cfg.run.path)
    with claim_run(None if args.out else run.root):
        prepare(
            args.corpus or run.corpus,
            args.tokenizer or run.tokenizer,
            args.out or run.data,
            workers=args.workers or None,
            progress=not args.no_progress,
            force=args.force,
        )
    return 0
