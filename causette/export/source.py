"""What every exporter starts from: a checkpoint's model, tokenizer and stage, and which
model switches another format cannot express."""

from __future__ import annotations

from pathlib import Path

import torch

from causette.errors import CausetteError
from causette.model.config import ModelConfig


def open_checkpoint(path: str | Path):
    """The :class:`LoadedCheckpoint` (fp32, CPU) of a run, ``checkpoints/`` or step directory.

    LoRA checkpoints come back with their adapter merged: exports are always plain models.
    """
    from causette.checkpoint.load import load_checkpoint

    loaded = load_checkpoint(path, device="cpu", precision="fp32")
    if loaded.tokenizer.kind != "bpe":
        raise CausetteError(
            f"{loaded.path}: the tokenizer is a {loaded.tokenizer.kind!r} tokenizer; only byte-level BPE "
            "tokenizers can be exported (train one with tokenizer.type=bpe)"
        )
    return loaded


def progression_blockers(cfg: ModelConfig) -> list[str]:
    """The progression's switches (docs/progression.md): no runtime has these models."""
    out = []
    if cfg.n_layer == 0:
        out.append("n_layer=0 (a bigram model: the formats expect at least one block)")
    if cfg.mixer != "attention":
        out.append(f"mixer={cfg.mixer} (the formats know attention only)")
    return out


def llama_blockers(cfg: ModelConfig) -> list[str]:
    """The switches of ``cfg`` that the Llama architecture (HF ``LlamaForCausalLM``, llama.cpp's
    ``llama``) cannot express; empty when it can."""
    out = progression_blockers(cfg)
    if cfg.pos != "rope":
        out.append(f"pos={cfg.pos} (Llama uses rope)")
    if cfg.norm != "rmsnorm":
        out.append(f"norm={cfg.norm} (Llama uses rmsnorm)")
    if cfg.mlp != "swiglu":
        out.append(f"mlp={cfg.mlp} (Llama uses swiglu)")
    if cfg.bias:
        out.append("bias=true (Llama has no biases)")
    if cfg.qk_norm:
        out.append("qk_norm=true (Llama has no QK-norm)")
    if cfg.logit_softcap is not None:
        out.append(f"logit_softcap={cfg.logit_softcap} (Llama has no logit soft-cap)")
    if cfg.n_experts:
        out.append(f"n_experts={cfg.n_experts} (Llama has no Mixture-of-Experts)")
    if cfg.sliding_window is not None:
        out.append(f"sliding_window={cfg.sliding_window} (Llama has no sliding-window attention)")
    return out


def gpt2_blockers(cfg: ModelConfig) -> list[str]:
    """The switches of ``cfg`` that HF ``GPT2LMHeadModel`` cannot express; empty when it can."""
    out = progression_blockers(cfg)
    if cfg.pos != "learned":
        out.append(f"pos={cfg.pos} (GPT-2 uses learned)")
    if cfg.norm != "layernorm":
        out.append(f"norm={cfg.norm} (GPT-2 uses layernorm)")
    if cfg.mlp != "gelu":
        out.append(f"mlp={cfg.mlp} (GPT-2 uses gelu)")
    if not cfg.bias:
        out.append("bias=false (GPT-2 has biases everywhere)")
    if not cfg.tie_embeddings:
        out.append("tie_embeddings=false (GPT-2 ties them)")
    if cfg.kv_heads != cfg.n_head:
        out.append(f"n_kv_head={cfg.kv_heads} (GPT-2 has one key/value head per query head)")
    if cfg.qk_norm:
        out.append("qk_norm=true (GPT-2 has no QK-norm)")
    if cfg.logit_softcap is not None:
        out.append(f"logit_softcap={cfg.logit_softcap} (GPT-2 has no logit soft-cap)")
    if cfg.n_experts:
        out.append(f"n_experts={cfg.n_experts} (GPT-2 has no Mixture-of-Experts)")
    if cfg.sliding_window is not None:
        out.append(f"sliding_window={cfg.sliding_window} (GPT-2 has no sliding-window attention)")
    return out


def mistral_blockers(cfg: ModelConfig) -> list[str]:
    """The switches that HF ``MistralForCausalLM`` (Llama + a sliding window) cannot express."""
    return [b for b in llama_blockers(cfg) if not b.startswith("sliding_window=")]


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
