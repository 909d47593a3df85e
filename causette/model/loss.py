"""The language-model loss: mean cross-entropy of the next token, some targets masked.

``IGNORE_INDEX`` (-100, PyTorch's convention) marks targets that do not count: SFT masks the
prompt this way, so that only the assistant's tokens are learned. The faster CPU version of the
same loss, which never holds the logits in memory, is chunked_loss.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
