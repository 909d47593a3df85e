"""Open a checkpoint for generation: the model, its tokenizer, and whether it is a chat model.

A checkpoint directory is self-contained (causette/checkpoint/steps.py): ``config.json`` and
``model.safetensors`` for the model, a copy of ``tokenizer.json``, and ``state.json`` whose
``"stage"`` says how it was trained: ``"sft"`` makes a chat model, anything else (``"pretrain"``)
a base model that can only continue text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from causette.checkpoint.adapters import load_adapted
from causette.checkpoint.files import ADAPTER_JSON, STATE_FILE, TOKENIZER_FILE
from causette.checkpoint.steps import find_checkpoint
from causette.checkpoint.weights import load_model
from causette.errors import CausetteError
from causette.model.quantize import QUANTIZE_MODES, quantize_model
from causette.tokenizer.io import load_tokenizer
from causette.utils.device import pick_device, resolve_dtype

CHAT_STAGE = "sft"


@dataclass
class LoadedCheckpoint:
    model: torch.nn.Module
    tokenizer: object
    path: Path  # the checkpoint directory actually used
    stage: str  # "sft", "pretrain", or "unknown" (no state.json)
    quantize: str = "none"  # "int8": linear layers quantised for inference (quantize.py)
    n_params: int | None = None  # counted before quantisation (None: count the parameters now)
    trained_with_tools: bool = False  # its SFT had tool conversations (sft.tool_data): chat offers them

    @property
    def is_chat_model(self) -> bool:
        return self.stage == CHAT_STAGE

    def describe(self) -> str:
        n = self.n_params or sum(p.numel() for p in self.model.parameters())
        cfg = self.model.cfg
        dtype = str(next(self.model.parameters()).dtype).removeprefix("torch.")
        if self.quantize != "none":
            dtype += f", {self.quantize} linear layers"
        return (
            f"{self.path} ({n / 1e6:.1f}M parameters, {cfg.n_layer} layers, context {cfg.block_size}, "
            f"stage {self.stage}, {dtype} on {next(self.model.parameters()).device})"
        )


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPUs that have it; fp32 elsewhere. On a CPU, torch's bf16 matrix-vector
    products are no faster than fp32 ones (bench/LOG.md), so bf16 gains nothing for decoding
    one token at a time and would only change the numbers; ``quantize="int8"`` is the CPU's
    faster option."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_checkpoint(
    path: str | Path,
    device: str = "auto",
    precision: str = "auto",
    tokenizer_path: str | Path | None = None,
    quantize: str = "none",
) -> LoadedCheckpoint:
    """Resolve ``path`` (run dir, checkpoints dir or step dir) and load what generation needs.

    ``precision``: ``auto`` (see :func:`default_dtype`), ``fp32`` or ``bf16``: the weights are
    converted, no autocast. ``tokenizer_path`` overrides the checkpoint's own copy.
    ``quantize``: ``none`` or ``int8`` (CPU only: weight-only int8 linear layers, faster at
    batch 1, logits within a few tenths of a percent; see quantize.py).
    """
    ckpt = find_checkpoint(path)
    tok_file = Path(tokenizer_path) if tokenizer_path is not None else ckpt / TOKENIZER_FILE
    if tokenizer_path is None and not tok_file.is_file():
        raise CausetteError(f"{ckpt}: no {TOKENIZER_FILE} in this checkpoint (give one with --tokenizer)")
    if quantize not in QUANTIZE_MODES:
        raise CausetteError(f"unknown quantisation {quantize!r}: choose one of {', '.join(QUANTIZE_MODES)}")
    tokenizer = load_tokenizer(tok_file)
    dev = pick_device(device)
    dtype = default_dtype(dev) if precision == "auto" else resolve_dtype(precision, dev)
    if (ckpt / ADAPTER_JSON).is_file():  # a LoRA checkpoint (causette sft): its base + the adapter, merged
        model = load_adapted(ckpt, device=dev, dtype=dtype, expected_vocab=tokenizer.vocab_size)
    else:
        model = load_model(ckpt, expected_vocab=tokenizer.vocab_size, device=dev, dtype=dtype)
    n_params = sum(p.numel() for p in model.parameters())
    model = quantize_model(model, quantize)
    stage, tools = "unknown", False
    state_file = ckpt / STATE_FILE
    if state_file.is_file():
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
            stage = str(state.get("stage", "pretrain"))
            tools = stage == CHAT_STAGE and bool((state.get("config") or {}).get("sft", {}).get("tool_data"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
            raise CausetteError(f"{state_file}: unreadable checkpoint state ({e})") from None
    return LoadedCheckpoint(model, tokenizer, ckpt, stage, quantize, n_params, tools)
