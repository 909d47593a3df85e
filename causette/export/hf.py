"""``causette export hf``: a checkpoint → a Hugging Face ``transformers`` folder.

    OUT/config.json              LlamaForCausalLM (MistralForCausalLM, GPT2LMHeadModel) configuration
    OUT/model.safetensors        the weights under transformers' names (a tied matrix once)
    OUT/generation_config.json   bos / eos / pad ids, so that generate() stops where ours does
    OUT/tokenizer.json           our byte-level BPE for the ``tokenizers`` library (same ids)
    OUT/tokenizer_config.json    PreTrainedTokenizerFast, special tokens, our chat template

The family is chosen from the switches: a Llama-family model (rope, rmsnorm, swiglu, no bias)
becomes ``LlamaForCausalLM``, or ``MistralForCausalLM`` (the same plus ``sliding_window``) when
``sliding_window`` is set; a GPT-2-family one (learned positions, layernorm, gelu, biases,
tied embeddings) ``GPT2LMHeadModel``; anything else is refused with the list of switches that
neither architecture can express (causette/model/families.py). The weight mapping lives in
causette/model/hf_reference.py (from the table of causette/model/tensors.py), which the model
tests already check against transformers.

Start of sequence: ``tokenizer(text)`` starts with ``<|bos|>`` (``add_bos_token``, a post-processor
in tokenizer.json), as ``causette generate`` does; the chat template writes ``bos_token`` itself,
since ``apply_chat_template`` tokenises without adding it. End of sequence: a chat model (stage
"sft") ends its replies with ``<|im_end|>``, a base model ends a document with ``<|bos|>`` (our
document separator); that token is ``eos_token``. Like our
engine, ``generation_config.json`` stops on any special token (the eos first) but the tool tags:
those are text (``special: false`` in ``tokenizer.json``), so ``decode(..., skip_special_tokens=True)``
keeps ``<tool_call>`` for a tool-call parser to read.
The files are written without importing transformers: only ``safetensors`` is needed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from causette.data.chat_jinja import jinja_template
from causette.errors import CausetteError
from causette.export.source import open_checkpoint, prepare_out_dir, resolve_dtype
from causette.model import hf_reference, tensors
from causette.model.families import FAMILIES, GPT2, LLAMA
from causette.tokenizer.io import to_hf_dict
from causette.utils.io import write_json

CHAT_STAGE = "sft"


def special_ids(tokenizer, stage: str) -> dict[str, int | list[int]]:
    """bos, eos (see the module docstring), pad and the ids a reply stops at (eos first): every
    special but the tool tags, which are text of the reply."""
    bos, pad = tokenizer.bos_id, tokenizer.pad_id
    eos = tokenizer.end_id if stage == CHAT_STAGE else bos
    stops = [eos] + sorted(i for i in tokenizer.control_ids if i != eos)
    return {"bos": bos, "eos": eos, "pad": pad, "stops": stops}


def hf_architecture(cfg) -> str:
    """``"llama"``, ``"mistral"`` (Llama with ``sliding_window``) or ``"gpt2"``: the first family
    of causette/model/families.py that can express ``cfg``; a :class:`CausetteError` listing the
    blocking switches otherwise."""
    for family in FAMILIES:
        if family.allows(cfg):
            return family.name
    llama, gpt2 = "; ".join(LLAMA.blockers(cfg)), "; ".join(GPT2.blockers(cfg))
    raise CausetteError(
        "this model is neither a Llama- nor a GPT-2-family model, so transformers cannot load it. "
        f"For {LLAMA.hf_class}, change: {llama}. For {GPT2.hf_class}, change: {gpt2}"
    )


def hf_config(cfg, arch: str, ids: dict, dtype: torch.dtype) -> dict:
    """The ``config.json`` of the exported model."""
    dtype_name = str(dtype).removeprefix("torch.")
    common = {
        "bos_token_id": ids["bos"],
        "eos_token_id": ids["eos"],
        "pad_token_id": ids["pad"],
        "torch_dtype": dtype_name,
        "use_cache": True,
    }
    if arch == "llama":
        out = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", **hf_reference.llama_config(cfg)}
        out["rope_theta"] = cfg.rope_theta  # what transformers 4.x reads (5.x reads rope_parameters)
        out["rope_scaling"] = None
        out["attention_dropout"] = 0.0
        out["initializer_range"] = cfg.init_std
        return out | common
    if arch == "mistral":
        out = {
            "architectures": ["MistralForCausalLM"],
            "model_type": "mistral",
            **hf_reference.mistral_config(cfg),
        }
        out["rope_theta"] = cfg.rope_theta  # as for llama: what transformers 4.x reads
        out["attention_dropout"] = 0.0
        out["initializer_range"] = cfg.init_std
        return out | common
    out = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", **hf_reference.gpt2_config(cfg)}
    out["n_ctx"] = cfg.block_size
    out["initializer_range"] = cfg.init_std
    return out | common


def hf_state_dict(model, arch: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """transformers' tensors, contiguous, in ``dtype``; a tied ``lm_head.weight`` is left out
    (transformers re-ties it from the embedding, as its own ``save_pretrained`` does)."""
    fmt = "hf_llama" if arch in ("llama", "mistral") else "hf_gpt2"  # Mistral has Llama's names
    state = tensors.to_format(model, fmt, tied=False)
    # copies: safetensors refuses tensors that share memory (q, k and v are views of one matrix)
    return {k: v.to(dtype, copy=True).contiguous() for k, v in state.items()}


def tokenizer_config(tokenizer, ids: dict, block_size: int) -> dict:
    name = tokenizer.special_names
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": name[ids["bos"]],
        "eos_token": name[ids["eos"]],
        "pad_token": name[ids["pad"]],
        "add_bos_token": True,  # as causette generate; apply_chat_template adds none, the template writes it
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": block_size,
        "chat_template": jinja_template(tokenizer),
    }


def export_hf(source: str | Path, out: str | Path, dtype: str = "float32", force: bool = False) -> Path:
    """Write the Hugging Face folder ``out`` for the checkpoint ``source``; return ``out``."""
    loaded = open_checkpoint(source)
    model, tok, cfg = loaded.model, loaded.tokenizer, loaded.model.cfg
    arch = hf_architecture(cfg)  # before touching OUT: a refused export writes nothing
    torch_dtype = resolve_dtype(dtype)
    out = prepare_out_dir(out, force)
    ids = special_ids(tok, loaded.stage)

    write_json(out / "config.json", hf_config(cfg, arch, ids, torch_dtype))
    save_file(
        hf_state_dict(model, arch, torch_dtype), str(out / "model.safetensors"), metadata={"format": "pt"}
    )
    write_json(
        out / "generation_config.json",
        {"bos_token_id": ids["bos"], "eos_token_id": ids["stops"], "pad_token_id": ids["pad"]},
    )
    write_json(out / "tokenizer.json", to_hf_dict(tok, add_bos=True))
    write_json(out / "tokenizer_config.json", tokenizer_config(tok, ids, cfg.block_size))
    write_json(
        out / "special_tokens_map.json",
        {
            "bos_token": tok.special_names[ids["bos"]],
            "eos_token": tok.special_names[ids["eos"]],
            "pad_token": tok.special_names[ids["pad"]],
        },
    )
    return out
