"""Mixing a fixed window of previous tokens, without attention (``model.mixer: window``).

Step 2 of the progression from a bigram to a Transformer (docs/progression.md). A bigram model
predicts the next token from the current one alone. The next idea, Bengio et al. 2003 ("A
Neural Probabilistic Language Model"), is to give an MLP the vectors of the last few tokens,
**concatenated**: the model then knows the previous ``w`` tokens, each in its place.

Here that idea takes the place of attention inside a block::

    x_t  →  concat(x_{t-w+1}, …, x_{t-1}, x_t)  (w·n_embd numbers)  →  proj  →  n_embd numbers

(zeros stand for the positions before the start of the text), and the block's MLP follows as
usual. What it cannot do, and attention can: look further back than ``w`` tokens, and choose
*which* earlier tokens matter depending on what they contain (the weights of ``proj`` are the
same for every text: position ``t-3`` always counts the same way).

It is causal by construction (position ``t`` reads nothing after ``t``) and needs no position
encoding (the place of a vector in the concatenation *is* its position). It keeps no KV cache:
generation recomputes the window (``Transformer.supports_cache``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from causette.model.config import ModelConfig


class WindowMixer(nn.Module):
    """``(B, T, n_embd) → (B, T, n_embd)``: one linear layer over the last ``mixer_window`` vectors."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.window = cfg.mixer_window
        # Named ``proj`` like attention's output: it writes into the residual stream, and the
        # initialisation (transformer.py) scales it the same way.
        self.proj = nn.Linear(cfg.mixer_window * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, rope=None, cache=None) -> torch.Tensor:
        """``rope`` and ``cache`` are accepted for the block's sake and unused."""
        return self.dropout(self.proj(self.windows(x)))

    # region doc:window-concat
    def windows(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C) → (B, T, w·C)``: at each position, the vectors of positions ``t-w+1 .. t``
        side by side, oldest first (zeros before the start)."""
        B, T, C = x.shape
        padded = F.pad(x, (0, 0, self.window - 1, 0))  # w-1 zero vectors before position 0
        win = padded.unfold(1, self.window, 1)  # (B, T, C, w): window t = padded[t : t+w]
        return win.transpose(2, 3).reshape(B, T, self.window * C)
    # endregion doc:window-concat
