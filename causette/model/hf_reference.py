"""Our model as Hugging Face ``transformers`` sees it, to check it against theirs.

``llama_config``/``llama_state_dict`` give what ``LlamaForCausalLM`` expects (Llama family:
RoPE, RMSNorm, SwiGLU, no bias, any ``n_kv_head``), ``mistral_config`` the same plus a sliding
window (``MistralForCausalLM``); ``gpt2_config``/``gpt2_state_dict`` the same
for ``GPT2LMHeadModel`` (learned positions, LayerNorm, GELU, biases, tied embeddings).
The configs are plain dicts (``LlamaConfig(**d)``), so this module does not import
``transformers``. The tests use them to compare logits; the exporter (causette/export) builds on them.

Which switches each family accepts is causette/model/families.py; the weights' names, and how our
fused ``attn.qkv`` and ``mlp.up`` are split (and GPT-2's matrices transposed), are the
``hf_llama`` and ``hf_gpt2`` columns of causette/model/tensors.py.
"""

from __future__ import annotations

import dataclasses

import torch

from causette.model import tensors
from causette.model.config import ModelConfig
from causette.model.families import GPT2, LLAMA, MISTRAL
from causette.model.transformer import Transformer


def llama_config(cfg: ModelConfig) -> dict:
    """``LlamaConfig`` arguments for a Llama-family ``cfg``; raises ValueError for other switches."""
    blockers = LLAMA.blockers(cfg)
    if blockers and not MISTRAL.blockers(cfg):
        raise ValueError("LlamaForCausalLM has no sliding window: use mistral_config")
    if blockers:
        raise ValueError(f"LlamaForCausalLM needs a Llama-family model: {'; '.join(blockers)}")
    return dict(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.n_embd,
        intermediate_size=cfg.hidden_size,
        num_hidden_layers=cfg.n_layer,
        num_attention_heads=cfg.n_head,
        num_key_value_heads=cfg.kv_heads,
        head_dim=cfg.head_dim,
        max_position_embeddings=cfg.block_size,
        rms_norm_eps=cfg.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        tie_word_embeddings=cfg.tie_embeddings,
        attention_bias=False,
        mlp_bias=False,
        hidden_act="silu",
    )


def mistral_config(cfg: ModelConfig) -> dict:
    """``MistralConfig`` arguments: Mistral is the Llama architecture plus ``sliding_window``
    (same weight names, so :func:`llama_state_dict` serves both). transformers' window has our
    meaning: a query at ``i`` sees the keys ``i-N+1 .. i``."""
    blockers = MISTRAL.blockers(cfg)
    if blockers:
        raise ValueError(f"MistralForCausalLM needs a Llama-family model: {'; '.join(blockers)}")
    return llama_config(dataclasses.replace(cfg, sliding_window=None)) | {"sliding_window": cfg.sliding_window}


def llama_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    """Our weights under ``LlamaForCausalLM``'s names (``lm_head.weight`` included when tied, as
    in transformers' own state dict), copied."""
    return {k: v.clone() for k, v in tensors.to_format(model, "hf_llama", tied=True).items()}


def gpt2_config(cfg: ModelConfig) -> dict:
    """``GPT2Config`` arguments for a GPT-2-family ``cfg``; raises ValueError for other switches."""
    blockers = GPT2.blockers(cfg)
    if blockers:
        raise ValueError(f"GPT2LMHeadModel needs a GPT-2-family model: {'; '.join(blockers)}")
    return dict(
        vocab_size=cfg.vocab_size,
        n_positions=cfg.block_size,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        n_inner=cfg.hidden_size,
        activation_function="gelu_new",  # the tanh approximation, as ours
        layer_norm_epsilon=cfg.norm_eps,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=True,
    )


def gpt2_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    """Our weights under ``GPT2LMHeadModel``'s names (its Conv1D matrices transposed, the tied
    ``lm_head.weight`` included), copied."""
    return {k: v.clone() for k, v in tensors.to_format(model, "hf_gpt2", tied=True).items()}
