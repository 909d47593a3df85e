"""The parts of a Transformer, in reading order; transformer.py assembles them into the model.

    normalisation   RMSNorm, LayerNorm, make_norm
    positions       LearnedPositions, SinusoidalPositions, Rotary + apply_rope
    KV cache        KVCache: keys and values kept between generation steps
    attention       CausalSelfAttention (multi-head, grouped-query, QK-norm, RoPE, cache)
    MLP             MLP (GELU, SwiGLU, ReLU²), also a Mixture-of-Experts' expert
    loss            lm_loss and IGNORE_INDEX

Each section starts with what it computes and why, as the page of docs/ that explains it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from causette.errors import CausetteError
from causette.model import cpu_attention
from causette.model.config import ModelConfig


# ==============================================================================
# Normalisation: LayerNorm (GPT-2 family) and RMSNorm (Llama family)
#
# Both rescale each token's vector to a standard size before it enters attention or the MLP
# ("pre-norm": ``x + f(norm(x))``), which keeps activations tame as depth grows.
#
# * LayerNorm subtracts the mean, divides by the standard deviation, then applies a learned
#   scale (and a learned shift when ``bias`` is on).
# * RMSNorm skips the mean: it divides by the root mean square and applies a learned scale.
#   One reduction fewer, and in practice it trains as well.
#
# Both compute their statistics in float32 even under bf16 autocast: a mean of squares in bf16
# loses too many digits.
# ==============================================================================


class RMSNorm(nn.Module):
    """``y = x / sqrt(mean(x²) + eps) * weight`` over the last dimension."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        y = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).type_as(x)


class LayerNorm(nn.Module):
    """``y = (x - mean) / sqrt(var + eps) * weight (+ bias)`` over the last dimension.

    ``torch.nn.LayerNorm`` always has a bias; ours makes it optional (the ``bias`` switch).
    """

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.float()
        y = F.layer_norm(x.float(), self.weight.shape, self.weight.float(), bias, self.eps)
        return y.type_as(x)


def make_norm(cfg: ModelConfig, dim: int | None = None) -> nn.Module:
    """The norm selected by ``cfg.norm`` over ``dim`` features (default ``n_embd``)."""
    dim = cfg.n_embd if dim is None else dim
    if cfg.norm == "layernorm":
        return LayerNorm(dim, cfg.norm_eps, bias=cfg.bias)
    return RMSNorm(dim, cfg.norm_eps)


# ==============================================================================
# Positions: learned, sinusoidal or rotary (RoPE)
#
# Attention by itself is blind to order (it sees a set of tokens). Three classic remedies:
#
# * **learned** (GPT-2): a table of ``block_size`` trained vectors, one per position, added to the
#   token embeddings. Simple; cannot go beyond ``block_size``.
# * **sinusoidal** (the original Transformer): the same addition, but the table is fixed:
#   ``pe[p, 2i] = sin(p / 10000^(2i/d))``, ``pe[p, 2i+1] = cos(...)``. No parameters.
# * **rope** (Llama): nothing is added to the embeddings. Inside attention, each pair of features of
#   each query and key is *rotated* by an angle proportional to its position ``p``:
#   ``angle(p, i) = p · theta^(-2i/head_dim)``. Since rotations compose, the dot product of a query
#   at ``m`` and a key at ``n`` depends only on ``m - n``: attention sees relative positions.
#
# All tables are computed once (``block_size`` rows) and sliced at the absolute position of the
# first token, which the KV cache provides during generation (``offset``).
#
# RoPE layout: we pair feature ``i`` with feature ``i + head_dim/2`` ("rotate half", as in GPT-NeoX
# and Hugging Face's Llama) rather than neighbours ``2i, 2i+1`` (Meta's original code). Both are the
# same model up to a fixed permutation of the query/key weights; this one needs no permutation to
# compare with ``transformers``.
# ==============================================================================


class LearnedPositions(nn.Module):
    """A trained vector per position (GPT-2)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)

    def forward(self, seq_len: int, offset: int = 0) -> torch.Tensor:
        return self.wpe.weight[offset : offset + seq_len]


def sinusoidal_table(length: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The fixed ``(length, dim)`` table of "Attention is all you need": interleaved sin/cos."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * inv_freq)
    table[:, 1::2] = torch.cos(pos * inv_freq)
    return table.float()


class SinusoidalPositions(nn.Module):
    """The fixed sin/cos table; a buffer, not a parameter (and not saved: it is recomputed)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.register_buffer("table", sinusoidal_table(cfg.block_size, cfg.n_embd), persistent=False)

    def forward(self, seq_len: int, offset: int = 0) -> torch.Tensor:
        return self.table[offset : offset + seq_len]


def rope_tables(length: int, head_dim: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of the rotation angles, each ``(length, head_dim/2)``, float32.

    Computed in float64 so that even far positions keep exact angles before rounding.
    """
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` of shape ``(B, heads, T, head_dim)`` by the angles of ``cos``/``sin`` ``(T, head_dim/2)``.

    Feature ``i`` and feature ``i + head_dim/2`` form a 2-D point ``(a, b)`` which becomes
    ``(a·cos - b·sin, a·sin + b·cos)``. Done in float32, returned in ``x``'s dtype.
    """
    a, b = x.float().chunk(2, dim=-1)
    cos, sin = cos.float(), sin.float()
    out = torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)
    return out.type_as(x)


class Rotary(nn.Module):
    """Precomputed RoPE tables; attention slices them at the tokens' absolute positions."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cos, sin = rope_tables(cfg.block_size, cfg.head_dim, cfg.rope_theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, seq_len: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos[offset : offset + seq_len], self.sin[offset : offset + seq_len]


# ==============================================================================
# The KV cache: each layer's keys and values, kept for generation
#
# Without a cache, producing token ``t+1`` recomputes attention over all ``t`` previous tokens,
# for every new token. But the keys and values of past tokens never change (the model is
# causal), so we compute them once and store them:
#
# 1. **prefill**: run the whole prompt ``(B, T0)`` once; each layer writes its ``T0`` keys/values;
# 2. **decode**: feed only the newest token ``(B, 1)``; each layer appends one key/value and
#    its query attends to everything stored so far.
#
# Storage is preallocated, one ``(B, n_kv_head, max_len, head_dim)`` tensor per layer for keys
# and the same for values, so a step never reallocates. With grouped-query attention only the
# ``n_kv_head`` shared heads are stored: that is the memory GQA saves. One tensor *per layer*
# (rather than one stacked tensor for all layers) matters under ``torch.compile``: compiled code
# writes into a copy of a tensor it received and copies it back, so with a stacked tensor each
# layer's update would copy the whole cache (25 MB per token for seed16m; see
# causette/inference/compiled.py).
#
# All rows of a batch advance together (``pos`` is shared): prompts in one batch must have the
# same length. Usage::
#
#     cache = model.new_cache(batch_size=2)            # max_len = block_size
#     logits = model.logits(prompt, cache=cache)       # prefill, prompt (2, T0)
#     logits = model.logits(next_tokens, cache=cache)  # one step, next_tokens (2, 1)
#     cache.reset()                                    # reuse for a new conversation
#
# **Sliding window: a ring buffer.** A model with ``sliding_window = N`` never looks further back
# than ``N`` positions, so its cache (``window=N``, when ``N < max_len``) keeps only ``N`` slots per
# layer: position ``p`` lives in slot ``p mod N`` and overwrites position ``p - N``, which no
# later query sees. Keys are stored after RoPE, so the order of the slots does not matter to
# attention; only the mask has to know which position each slot holds (``update_window``).
# ==============================================================================


class KVCache:
    """Preallocated keys/values for every layer, plus the number of positions already filled.

    ``window``: the model's sliding window ``N``; when it is smaller than ``max_len`` the cache is
    a ring buffer of ``N`` slots (see :meth:`update_window`), else it changes nothing.
    """

    def __init__(
        self,
        n_layer: int,
        batch_size: int,
        n_kv_head: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        window: int | None = None,
    ):
        # region doc:kv-ring-size
        self.window = window if window is not None and window < max_len else None  # None: no ring
        shape = (batch_size, n_kv_head, self.window or max_len, head_dim)  # slots: N, not max_len
        # endregion doc:kv-ring-size
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.max_len = max_len  # positions it takes in all (with a ring, more than it stores)
        self.pos = 0  # positions 0 .. pos-1 have been stored (with a ring, only the last N are kept)

    @property
    def batch_size(self) -> int:
        return self.k[0].shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.k[0].dtype

    def reset(self) -> None:
        """Forget everything (the old values are simply overwritten later)."""
        self.pos = 0

    def rows(self, start: int, stop: int) -> "KVCache":
        """A cache for rows ``start .. stop-1`` of this one, sharing its memory, empty (``pos`` 0):
        what it stores lands in those rows here (a batching server prefills one slot this way)."""
        view = KVCache.__new__(KVCache)
        view.k = [t[start:stop] for t in self.k]
        view.v = [t[start:stop] for t in self.v]
        view.max_len, view.window, view.pos = self.max_len, self.window, 0
        return view

    def check(self, batch_size: int, seq_len: int) -> None:
        """Fail clearly before a forward pass that would not fit."""
        if batch_size != self.batch_size:
            raise CausetteError(f"KV cache was made for batch size {self.batch_size}, got {batch_size}")
        if self.pos + seq_len > self.max_len:
            raise CausetteError(
                f"KV cache full: {self.pos} positions used + {seq_len} new > max_len {self.max_len} "
                "(crop the context or reset the cache)"
            )

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k, v`` ``(B, n_kv_head, T, head_dim)`` at positions ``pos .. pos+T-1`` of ``layer``.

        Returns all keys/values of that layer so far, ``(B, n_kv_head, pos+T, head_dim)``, in the
        dtype of ``k``. ``pos`` itself moves only when the model calls :meth:`advance` after the
        last layer, so every layer writes at the same place.
        """
        end = self.pos + k.shape[2]
        self.k[layer][:, :, self.pos : end] = k
        self.v[layer][:, :, self.pos : end] = v
        return self.k[layer][:, :, :end].to(k.dtype), self.v[layer][:, :, :end].to(v.dtype)

    # region doc:kv-ring
    def update_window(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """The ring buffer's :meth:`update`: store ``k, v`` ``(B, n_kv_head, T, head_dim)``, the
        positions ``pos .. pos+T-1``, position ``p`` in slot ``p mod N`` (``N = self.window``).

        Returns ``(keys, values, key_pos)``: what the ``T`` queries may need, and the absolute
        position of each key (``(n_keys,)``, for the caller's band mask; None for one token).

        * one token (decoding): written first, then the filled slots are returned, which hold
          exactly the window ``pos-N+1 .. pos`` (or ``0 .. pos`` before the ring is full): every
          one is visible, in slot order rather than position order (attention does not care);
        * several tokens: the early queries still need keys that the new ones will overwrite, so
          the stored slots are read first, the new keys appended, and only then are the last
          ``min(T, N)`` new keys written to their slots.
        """
        W, past, T = self.window, self.pos, k.shape[2]
        ks, vs = self.k[layer], self.v[layer]
        if T == 1:
            ks[:, :, past % W] = k[:, :, 0]
            vs[:, :, past % W] = v[:, :, 0]
            n = min(past + 1, W)
            return ks[:, :, :n].to(k.dtype), vs[:, :, :n].to(v.dtype), None  # all visible: no positions
        new_pos = torch.arange(past, past + T, device=k.device)
        if past == 0:
            keys, values, key_pos = k, v, new_pos
        else:
            n = min(past, W)  # filled slots; slot j holds the latest position < past that is j mod N
            old_pos = past - 1 - (past - 1 - torch.arange(n, device=k.device)) % W
            keys = torch.cat([ks[:, :, :n].to(k.dtype), k], dim=2)
            values = torch.cat([vs[:, :, :n].to(v.dtype), v], dim=2)
            key_pos = torch.cat([old_pos, new_pos])
        m = min(T, W)  # only the last N new keys stay
        slots = new_pos[T - m :] % W
        ks[:, :, slots] = k[:, :, T - m :].to(ks.dtype)
        vs[:, :, slots] = v[:, :, T - m :].to(vs.dtype)
        return keys, values, key_pos
    # endregion doc:kv-ring

    def advance(self, seq_len: int) -> None:
        self.pos += seq_len


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
# ==============================================================================


class CausalSelfAttention(nn.Module):
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


# ==============================================================================
# The MLP: GELU, SwiGLU or ReLU²
#
# Each token goes through the same small two-layer network, independently of the others:
# widen to ``hidden`` features, apply a non-linearity, project back to ``n_embd``.
#
# * **gelu**:   ``down(gelu(up(x)))``, hidden = 4·n_embd. We use GELU's tanh approximation,
#   the one GPT-2 was trained with (``gelu_new`` in ``transformers``).
# * **swiglu**: ``down(silu(gate(x)) * up(x))``: a gated unit with three matrices, so the hidden
#   size shrinks to ⅔·4·n_embd (rounded up to a multiple of ``mlp_multiple_of``) to keep the cost
#   of the dense version. ``gate`` and ``up`` are stored as one matrix ``up`` of ``2·hidden`` rows
#   (gate first): one matrix product instead of two.
# * **relu2**:  ``down(relu(up(x))²)``, hidden = 4·n_embd: cheap and sparse (So et al., Primer).
#
# The output projection is named ``down`` everywhere: the initialisation (transformer.py) scales every
# ``down`` and ``attn.proj`` weight, the two layers that write into the residual stream.
# ==============================================================================


class MLP(nn.Module):
    """One feed-forward network of the kind chosen by ``cfg.mlp`` (also used as a MoE expert)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.kind = cfg.mlp
        hidden = cfg.hidden_size
        n_up = 2 * hidden if self.kind == "swiglu" else hidden
        self.up = nn.Linear(cfg.n_embd, n_up, bias=cfg.bias)
        self.down = nn.Linear(hidden, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(self.activate(self.up(x))))

    def activate(self, h: torch.Tensor) -> torch.Tensor:
        """The nonlinearity between ``up`` and ``down`` (SwiGLU gates half of ``h`` with the other)."""
        if self.kind == "swiglu":
            gate, up = h.chunk(2, dim=-1)
            return F.silu(gate) * up
        if self.kind == "gelu":
            return F.gelu(h, approximate="tanh")
        return F.relu(h).square()  # relu2


# ==============================================================================
# The loss: next-token cross-entropy, some targets masked
#
# ``IGNORE_INDEX`` (-100, PyTorch's convention) marks targets that do not count: SFT masks the
# prompt this way, so that only the assistant's tokens are learned. The faster CPU version of the
# same loss, which never holds the logits in memory, is chunked_loss.py.
# ==============================================================================


IGNORE_INDEX = -100  # targets with this value do not count in the loss


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the targets that are not ``IGNORE_INDEX``, in float32.

    Written as a sum divided by the number of counted targets (at least 1), so that a batch whose
    targets are all masked gives 0 instead of NaN.
    """
    flat = logits.reshape(-1, logits.shape[-1]).float()
    targets = targets.reshape(-1)
    total = F.cross_entropy(flat, targets, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (targets != IGNORE_INDEX).sum().clamp(min=1)
