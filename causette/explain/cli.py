"""The command line: ``python -m causette.explain TOPIC [TEXT] [options]``."""

from __future__ import annotations

import argparse
import sys

from causette.errors import CausetteError
from causette.explain.common import TOPICS, build

DESCRIPTION = "See the concepts of docs/ at work on a real model: python -m causette.explain TOPIC [TEXT]."


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--checkpoint", help="a run, checkpoints or step folder (default: a random demo model)")
    common.add_argument(
        "--tokenizer", help="tokenizer folder or file for the random model (default: learned in memory)"
    )
    common.add_argument("--config", help="model config of the random model (default: model/demo; model/moe for moe)")
    common.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. --set model.pos=learned")
    common.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    common.add_argument("--layer", type=int, default=0, help="which block (default 0)")
    common.add_argument("--head", type=int, default=0, help="which attention head (default 0)")
    common.add_argument("--top", type=int, default=6, help="how many neighbours or candidates to show")

    ap = argparse.ArgumentParser(prog="python -m causette.explain", description=DESCRIPTION)
    sub = ap.add_subparsers(dest="topic", metavar="<topic>", required=True)
    for name, (_fn, help_, takes_text) in TOPICS.items():
        p = sub.add_parser(name, help=help_, description=help_, parents=[common])
        if takes_text:
            p.add_argument("text", nargs="?", default="Le chat dort sur le lit.", help="the sentence to look at")
    sub.choices["positions"].add_argument("--dim", type=int, default=8, help="vector size (even, default 8)")
    sch = sub.choices["schedule"]
    sch.add_argument("--steps", type=int, default=1200, help="total steps (default 1200, as configs/demo.yaml)")
    sch.add_argument("--warmup", type=int, default=60, help="warmup steps (default 60)")
    smp = sub.choices["sampling"]
    smp.add_argument("text", nargs="?", default="Il était une fois", help="text whose next token is sampled")
    smp.add_argument("--logits", type=float, nargs="+", help="toy logits instead of a model's")
    smp.add_argument("--temperature", type=float, default=0.8)
    smp.add_argument("--top-k", type=int, default=0)
    smp.add_argument("--top-p", type=float, default=1.0)
    smp.add_argument("--min-p", type=float, default=0.0)
    bl = sub.choices["bleu"]
    bl.add_argument("hypothesis", help="the model's answer")
    bl.add_argument("reference", help="the expected answer")
    return ap


NEEDS_NO_MODEL = {"positions", "schedule", "muon", "bleu"}


def run(argv: list[str] | None = None) -> str:
    """Parse ``argv`` and return the text of the topic (what ``main`` prints)."""
    args = build_parser().parse_args(argv)
    fn, _help, _ = TOPICS[args.topic]
    if args.topic in NEEDS_NO_MODEL or (args.topic == "sampling" and args.logits):
        return fn(None, "", args)
    if TOPICS[args.topic][2] and not args.text.strip():
        raise CausetteError("give a non-empty text to look at")
    if args.topic == "sampling" and args.temperature < 0:
        raise CausetteError("--temperature must be >= 0")
    setup = build(args, "model/moe" if args.topic == "moe" else "model/demo")
    body = fn(setup, getattr(args, "text", ""), args)
    return f"{setup.about}\n\n{body}"


def main(argv: list[str] | None = None) -> int:
    try:
        print(run(argv))
    except (CausetteError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 0
