"""The feed-forward part of a block: GELU (GPT-2), SwiGLU (Llama) or ReLU² (Primer).

Each token goes through the same small two-layer network, independently of the others:
widen to ``hidden`` features, apply a non-linearity, project back to ``n_embd``.

* **gelu**:   ``down(gelu(up(x)))``, hidden = 4·n_embd. We use GELU's tanh approximation,
  the one GPT-2 was trained with (``gelu_new`` in ``transformers``).
* **swiglu**: ``down(silu(gate(x)) * up(x))``: a gated unit with three matrices, so the hidden
  size shrinks to ⅔·4·n_embd (rounded up to a multiple of ``mlp_multiple_of``) to keep the cost
  of the dense version. ``gate`` and ``up`` are stored as one matrix ``up`` of ``2·hidden`` rows
  (gate first): one matrix product instead of two.
* **relu2**:  ``down(relu(up(x))²)``, hidden = 4·n_embd: cheap and sparse (So et al., Primer).

The output projection is named ``down`` everywhere: the initialisation (init.py) scales every
``down`` and ``attn.proj`` weight, the two layers that write into the residual stream.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from causette.model.config import ModelConfig


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
        h = self.up(x)
        if self.kind == "swiglu":
            gate, up = h.chunk(2, dim=-1)
            h = F.silu(gate) * up
        elif self.kind == "gelu":
            h = F.gelu(h, approximate="tanh")
        else:  # relu2
            h = F.relu(h).square()
        return self.dropout(self.down(h))
