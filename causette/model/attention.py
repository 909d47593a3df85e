"""Causal self-attention: multi-head, grouped-query, QK-norm, RoPE, sliding window, KV cache,
and the one-token step with a position per row.

``CausalSelfAttention`` is the mixing half of every block (transformer.py); the KV cache it
reads and writes is kvcache.py, RoPE and the norms are layers.py.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from causette.model import cpu_attention
from causette.model.config import ModelConfig
from causette.model.kvcache import KVCache
from causette.model.layers import RMSNorm, apply_rope


# ==============================================================================
# Attention: causal, multi-head, grouped-query, with the KV cache
#
# For each token, three vectors per head are computed from its input ``x``:
# a *query* ("what am I looking for"), a *key* ("what do I contain") and a *value* ("what I pass
# on"). Each query is compared with the keys of the token itself and of all *earlier* tokens
# (causal: never later ones), the scores ``q·k / sqrt(head_dim)`` go through a softmax, and the
# output is the weighted mean of the values. ``n_head`` heads do this in parallel on slices of
# ``head_dim = n_embd / n_head`` features; their outputs are concatenated and projected back.
#
# * **Grouped-query attention**: ``n_kv_head`` (≤ ``n_head``) key/value heads, each shared by
#   ``n_head / n_kv_head`` query heads. Fewer keys/values to compute and, above all, to keep in the
#   KV cache. ``n_kv_head = n_head`` is plain multi-head attention; ``n_kv_head = 1`` is
#   multi-query attention.
# * **QK-norm**: an RMSNorm over each head's query and key (before RoPE) bounds the attention
#   logits, which lets training use larger learning rates without blowing up.
# * The softmax itself is ``F.scaled_dot_product_attention`` (SDPA), which picks a fused kernel
#   and never materialises the ``T×T`` matrix when it can avoid it.
#
# The three cases of masking:
# * training / prefill of an empty cache: ``is_causal=True`` (token ``i`` sees ``0..i``);
# * one new token with a cache: it may see every stored key, so no mask at all;
# * several new tokens on top of a non-empty cache (chunked prefill): an explicit mask where new
#   token ``i`` (absolute position ``pos+i``) sees keys ``0..pos+i``.
#
# Sliding window (``sliding_window = N``, Mistral): a token sees only itself and the ``N-1``
# previous tokens. When the context is longer than ``N``, the keys nobody sees are dropped and a
# band mask replaces the causal one (``_sliding_window``); the KV cache keeps only ``N`` positions
# (a ring buffer, ``_ring_mask``). With ``None`` nothing changes.
#
# The fourth case, **the step** (``step``; ``Transformer.step``): one new token per row, row ``b``
# at its own position ``p_b``. Its key and value go to the cache at ``p_b`` (its *slot*: ``p_b mod
# N`` in a ring), and its query reads the whole cache of its row through a mask that shows the
# keys ``0 .. p_b`` (``RowPositions``). Reading all ``max_len`` slots rather than ``p_b + 1`` keeps
# the shapes fixed whatever the positions: one graph that a compiler can build once
# (inference/backends/aoti.py); the hidden keys weigh exactly 0.
# ==============================================================================


class RowPositions:
    """Where each row's new token goes in the cache and which keys it sees, for one step.

    ``positions`` ``(B,)`` int64: the token's position in its row. Computed once per step by the
    model and shared by every layer:

    * ``rows`` ``(B,)``: ``0 .. B-1``, to index each row's own slot;
    * ``slot`` ``(B,)``: where the new key/value go: the position, or in a ring buffer of ``L``
      slots, the position mod ``L``;
    * ``visible`` ``(B, 1, 1, L)``: which of the ``L`` slots the row's query sees (broadcast over
      heads).
    """

    def __init__(self, positions: torch.Tensor, slots: int, window: int | None):
        # region doc:row-mask
        keys = torch.arange(slots, device=positions.device)[None, :]
        pos = positions[:, None]
        self.rows = torch.arange(positions.shape[0], device=positions.device)
        if window is None:
            self.slot, visible = positions, keys <= pos
        else:
            # Position p lives in slot p mod L (KVCache.update_window; without a ring p < L, so the
            # slot is p), so slot j now holds position p - (p - j) mod L (negative: never
            # written), visible when it is within the window.
            self.slot = positions % slots
            held = pos - (pos - keys) % slots
            visible = (held >= 0) & (held > pos - window)
        self.visible = visible[:, None, None, :]
        # endregion doc:row-mask


class CausalSelfAttention(nn.Module):
    # The step's attention as explicit products and sums (``attention_sums``) rather than SDPA:
    # the same numbers, in a form a compiler fuses into a couple of loops. Set on its own copy of
    # the model by the backend that compiles the step (inference/backends/aoti.py).
    sum_form = False

    def __init__(self, cfg: ModelConfig, layer_idx: int, cpu_kernels: bool = False):
        super().__init__()
        self.layer_idx = layer_idx  # which slot of the KV cache is ours
        self.cpu_kernels = cpu_kernels  # our attention backward for bf16 CPU training (Transformer's choice)
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        # region doc:qkv-size
        # Queries, keys and values in one matrix product: rows [q | k | v].
        n_qkv = (self.n_head + 2 * self.n_kv_head) * self.head_dim
        self.qkv = nn.Linear(cfg.n_embd, n_qkv, bias=cfg.bias)
        # endregion doc:qkv-size
        self.proj = nn.Linear(self.n_head * self.head_dim, cfg.n_embd, bias=cfg.bias)
        self.q_norm = RMSNorm(self.head_dim, cfg.norm_eps) if cfg.qk_norm else None
        self.k_norm = RMSNorm(self.head_dim, cfg.norm_eps) if cfg.qk_norm else None
        self.attn_dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.window = cfg.sliding_window  # None: full causal attention

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
        # region doc:split-heads
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split(
            [self.n_head * self.head_dim, self.n_kv_head * self.head_dim, self.n_kv_head * self.head_dim],
            dim=-1,
        )
        # (B, T, heads·head_dim) → (B, heads, T, head_dim): heads become a batch dimension.
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        # endregion doc:split-heads
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        # region doc:rope-qk
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        # endregion doc:rope-qk

        past, ring = 0, cache is not None and cache.window is not None
        if cache is not None:
            past = cache.pos
            if not ring:
                k, v = cache.update(self.layer_idx, k, v)  # now every key/value so far: (B, kv, past+T, hd)
            else:  # a sliding window's ring buffer: at most N stored keys, plus the new ones
                k, v, key_pos = cache.update_window(self.layer_idx, k, v)

        # region doc:mask-cases
        mask, is_causal = None, True
        if past > 0:
            if T == 1:
                is_causal = False  # the single newest token sees all stored keys
            else:  # chunked prefill: query i (absolute past+i) sees keys 0..past+i
                q_pos = torch.arange(past, past + T, device=x.device)[:, None]
                k_pos = torch.arange(past + T, device=x.device)[None, :]
                mask, is_causal = k_pos <= q_pos, False
        # endregion doc:mask-cases
        if ring:
            mask, is_causal = self._ring_mask(key_pos, past, T)
        elif self.window is not None and past + T > self.window:
            k, v, mask, is_causal = self._sliding_window(k, v, past, T)

        if self.cpu_kernels and is_causal and past == 0 and not (self.training and self.attn_dropout) and cpu_attention.usable(q):
            y = cpu_attention.causal_attention(q, k, v)  # bf16 CPU training: a faster backward
        else:
            y = self._sdpa(q, k, v, mask, is_causal)
        # region doc:heads-side-by-side
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim)  # heads side by side again
        return self.resid_dropout(self.proj(y))
        # endregion doc:heads-side-by-side

    # region doc:sliding-window
    def _sliding_window(self, k, v, past: int, T: int):
        """Sliding-window attention: query at absolute position ``p`` sees keys ``p-N+1 .. p``
        (``N = self.window``). Keys older than the first query's window are seen by no query of
        this call: they are dropped; the others get a band mask. Used without a cache (training,
        recomputation) and with a cache no longer than the window; a longer one is a ring buffer
        of ``N`` slots (:meth:`KVCache.update_window`, :meth:`_ring_mask`)."""
        start = max(0, past + 1 - self.window)  # oldest key that query ``past`` still sees
        k, v = k[:, :, start:], v[:, :, start:]
        if T == 1:
            return k, v, None, False  # exactly the N last keys: nothing to hide
        q_pos = torch.arange(past, past + T, device=k.device)[:, None]
        k_pos = torch.arange(start, past + T, device=k.device)[None, :]
        band = (k_pos <= q_pos) & (k_pos > q_pos - self.window)  # causal, and at most N-1 back
        return k, v, band, False
    # endregion doc:sliding-window

    # region doc:ring-mask
    def _ring_mask(self, key_pos: torch.Tensor | None, past: int, T: int):
        """The mask over a ring buffer's keys (:meth:`KVCache.update_window`), whose absolute
        positions are ``key_pos``: query ``p`` sees the keys at ``p-N+1 .. p``."""
        if T == 1:
            return None, False  # the ring holds exactly the newest token's window
        if past == 0 and T <= self.window:
            return None, True  # a prefill that fits in the window: plain causal
        q_pos = torch.arange(past, past + T, device=key_pos.device)[:, None]
        return (key_pos[None, :] <= q_pos) & (key_pos[None, :] > q_pos - self.window), False
    # endregion doc:ring-mask

    def step(self, x, rope, k_cache: torch.Tensor, v_cache: torch.Tensor, at: RowPositions) -> torch.Tensor:
        """The step case: ``x`` ``(B, 1, n_embd)``, one new token per row, at the rows' own
        positions ``at``; ``k_cache``, ``v_cache``: this layer's ``(B, n_kv_head, L, head_dim)``
        tensors, written in place at ``at.slot``. ``rope``: the ``(cos, sin)`` of each row's
        position, ``(B, 1, 1, head_dim/2)``."""
        B = x.shape[0]
        H, KV, D = self.n_head, self.n_kv_head, self.head_dim
        q, k, v = self.qkv(x).split([H * D, KV * D, KV * D], dim=-1)
        q = q.view(B, 1, H, D).transpose(1, 2)  # (B, H, 1, D)
        k = k.view(B, 1, KV, D).transpose(1, 2)
        v = v.view(B, 1, KV, D).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        # region doc:row-write
        k_cache[at.rows, :, at.slot] = k[:, :, 0].to(k_cache.dtype)  # row b's key into its own slot
        v_cache[at.rows, :, at.slot] = v[:, :, 0].to(v_cache.dtype)
        # endregion doc:row-write
        keys, values = k_cache.to(q.dtype), v_cache.to(q.dtype)
        if self.sum_form:
            y = attention_sums(q, keys, values, at.visible)
        else:
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=at.visible, enable_gqa=KV != H)
        return self.resid_dropout(self.proj(y.transpose(1, 2).reshape(B, 1, H * D)))

    def _sdpa(self, q, k, v, mask, is_causal):
        # region doc:sdpa
        return F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.attn_dropout if self.training else 0.0,
            is_causal=is_causal,
            # region doc:gqa
            enable_gqa=self.n_kv_head != self.n_head,  # each k/v head serves n_head/n_kv_head queries
            # endregion doc:gqa
        )
        # endregion doc:sdpa


def attention_sums(q, k, v, visible):
    """Softmax attention of one query per row and head, ``q`` ``(B, H, 1, D)``, over the cached
    ``k``, ``v`` ``(B, KV, L, D)`` (``H / KV`` query heads share a key/value head), keys hidden
    where ``visible`` ``(B, 1, 1, L)`` is False: SDPA's result, written as products and sums,
    which a compiler fuses into a couple of loops (eagerly, SDPA is the faster way)."""
    B, H, _, D = q.shape
    KV, L = k.shape[1], k.shape[2]
    qg = q.reshape(B, KV, H // KV, 1, D)
    scores = (qg * k[:, :, None]).sum(-1) * (D ** -0.5)  # (B, KV, G, L)
    scores = scores.masked_fill(~visible.view(B, 1, 1, L), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    y = (weights[..., None] * v[:, :, None]).sum(-2)  # (B, KV, G, D)
    return y.reshape(B, H, 1, D)
