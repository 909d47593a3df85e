"""Causal self-attention: multi-head, grouped-query (GQA), optional QK-norm, with a KV cache.

For each token, three vectors per head are computed from its input ``x``:
a *query* ("what am I looking for"), a *key* ("what do I contain") and a *value* ("what I pass
on"). Each query is compared with the keys of the token itself and of all *earlier* tokens
(causal: never later ones), the scores ``q·k / sqrt(head_dim)`` go through a softmax, and the
output is the weighted mean of the values. ``n_head`` heads do this in parallel on slices of
``head_dim = n_embd / n_head`` features; their outputs are concatenated and projected back.

* **Grouped-query attention**: ``n_kv_head`` (≤ ``n_head``) key/value heads, each shared by
  ``n_head / n_kv_head`` query heads. Fewer keys/values to compute and, above all, to keep in the
  KV cache. ``n_kv_head = n_head`` is plain multi-head attention; ``n_kv_head = 1`` is
  multi-query attention.
* **QK-norm**: an RMSNorm over each head's query and key (before RoPE) bounds the attention
  logits, which lets training use larger learning rates without blowing up.
* The softmax itself is ``F.scaled_dot_product_attention`` (SDPA), which picks a fused kernel
  and never materialises the ``T×T`` matrix when it can avoid it.

The three cases of masking:
* training / prefill of an empty cache: ``is_causal=True`` (token ``i`` sees ``0..i``);
* one new token with a cache: it may see every stored key, so no mask at all;
* several new tokens on top of a non-empty cache (chunked prefill): an explicit mask where new
  token ``i`` (absolute position ``pos+i``) sees keys ``0..pos+i``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from causette.model import cpu_attention
from causette.model.config import ModelConfig
from causette.model.kvcache import KVCache
from causette.model.norms import RMSNorm
from causette.model.positions import apply_rope


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_idx: int, cpu_kernels: bool = False):
        super().__init__()
        self.layer_idx = layer_idx  # which slot of the KV cache is ours
        self.cpu_kernels = cpu_kernels  # our attention backward for bf16 CPU training (Transformer's choice)
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        # Queries, keys and values in one matrix product: rows [q | k | v].
        n_qkv = (self.n_head + 2 * self.n_kv_head) * self.head_dim
        self.qkv = nn.Linear(cfg.n_embd, n_qkv, bias=cfg.bias)
        self.proj = nn.Linear(self.n_head * self.head_dim, cfg.n_embd, bias=cfg.bias)
        self.q_norm = RMSNorm(self.head_dim, cfg.norm_eps) if cfg.qk_norm else None
        self.k_norm = RMSNorm(self.head_dim, cfg.norm_eps) if cfg.qk_norm else None
        self.attn_dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """``x`` ``(B, T, n_embd)`` → ``(B, T, n_embd)``.

        ``rope``: the ``(cos, sin)`` rows for these ``T`` tokens' absolute positions (None unless
        ``pos == "rope"``). ``cache``: where past keys/values live; this layer appends its own.
        """
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split(
            [self.n_head * self.head_dim, self.n_kv_head * self.head_dim, self.n_kv_head * self.head_dim],
            dim=-1,
        )
        # (B, T, heads·head_dim) → (B, heads, T, head_dim): heads become a batch dimension.
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)

        past = 0
        if cache is not None:
            past = cache.pos
            k, v = cache.update(self.layer_idx, k, v)  # now every key/value so far: (B, kv, past+T, hd)

        mask, is_causal = None, True
        if past > 0:
            if T == 1:
                is_causal = False  # the single newest token sees all stored keys
            else:  # chunked prefill: query i (absolute past+i) sees keys 0..past+i
                q_pos = torch.arange(past, past + T, device=x.device)[:, None]
                k_pos = torch.arange(past + T, device=x.device)[None, :]
                mask, is_causal = k_pos <= q_pos, False

        if self.cpu_kernels and is_causal and past == 0 and not (self.training and self.attn_dropout) and cpu_attention.usable(q):
            y = cpu_attention.causal_attention(q, k, v)  # bf16 CPU training: a faster backward
        else:
            y = self._sdpa(q, k, v, mask, is_causal)
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim)  # heads side by side again
        return self.resid_dropout(self.proj(y))

    def _sdpa(self, q, k, v, mask, is_causal):
        return F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.attn_dropout if self.training else 0.0,
            is_causal=is_causal,
            enable_gqa=self.n_kv_head != self.n_head,  # each k/v head serves n_head/n_kv_head queries
        )
