"""How big is the model, how much work per token: analytic counts from the config alone.

Parameters (``count_params``), per part, with ``d = n_embd``, ``hd = head_dim``,
``H = n_head``, ``K = n_kv_head``, ``h`` = MLP hidden size, ``b`` = 1 when ``bias`` is on:

* token embedding ``V·d``; learned positions ``block_size·d``; output layer ``V·d`` unless tied;
* attention: ``d·(H+2K)·hd`` (q, k, v) + ``H·hd·d`` (output), biases ``b·((H+2K)·hd + d)``,
  QK-norm ``2·hd``;
* one MLP: ``d·u + h·d`` with ``u = 2h`` for SwiGLU (gate and up) else ``h``, biases ``b·(u + d)``;
  a MoE layer holds ``n_experts`` of them (+1 shared) and a router ``d·n_experts``;
* norms: ``d`` each (``2d`` for LayerNorm with bias), two per block plus a final one;
* the progression's switches: ``mixer: window`` replaces attention by ``w·d·d`` (+ ``b·d``) for a
  window of ``w`` tokens; ``mlp: none`` removes the MLP and its norm.

``non_embedding`` leaves out the token and position embeddings (the convention of Kaplan et al.
and nanoGPT: lookups cost no arithmetic). ``active`` counts what one token actually uses: with
MoE, only ``experts_per_token`` of the ``n_experts`` experts.

FLOPs per token (``flops_per_token``), the usual estimate (Kaplan et al.; PaLM appendix B):

* every weight used in a matrix product costs 2 FLOPs per token forward (a multiply and an add)
  and 4 backward (gradients with respect to inputs and to weights): ``6·N`` for training, where
  ``N`` = active non-embedding parameters + the output layer ``V·d`` (a tied output layer still
  multiplies, even though its parameters are counted as embedding);
* attention scores and the weighted sum of values add ``2·2·H·hd·T`` per layer forward, for a
  context of ``T`` tokens: ``12·L·H·hd·T`` for training. As in PaLM we count the full ``T``
  although a causal mask skips half of it. With a sliding window of ``N`` tokens a query reads
  at most ``N`` keys: ``T`` becomes ``min(T, N)``.

MFU (model FLOPs utilization) = ``flops_per_token × tokens/s ÷ peak FLOP/s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from causette.model.config import ModelConfig


@dataclass(frozen=True)
class ParamCount:
    total: int  # every distinct parameter (a tied matrix once)
    embedding: int  # token embedding + learned position embedding
    non_embedding: int  # total - embedding
    active: int  # used by one token (differs from total only with MoE)


def mlp_params(cfg: ModelConfig) -> int:
    """Parameters of one MLP (or one expert); 0 with ``mlp: none``."""
    if cfg.mlp == "none":
        return 0
    h, d, b = cfg.hidden_size, cfg.n_embd, int(cfg.bias)
    u = 2 * h if cfg.mlp == "swiglu" else h
    return d * u + h * d + b * (u + d)


def count_params(cfg: ModelConfig) -> ParamCount:
    """Analytic parameter count; equals ``numel(Transformer(cfg))`` (tested for every preset)."""
    d, V, L = cfg.n_embd, cfg.vocab_size, cfg.n_layer
    H, K, hd, b = cfg.n_head, cfg.kv_heads, cfg.head_dim, int(cfg.bias)
    norm = d * (2 if cfg.norm == "layernorm" and cfg.bias else 1)
    attn = d * (H + 2 * K) * hd + H * hd * d + b * ((H + 2 * K) * hd + d) + (2 * hd if cfg.qk_norm else 0)
    if cfg.mixer == "window":
        attn = cfg.mixer_window * d * d + b * d
    # region doc:moe-params
    one_mlp = mlp_params(cfg)
    if cfg.n_experts:
        shared = one_mlp if cfg.moe_shared_expert else 0
        mlp = d * cfg.n_experts + cfg.n_experts * one_mlp + shared
        idle = (cfg.n_experts - cfg.experts_per_token) * one_mlp  # experts a token does not use
    else:
        mlp, idle = one_mlp, 0
    # endregion doc:moe-params
    norms = 2 * norm  # in front of attention and of the MLP
    if cfg.mlp == "none":
        norms = norm  # no MLP, no norm in front of it
    embedding = V * d + (cfg.block_size * d if cfg.pos == "learned" else 0)
    head = 0 if cfg.tie_embeddings else V * d
    total = embedding + L * (norms + attn + mlp) + norm + head
    return ParamCount(total, embedding, total - embedding, total - L * idle)


def numel(model: nn.Module) -> int:
    """Parameters actually held by ``model`` (``parameters()`` yields a tied matrix once)."""
    return sum(p.numel() for p in model.parameters())


def flops_per_token(cfg: ModelConfig, seq_len: int | None = None, training: bool = True) -> float:
    """Estimated FLOPs to process one token (forward + backward if ``training``) at context ``seq_len``."""
    T = cfg.block_size if seq_len is None else seq_len
    counts = count_params(cfg)
    matmul_params = (
        counts.active - counts.embedding + (cfg.vocab_size * cfg.n_embd if cfg.tie_embeddings else 0)
    )
    if cfg.sliding_window is not None:
        T = min(T, cfg.sliding_window)  # a query reads at most N keys
    attention = 4 * cfg.n_layer * cfg.n_head * cfg.head_dim * T if cfg.mixer == "attention" else 0
    forward = 2 * matmul_params + attention
    return 3.0 * forward if training else float(forward)
