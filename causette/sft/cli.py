"""``causette sft``: instruction tuning and its tools, on the command line.

    causette sft [--base CKPT] [--data FILE ...] [--lora-r N] [--resume]   fine-tune (finetune.py)
    causette sft check FILE ... [--tokenizer PATH] [--block-size N]         validate instruction data
    causette sft convert [INPUT ...] -o OUT | --demo                         convert to our JSONL
    causette sft show FILE [--index N] [--tokenizer PATH]                    what the loss trains on
    causette sft merge CKPT OUT                                              bake a LoRA adapter in
    causette sft tool-data --out FILE [--n N] [--seed S] [--split eval]      generated tool-use conversations
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from causette.checkpoint.files import CONFIG_FILE, TOKENIZER_FILE
from causette.cli_args import add_config_args, config_from_args
from causette.errors import CausetteError
from causette.utils.paths import DEMO_SFT, RunLayout
from causette.utils.ranges import Range, number_in
from causette.utils.text import printable_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sft",
        help="instruction-tune a checkpoint into a chat model (and check, convert, show, merge data)",
        description="Fine-tune a pretrained checkpoint on conversations (full or LoRA). Without "
        "--data, the demo set data/sft_demo.jsonl.gz is used. Writes runs/<name>/sft/.",
        # Options are spelled out: with abbreviations, `sft tool-data --n 5` stops here, as an
        # ambiguous prefix of --name and --no-progress, before the tool's own parser sees it.
        allow_abbrev=False,
    )
    p.add_argument("--base", help="checkpoint or run directory to start from (default: sft.base, else this run)")
    p.add_argument("--data", nargs="+", action="extend", metavar="FILE", help="JSONL conversation file(s)")
    p.add_argument("--lora-r", type=number_in(Range(min=0, note="0 = full fine-tuning")), metavar="N",
                   help="LoRA rank (0: full fine-tuning; sets sft.lora.r)")
    p.add_argument("--resume", action="store_true", help="continue from the latest SFT checkpoint, exactly")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1, mps, xpu (overrides sft.train.device)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_args(p)
    p.set_defaults(func=run_sft)
    tools = p.add_subparsers(dest="sft_command", metavar="<tool>")

    c = tools.add_parser("check", help="validate instruction data: errors with line numbers, then statistics",
                         description="Check JSONL instruction data (messages or Alpaca records). Exit 1 on errors.")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--tokenizer", metavar="PATH",
                   help="tokenizer.json, its folder, a checkpoint or a run: count tokens")
    c.add_argument("--block-size", type=number_in(Range(min=2)), metavar="N",
                   help="context length: longer conversations are errors "
                   "(default: the checkpoint's, when --tokenizer names one)")
    c.set_defaults(func=run_check)

    v = tools.add_parser("convert", help="convert instruction data to our messages JSONL (or rebuild the demo set)",
                         description="Convert JSONL in messages, Alpaca or self-instruct (instances) form to our "
                         "messages JSONL. Without INPUT: the French sets of the data repository (CC BY-NC 4.0). "
                         "--demo rebuilds data/sft_demo.jsonl.gz from the public-domain demo corpus.")
    v.add_argument("inputs", nargs="*", metavar="INPUT")
    v.add_argument("-o", "--output", metavar="OUT", help="file to write (.jsonl or .jsonl.gz)")
    v.add_argument("--demo", action="store_true", help="generate the demo set from data/demo_fr_pd.txt.gz")
    v.add_argument("--shared", metavar="DIR", help="folder of the French SFT files (default: ../shared/data/sft)")
    v.set_defaults(func=run_convert)

    s = tools.add_parser("show", help="print one conversation as the model sees it, trained tokens highlighted",
                         description="Render a conversation with the chat template. Tokens the loss trains on "
                         "(assistant answers and their <|im_end|>) are coloured on a terminal, [[bracketed]] otherwise.")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--index", type=number_in(Range(min=0)), default=0, metavar="N",
                   help="which valid conversation (from 0)")
    s.add_argument("--tokenizer", metavar="PATH", help="tokenizer (default: the run's, runs/<name>/tokenizer)")
    s.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    s.set_defaults(func=run_show)

    m = tools.add_parser("merge", help="bake a LoRA adapter into a full checkpoint",
                         description="Write base + adapter as one ordinary checkpoint (no base needed after).")
    m.add_argument("checkpoint", metavar="CKPT", help="LoRA checkpoint (or SFT run folder: its latest)")
    m.add_argument("out", metavar="OUT", help="new checkpoint directory")
    m.set_defaults(func=run_merge)

    g = tools.add_parser("tool-data", help="write generated conversations in which the assistant uses its tools",
                         description="Generate French conversations with tool calls (calculer, date_heure, "
                         "note_ajouter, notes_lister, convertir, chercher), requests that need no tool and requests "
                         "for tools that do not exist (causette/sft/tool_data.py). --split eval uses held-out "
                         "phrasings and gives each conversation its expected call.")
    g.add_argument("--out", required=True, metavar="FILE", help="file to write (.jsonl or .jsonl.gz)")
    g.add_argument("-n", "--n", type=number_in(Range(min=1)), default=2000, metavar="N", help="conversations (default 2000)")
    g.add_argument("--seed", type=number_in(Range(min=0)), default=0, metavar="S", help="random seed (default 0)")
    g.add_argument("--split", choices=("train", "eval"), default="train",
                   help="train phrasings, or the held-out eval phrasings (default train)")
    g.set_defaults(func=run_tool_data)


# ----------------------------------------------------------------------------- fine-tuning


def run_sft(args: argparse.Namespace) -> int:
    from causette.sft.finetune import finetune

    if args.lora_r is not None:
        args.overrides = [*args.overrides, f"sft.lora.r={args.lora_r}"]
    cfg = config_from_args(args)
    result, _ = finetune(cfg, base=args.base, data=args.data, resume=args.resume, device_name=args.device,
                         progress=not args.no_progress)
    return 130 if result.stopped == "interrupted" else 0


def run_merge(args: argparse.Namespace) -> int:
    from causette.checkpoint.adapters import merge_checkpoint

    out = merge_checkpoint(args.checkpoint, args.out)
    print(f"merged: {out} (a full checkpoint; `causette chat --checkpoint {out}` needs no base)")
    return 0


def run_tool_data(args: argparse.Namespace) -> int:
    from causette.sft.tool_data import KINDS, write_tool_data

    counts = write_tool_data(args.out, args.n, args.seed, args.split)
    kinds = ", ".join(f"{k} {counts[k]}" for k in KINDS)
    print(f"tool data ({args.split}, seed {args.seed}): {args.n} conversations ({kinds}) → {printable_path(args.out)}")
    return 0


# ----------------------------------------------------------------------------- check


def resolve_tokenizer(path: str | Path) -> tuple[Path, int | None]:
    """``tokenizer.json`` named by ``path`` (the file, its folder, a checkpoint or a run), and the
    context length when ``path`` is a checkpoint (its ``config.json``)."""
    path = Path(path)
    for candidate in (path, path / TOKENIZER_FILE, RunLayout(path).tokenizer_file):
        if candidate.is_file():
            block = None
            config = candidate.parent / CONFIG_FILE
            if config.is_file():
                try:
                    block = int(json.loads(config.read_text(encoding="utf-8"))["model"]["block_size"])
                except (OSError, ValueError, KeyError, TypeError):
                    block = None
            return candidate, block
    raise CausetteError(f"{path}: no {TOKENIZER_FILE} there (give a tokenizer file, its folder, a checkpoint or a run)")


def format_stats(stats: dict) -> list[str]:
    if not stats["conversations"]:
        return ["no valid conversation"]
    lines = [f"{stats['conversations']:,} conversations, {stats['turns']:,} turns "
             f"({stats['with_system']:,} with a system prompt), {stats['characters']:,} characters"]
    if "tokens" in stats:
        lines.append(f"tokens: {stats['tokens']:,} ({stats['trained_tokens']:,} trained: "
                     "assistant answers and their <|im_end|>)")
    lines.append(f"length in {stats['unit']}: min {stats['min']:,}, median {stats['median']:,.0f}, "
                 f"max {stats['max']:,}")
    return lines


def run_check(args: argparse.Namespace) -> int:
    from causette.sft.data import check_file
    from causette.tokenizer.io import load_tokenizer

    tokenizer, block = None, args.block_size
    if args.tokenizer:
        tok_file, ckpt_block = resolve_tokenizer(args.tokenizer)
        tokenizer = load_tokenizer(tok_file)
        block = block or ckpt_block
    errors = 0
    for f in args.files:
        report = check_file(f, tokenizer, block)
        for issue in report.errors:
            print(f"{issue.where(f)}: {issue.message}")
        errors += len(report.errors)
        print(f"{printable_path(f)}: " + "\n  ".join(format_stats(report.stats())))
        if tokenizer is None:
            print("  (give --tokenizer to count tokens and --block-size to check lengths against the context)")
    print(f"{errors} error{'s' if errors != 1 else ''}" if errors else "ok: no errors")
    return 1 if errors else 0


# ----------------------------------------------------------------------------- convert


def run_convert(args: argparse.Namespace) -> int:
    from causette.sft.convert import NON_COMMERCIAL, SHARED_SFT, convert, shared_inputs
    from causette.sft.data import check_file
    from causette.sft.demo import write_demo

    if args.demo:
        if args.inputs:
            raise CausetteError("--demo builds from the demo corpus: give no INPUT")
        out = Path(args.output or DEMO_SFT)
        n = write_demo(out)
        print(f"demo set: {n} conversations → {out}")
    else:
        if not args.output:
            raise CausetteError("give the file to write with -o OUT (or --demo)")
        inputs = args.inputs or shared_inputs(args.shared or SHARED_SFT)
        if not args.inputs:
            print(f"note: {NON_COMMERCIAL}")
        out = Path(args.output)
        report = convert(inputs, out)
        for why in report.skipped:
            print(f"skipped {why}")
        sources = ", ".join(f"{k}: {v}" for k, v in report.by_source.items())
        print(f"{report.written} conversations ({sources}) → {out}")
    check = check_file(out)
    for issue in check.errors:
        print(f"{issue.where(out)}: {issue.message}")
    print("checked: " + "\n  ".join(format_stats(check.stats())))
    return 1 if check.errors else 0


# ----------------------------------------------------------------------------- show


GREEN, RESET = "\x1b[1;32m", "\x1b[0m"


def highlight(tokenizer, messages: list[dict], color: bool) -> tuple[str, int, int]:
    """The rendered conversation with its trained spans marked; (text, tokens, trained tokens).

    Runs of tokens with the same mask value are decoded together: a run boundary always sits
    next to a special token, so no character is ever split between two runs.
    """
    from causette.data.chat_template import render_chat

    ids, mask = render_chat(tokenizer, messages)
    parts, start = [], 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or mask[i] != mask[start]:
            text = tokenizer.decode(ids[start:i])
            if mask[start]:
                text = f"{GREEN}{text}{RESET}" if color else f"[[{text}]]"
            parts.append(text)
            start = i
    return "".join(parts), len(ids), sum(mask)


def run_show(args: argparse.Namespace) -> int:
    from causette.sft.data import check_file
    from causette.tokenizer.io import load_tokenizer

    where = args.tokenizer or config_from_args(args).run.path
    tokenizer = load_tokenizer(resolve_tokenizer(where)[0])
    report = check_file(args.file)
    n = len(report.conversations)
    if not 0 <= args.index < n:
        raise CausetteError(f"{printable_path(args.file)}: --index {args.index} out of range "
                            f"({n} valid conversations)")
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    text, total, trained = highlight(tokenizer, report.conversations[args.index], color)
    how = "in green" if color else "between [[ ]]"
    print(f"{printable_path(args.file)}:{report.lines[args.index]}: conversation {args.index}, {total} tokens, "
          f"{trained} trained (shown {how}: the loss learns only these)")
    print(text)
    return 0
