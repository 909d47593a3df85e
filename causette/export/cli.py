"""``causette export hf|gguf`` and ``causette import hf``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    exp = sub.add_parser("export", help="export a checkpoint for transformers (hf), llama.cpp (gguf) or Ollama")
    esub = exp.add_subparsers(dest="export_command", metavar="<format>", required=True)

    p = esub.add_parser("hf", help="a Hugging Face transformers folder (Llama or GPT-2 architecture)")
    p.add_argument("checkpoint", help="run directory, checkpoints/ directory or one step directory")
    p.add_argument("out", help="output folder (created; must be empty unless --force)")
    p.add_argument("--dtype", default="float32", help="float32 (default), float16 or bfloat16")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.set_defaults(func=_export_hf)

    p = esub.add_parser("gguf", help="one .gguf file for llama.cpp (Llama architecture)")
    p.add_argument("checkpoint", help="run directory, checkpoints/ directory or one step directory")
    p.add_argument("out", help="output file (…/model.gguf)")
    p.add_argument("--dtype", default="float32", help="float32 (default) or float16")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=_export_gguf)

    p = esub.add_parser("ollama", help="a folder for `ollama create`: model.gguf + Modelfile (Llama architecture)")
    p.add_argument("checkpoint", help="run directory, checkpoints/ directory or one step directory")
    p.add_argument("out", help="output folder (created; must be empty unless --force)")
    p.add_argument("--dtype", default="float32", help="float32 (default) or float16")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.set_defaults(func=_export_ollama)

    imp = sub.add_parser("import", help="turn a Hugging Face model into a Causette checkpoint")
    isub = imp.add_subparsers(dest="import_command", metavar="<format>", required=True)
    p = isub.add_parser("hf", help="a local Hugging Face Llama-family folder (byte-level BPE tokenizer)")
    p.add_argument("hf_dir", help="folder with config.json, *.safetensors and tokenizer.json")
    p.add_argument("out", help="checkpoint folder to create (use it with chat --checkpoint, sft --base)")
    p.add_argument(
        "--stage",
        choices=("auto", "pretrain", "sft"),
        default="auto",
        help="auto: sft only if the model already uses Causette's chat template",
    )
    p.add_argument(
        "--block-size", type=int, help="context of the imported model (default: its max_position_embeddings)"
    )
    p.add_argument("--force", action="store_true", help="write into a non-empty folder")
    p.set_defaults(func=_import_hf)


def _export_hf(args: argparse.Namespace) -> int:
    from causette.export.hf import export_hf

    out = export_hf(args.checkpoint, args.out, dtype=args.dtype, force=args.force)
    print(f"wrote {out} (load it with transformers.AutoModelForCausalLM.from_pretrained)")
    return 0


def _export_gguf(args: argparse.Namespace) -> int:
    from causette.export.gguf import export_gguf

    out = export_gguf(args.checkpoint, args.out, dtype=args.dtype, force=args.force, warn=_warn)
    print(f"wrote {out} (run it with llama.cpp: llama-cli -m {out})")
    return 0


def _export_ollama(args: argparse.Namespace) -> int:
    from causette.export.ollama import export_ollama

    out = export_ollama(args.checkpoint, args.out, dtype=args.dtype, force=args.force, warn=_warn)
    name = Path(args.out).resolve().name.lower() or "causette"
    print(f"wrote {out / 'model.gguf'} and {out / 'Modelfile'} "
          f"(then: ollama create {name} -f {out / 'Modelfile'} && ollama run {name})")
    return 0


def _warn(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr)


def _import_hf(args: argparse.Namespace) -> int:
    from causette.export.importer import import_hf

    result = import_hf(args.hf_dir, args.out, stage=args.stage, force=args.force, block_size=args.block_size)
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {result.path} (stage {result.stage}, vocabulary {result.vocab_size})")
    return 0
