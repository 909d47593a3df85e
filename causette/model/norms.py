"""Normalisation layers: LayerNorm (GPT-2 family) and RMSNorm (Llama family).

Both rescale each token's vector to a standard size before it enters attention or the MLP
("pre-norm": ``x + f(norm(x))``), which keeps activations tame as depth grows.

* LayerNorm subtracts the mean, divides by the standard deviation, then applies a learned
  scale (and a learned shift when ``bias`` is on).
* RMSNorm skips the mean: it divides by the root mean square and applies a learned scale.
  One reduction fewer, and in practice it trains as well.

Both compute their statistics in float32 even under bf16 autocast: a mean of squares in bf16
loses too many digits.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from causette.model.config import ModelConfig


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
