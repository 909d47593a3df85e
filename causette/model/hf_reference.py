"""Our weights under Hugging Face ``transformers`` names, to check the model against theirs.

``llama_config``/``llama_state_dict`` give what ``LlamaForCausalLM`` expects (Llama family:
RoPE, RMSNorm, SwiGLU, no bias, any ``n_kv_head``), ``mistral_config`` the same plus a sliding
window (``MistralForCausalLM``); ``gpt2_config``/``gpt2_state_dict`` the same
for ``GPT2LMHeadModel`` (learned positions, LayerNorm, GELU, biases, tied embeddings).
The configs are plain dicts (``LlamaConfig(**d)``), so this module does not import
``transformers``. The tests use them to compare logits; the exporter (causette/export) builds on them.

Differences handled here:
* we store q, k, v in one matrix ``attn.qkv`` (rows ``[q | k | v]``) and SwiGLU's gate and up in
  one ``mlp.up`` (rows ``[gate | up]``); HF Llama keeps them separate;
* GPT-2's ``Conv1D`` layers store ``(in, out)`` matrices, the transpose of ``nn.Linear``'s.
"""

from __future__ import annotations

import dataclasses

import torch

from causette.model.config import ModelConfig
from causette.model.transformer import Transformer


def llama_config(cfg: ModelConfig) -> dict:
    """``LlamaConfig`` arguments for a Llama-family ``cfg``; raises ValueError for other switches."""
    wrong = {
        k: v for k, v in (("pos", "rope"), ("norm", "rmsnorm"), ("mlp", "swiglu")) if getattr(cfg, k) != v
    }
    if wrong or cfg.bias or cfg.qk_norm or cfg.n_experts or cfg.logit_softcap is not None:
        raise ValueError(
            "LlamaForCausalLM needs pos=rope, norm=rmsnorm, mlp=swiglu, no bias, qk_norm, MoE or softcap"
        )
    if cfg.sliding_window is not None:
        raise ValueError("LlamaForCausalLM has no sliding window: use mistral_config")
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
    return llama_config(dataclasses.replace(cfg, sliding_window=None)) | {"sliding_window": cfg.sliding_window}


def llama_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    cfg = model.cfg
    q_rows, kv_rows, h = cfg.n_head * cfg.head_dim, cfg.kv_heads * cfg.head_dim, cfg.hidden_size
    out = {"model.embed_tokens.weight": model.wte.weight, "model.norm.weight": model.norm_f.weight}
    for i, block in enumerate(model.blocks):
        p = f"model.layers.{i}."
        q, k, v = block.attn.qkv.weight.split([q_rows, kv_rows, kv_rows])
        gate, up = block.mlp.up.weight.split([h, h])
        out |= {
            p + "input_layernorm.weight": block.norm1.weight,
            p + "self_attn.q_proj.weight": q,
            p + "self_attn.k_proj.weight": k,
            p + "self_attn.v_proj.weight": v,
            p + "self_attn.o_proj.weight": block.attn.proj.weight,
            p + "post_attention_layernorm.weight": block.norm2.weight,
            p + "mlp.gate_proj.weight": gate,
            p + "mlp.up_proj.weight": up,
            p + "mlp.down_proj.weight": block.mlp.down.weight,
        }
    out["lm_head.weight"] = model.lm_head.weight
    return {k: v.detach().clone() for k, v in out.items()}


def gpt2_config(cfg: ModelConfig) -> dict:
    """``GPT2Config`` arguments for a GPT-2-family ``cfg``; raises ValueError for other switches."""
    wrong = {
        k: v for k, v in (("pos", "learned"), ("norm", "layernorm"), ("mlp", "gelu")) if getattr(cfg, k) != v
    }
    if wrong or not cfg.bias or not cfg.tie_embeddings or cfg.kv_heads != cfg.n_head or cfg.qk_norm:
        raise ValueError(
            "GPT2LMHeadModel needs pos=learned, norm=layernorm, mlp=gelu, bias, tied embeddings, MHA"
        )
    if cfg.n_experts or cfg.logit_softcap is not None:
        raise ValueError("GPT2LMHeadModel has no MoE and no logit soft-cap")
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
    out = {
        "transformer.wte.weight": model.wte.weight,
        "transformer.wpe.weight": model.positions.wpe.weight,
        "transformer.ln_f.weight": model.norm_f.weight,
        "transformer.ln_f.bias": model.norm_f.bias,
        "lm_head.weight": model.lm_head.weight,
    }
    for i, block in enumerate(model.blocks):
        p = f"transformer.h.{i}."
        for ours, theirs in ((block.norm1, "ln_1"), (block.norm2, "ln_2")):
            out[p + theirs + ".weight"], out[p + theirs + ".bias"] = ours.weight, ours.bias
        for ours, theirs in (
            (block.attn.qkv, "attn.c_attn"),
            (block.attn.proj, "attn.c_proj"),
            (block.mlp.up, "mlp.c_fc"),
            (block.mlp.down, "mlp.c_proj"),
        ):
            out[p + theirs + ".weight"] = ours.weight.t()  # Conv1D: (in, out)
            out[p + theirs + ".bias"] = ours.bias
    return {k: v.detach().clone() for k, v in out.items()}
