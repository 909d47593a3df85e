"""LoRA checkpoints: the adapter files, loading an adapted model, and merging it into a full one.

A LoRA checkpoint (``causette sft`` with ``sft.lora.r > 0``) is a step directory like any other
(:mod:`causette.checkpoint.steps`) whose weights are only the adapter::

    step_0000150/
        config.json            the model config (as for full weights)
        adapter.safetensors    the low-rank matrices A and B of every adapted layer (small)
        adapter.json           the LoRA settings and the base checkpoint, absolute and relative
        tokenizer.json, state.json

:func:`load_adapted` rebuilds a plain model (base + adapter, merged); ``causette sft merge``
(:func:`merge_checkpoint`) writes it as an ordinary full checkpoint that no longer needs the base.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from causette.checkpoint import steps as ckpt
from causette.checkpoint.files import ADAPTER_FILE, ADAPTER_JSON, CONFIG_FILE, MODEL_FILE
from causette.checkpoint.weights import FORMAT, FORMAT_VERSION, load_model, save_model
from causette.config import to_dict
from causette.errors import CausetteError
from causette.model.config import LoRAConfig
from causette.model.lora import adapter_state, apply_lora, load_adapter_state, merge_lora
from causette.model.transformer import Transformer
from causette.utils.io import atomic_dir, sha256_file, write_json


def adapter_saver(lora: LoRAConfig, base_dir: Path):
    """``save_weights`` hook of the Trainer for LoRA: config.json + the adapter only.

    ``adapter.json`` names the base checkpoint twice: absolute, and relative to the adapter's
    directory, so that a run folder moved as a whole still finds its base.
    """

    def save(model: torch.nn.Module, directory: Path) -> None:
        write_json(directory / CONFIG_FILE, {"format": FORMAT, "version": FORMAT_VERSION, "dtype": "float32",
                                             "model": dataclasses.asdict(model.cfg)})
        save_file(adapter_state(model), str(directory / ADAPTER_FILE))
        # ``directory`` is a temporary sibling of the final step directory: same relative path.
        base = base_dir.resolve()
        write_json(directory / ADAPTER_JSON, {"lora": to_dict(lora), "base": str(base),
                                              "base_relative": os.path.relpath(base, directory.resolve()),
                                              "adapter_sha256": sha256_file(directory / ADAPTER_FILE)})

    return save


def adapter_loader(model: torch.nn.Module, directory: Path) -> None:
    """Load ``directory``'s adapter into ``model``: checked against the SHA-256 recorded at save time
    (``adapter.json``) and for non-finite values first."""
    path = directory / ADAPTER_FILE
    try:
        recorded = json.loads((directory / ADAPTER_JSON).read_text(encoding="utf-8")).get("adapter_sha256")
    except (OSError, ValueError, AttributeError):
        recorded = None
    try:
        if isinstance(recorded, str) and sha256_file(path) != recorded:
            raise CausetteError(f"{path}: damaged file: its SHA-256 differs from the one recorded in {ADAPTER_JSON} "
                                f"when it was saved; use an earlier checkpoint")
        state = load_file(str(path))
    except CausetteError:
        raise
    except Exception as e:  # missing or corrupt file
        raise CausetteError(f"{path}: unreadable adapter ({type(e).__name__})") from None
    for name, tensor in state.items():
        if not bool(torch.isfinite(tensor).all()):
            raise CausetteError(f"{path}: tensor '{name}' holds NaN or infinite values: this adapter is damaged")
    load_adapter_state(model, state, where=str(path))


def adapter_base(directory: Path) -> tuple[LoRAConfig, Path]:
    """The LoRA settings and the base checkpoint named by ``directory/adapter.json``."""
    info_path = directory / ADAPTER_JSON
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        lora = LoRAConfig(**info["lora"])
        candidates = [Path(info["base"])] + ([directory / info["base_relative"]] if info.get("base_relative") else [])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CausetteError(f"{info_path}: unreadable adapter description ({e})") from None
    for base in candidates:
        if (base / MODEL_FILE).is_file():
            return lora, base
    raise CausetteError(f"{info_path}: its base checkpoint {candidates[0]} is gone; "
                        "keep it, or bake adapters into a full checkpoint with `causette sft merge`")


def load_adapted(directory: str | Path, device="cpu", dtype=torch.float32, expected_vocab=None) -> Transformer:
    """A LoRA checkpoint's model: its base, the adapter applied, then merged (a plain model)."""
    directory = Path(directory)
    lora, base = adapter_base(directory)
    model = load_model(base, expected_vocab=expected_vocab)
    apply_lora(model, lora)
    adapter_loader(model, directory)
    return merge_lora(model).to(device=device, dtype=dtype).eval()


def merge_checkpoint(src: str | Path, out: str | Path) -> Path:
    """``causette sft merge``: a LoRA checkpoint → a full checkpoint (adapter baked in)."""
    src = ckpt.find_checkpoint(src)
    if not (src / ADAPTER_JSON).is_file():
        raise CausetteError(f"{src}: not a LoRA checkpoint (no {ADAPTER_JSON}); nothing to merge")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CausetteError(f"{out}: already exists; give a new directory")
    model = load_adapted(src)
    state = ckpt.read_state(src)
    with atomic_dir(out, "checkpoint") as tmp:
        save_model(model, tmp)
        if (src / ckpt.TOKENIZER_FILE).is_file():
            (tmp / ckpt.TOKENIZER_FILE).write_bytes((src / ckpt.TOKENIZER_FILE).read_bytes())
        write_json(tmp / ckpt.STATE_FILE, {**state, "merged_from": str(src.resolve())})
    return out
