"""Learning-rate schedules: a pure function of the step, so resuming needs no state.

Both schedules start with a linear warmup from ~0 to ``lr`` (large updates on a random
network are unstable), and both end at ``min_lr`` — not at zero: a learning rate that decays
to zero wastes the last steps, which was one of the seed projects' bugs.

- ``cosine``: after warmup, half a cosine from ``lr`` down to ``min_lr`` at ``total_steps``.
- ``wsd`` (warmup-stable-decay): after warmup, ``lr`` stays constant, then decays linearly
  to ``min_lr`` over the last ``decay_frac`` of the steps. The stable phase can be extended
  without knowing the final length in advance.
"""

from __future__ import annotations

import math


def lr_at(
    step: int,
    *,
    lr: float,
    min_lr: float,
    warmup_steps: int,
    total_steps: int,
    schedule: str = "cosine",
    decay_frac: float = 0.2,
) -> float:
    """Learning rate for optimizer step ``step`` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        span = max(total_steps - warmup_steps, 1)
        progress = (step - warmup_steps) / span
        return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))
    if schedule == "wsd":
        decay_steps = max(int(round(decay_frac * total_steps)), 1)
        decay_start = max(total_steps - decay_steps, warmup_steps)
        if step < decay_start:
            return lr
        progress = (step - decay_start) / max(total_steps - decay_start, 1)
        return lr + (min_lr - lr) * progress
    raise ValueError(f"unknown schedule {schedule!r} (cosine, wsd or constant)")
