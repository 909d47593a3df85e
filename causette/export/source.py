"""What every exporter starts from: a checkpoint's model, tokenizer and stage, and which
model switches another format cannot express (the lists are causette/model/families.py's)."""

from __future__ import annotations

from pathlib import Path

import torch

from causette.checkpoint.load import load_checkpoint
from causette.errors import CausetteError
from causette.model.config import ModelConfig
from causette.model.families import GPT2, LLAMA


def open_checkpoint(path: str | Path):
    """The :class:`LoadedCheckpoint` (fp32, CPU) of a run, ``checkpoints/`` or step directory.

    LoRA checkpoints come back with their adapter merged: exports are always plain models.
    """
    loaded = load_checkpoint(path, device="cpu", precision="fp32")
    if loaded.tokenizer.kind != "bpe":
        raise CausetteError(
            f"{loaded.path}: the tokenizer is a {loaded.tokenizer.kind!r} tokenizer; only byte-level BPE "
            "tokenizers can be exported (train one with tokenizer.type=bpe)"
        )
    return loaded


def llama_blockers(cfg: ModelConfig) -> list[str]:
    """The switches of ``cfg`` that the Llama architecture (HF ``LlamaForCausalLM``, llama.cpp's
    ``llama``) cannot express; empty when it can."""
    return LLAMA.blockers(cfg)


def gpt2_blockers(cfg: ModelConfig) -> list[str]:
    """The switches of ``cfg`` that HF ``GPT2LMHeadModel`` cannot express; empty when it can."""
    return GPT2.blockers(cfg)


def check_llama(cfg: ModelConfig, target: str) -> None:
    """Raise one clear :class:`CausetteError` listing every switch that blocks a Llama export."""
    blockers = llama_blockers(cfg)
    if blockers:
        raise CausetteError(
            f"{target} needs a Llama-family model; these switches block the export: {'; '.join(blockers)}"
        )


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(name: str, allowed: tuple[str, ...] = tuple(DTYPES)) -> torch.dtype:
    aliases = {"fp32": "float32", "f32": "float32", "fp16": "float16", "f16": "float16", "bf16": "bfloat16"}
    name = aliases.get(name, name)
    if name not in allowed:
        raise CausetteError(f"unknown dtype {name!r}: choose one of {', '.join(allowed)}")
    return DTYPES[name]


def prepare_out_dir(out: str | Path, force: bool) -> Path:
    """Create ``out``; refuse a non-empty folder unless ``force`` (never delete anything)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CausetteError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CausetteError(f"{out}: not empty (use --force to write into it anyway)")
    out.mkdir(parents=True, exist_ok=True)
    return out
