"""``causette eval`` and ``causette report``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("eval", help="loss, perplexity, bits per byte (and BLEU/chrF, grammar) of a checkpoint",
                       description="Measure a checkpoint on text files, a corpus folder (its val split) or, "
                       "by default, the val split of its own run; --sft adds BLEU/chrF on instruction data; "
                       "--suite grammaire and --pairs score minimal pairs (grammar), alone unless --data or --sft "
                       "is given too.")
    e.add_argument("--checkpoint", required=True, help="run dir, checkpoints dir or step dir")
    e.add_argument("--data", nargs="+", help="text files or folders (cleaned like the run's corpus), or corpus folders")
    e.add_argument("--raw", action="store_true", help="score the --data files' bytes as given, without cleaning")
    e.add_argument("--sft", nargs="+", help="instruction JSONL files: SFT loss, BLEU and chrF")
    e.add_argument("--pairs", nargs="+", metavar="FILE",
                   help="minimal pairs, BLiMP-style JSONL (sentence_good, sentence_bad, phenomenon): accuracy per phenomenon")
    e.add_argument("--suite", action="append", choices=["grammaire", "outils"],
                   help="a built-in suite: grammaire (French agreement by minimal pairs, from Universal "
                   "Dependencies), outils (tool use on held-out phrasings: right tool, exact arguments, answers)")
    e.add_argument("--max-tokens", type=int, default=131072, help="tokens of text to evaluate at most")
    e.add_argument("--device", default="auto")
    e.add_argument("--json", type=Path, help="also write the results to this JSON file")
    e.set_defaults(func=run_eval_cli)

    r = sub.add_parser("report", help="write runs/<name>/report.md with plots",
                       description="Write (or rewrite) the report of a run from the files its stages wrote.")
    r.add_argument("run", type=Path, help="run directory, e.g. runs/demo")
    r.set_defaults(func=run_report_cli)


def run_eval_cli(args: argparse.Namespace) -> int:
    from causette.eval.evaluate import format_eval, run_eval
    from causette.utils.io import write_json

    result = run_eval(args.checkpoint, data=args.data, sft=args.sft, max_tokens=args.max_tokens, device=args.device,
                      raw=args.raw, pairs=args.pairs, suites=args.suite)
    for line in format_eval(result):
        print(line)
    if args.json:
        write_json(args.json, result)
    return 0


def run_report_cli(args: argparse.Namespace) -> int:
    from causette.eval.report import write_report

    print(f"report: {write_report(args.run)}")
    return 0
