"""How the model knows where a token is: learned, sinusoidal or rotary (RoPE) positions.

Attention by itself is blind to order (it sees a set of tokens). Three classic remedies:

* **learned** (GPT-2): a table of ``block_size`` trained vectors, one per position, added to the
  token embeddings. Simple; cannot go beyond ``block_size``.
* **sinusoidal** (the original Transformer): the same addition, but the table is fixed:
  ``pe[p, 2i] = sin(p / 10000^(2i/d))``, ``pe[p, 2i+1] = cos(...)``. No parameters.
* **rope** (Llama): nothing is added to the embeddings. Inside attention, each pair of features of
  each query and key is *rotated* by an angle proportional to its position ``p``:
  ``angle(p, i) = p · theta^(-2i/head_dim)``. Since rotations compose, the dot product of a query
  at ``m`` and a key at ``n`` depends only on ``m - n``: attention sees relative positions.

All tables are computed once (``block_size`` rows) and sliced at the absolute position of the
first token, which the KV cache provides during generation (``offset``).

RoPE layout: we pair feature ``i`` with feature ``i + head_dim/2`` ("rotate half", as in GPT-NeoX
and Hugging Face's Llama) rather than neighbours ``2i, 2i+1`` (Meta's original code). Both are the
same model up to a fixed permutation of the query/key weights; this one needs no permutation to
compare with ``transformers``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from causette.model.config import ModelConfig


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
