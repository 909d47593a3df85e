"""How the weights start: one function, GPT-2 style.

The rules (``std = cfg.init_std``, 0.02 by default, as in GPT-2):

* every matrix (linear layers, the token and position embeddings, MoE routers) is drawn from
  a normal distribution ``N(0, std²)``;
* except the two matrices of each block that **write into the residual stream**, the attention
  output ``attn.proj`` and each MLP's ``down`` (experts' included): ``N(0, (std/√(2·n_layer))²)``.
  The residual stream is the sum of ``2·n_layer`` such contributions; shrinking each by
  ``√(2·n_layer)`` keeps the variance of that sum independent of depth at the start;
* biases start at 0, norm scales (LayerNorm, RMSNorm, QK-norm) at 1.

With tied embeddings the output layer *is* the token embedding, initialised once.
The generator is PyTorch's global one: ``torch.manual_seed`` before building the model makes
the initial weights reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

RESIDUAL_PROJECTIONS = ("attn.proj.weight", "down.weight")


@torch.no_grad()
def init_weights(model: nn.Module, std: float, n_layer: int) -> None:
    """(Re)initialise every parameter of ``model`` in place by the rules above."""
    resid_std = std / math.sqrt(2 * n_layer)
    for name, p in model.named_parameters():  # a tied weight appears once
        if p.dim() >= 2:
            nn.init.normal_(p, mean=0.0, std=resid_std if name.endswith(RESIDUAL_PROJECTIONS) else std)
        elif name.endswith("bias"):
            nn.init.zeros_(p)
        else:  # the scale of a norm
            nn.init.ones_(p)
