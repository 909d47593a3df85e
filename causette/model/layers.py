"""The parts of a Transformer, in reading order; transformer.py assembles them into the model.

    normalisation   RMSNorm, LayerNorm, make_norm
    positions       LearnedPositions, SinusoidalPositions, Rotary + apply_rope
    MLP             MLP (GELU, SwiGLU, ReLU²), also a Mixture-of-Experts' expert
    loss            lm_loss and IGNORE_INDEX

The two larger parts have a module each: attention.py (CausalSelfAttention) and kvcache.py
(KVCache); window.py is the progression's replacement for attention.

Each section starts with what it computes and why, as the page of docs/ that explains it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

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

    def at(self, positions: torch.Tensor) -> torch.Tensor:
        """The rows of the given positions, ``(B,) → (B, n_embd)`` (the step: one per row)."""
        return self.wpe.weight[positions]


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

    def at(self, positions: torch.Tensor) -> torch.Tensor:
        """The rows of the given positions, ``(B,) → (B, n_embd)`` (the step: one per row)."""
        return self.table[positions]


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

    def at(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The angles of one position per row, each ``(B, 1, 1, head_dim/2)`` (broadcast over
        the heads and the single token of the step)."""
        return self.cos[positions][:, None, None, :], self.sin[positions][:, None, None, :]


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
