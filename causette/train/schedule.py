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


class HorizonFit:
    """Fits the schedule's horizon (``total_steps``) to a wall-clock deadline (``train.max_minutes``).

    A time limit that cuts a run short would stop it mid-cosine, learning rate still high. So,
    from the ``FIRST``-th step of a session (the first ones pay for compilation), every
    ``EVERY`` steps: horizon = this step + 90 % of the time left / the median time of the last
    ``EVERY`` steps (the 10 % for evaluations and checkpoints), never past ``max_steps`` nor
    before this step. Early steps are often slower than later ones (caches, allocator), so the
    estimate is refreshed until the step reaches 30 % of the horizon, then frozen: the cosine
    has barely moved that early, so the refits do not disturb it.
    """

    FIRST, EVERY, FREEZE_AT = 20, 10, 0.3

    def __init__(self, deadline: float, max_steps: int, warmup_steps: int):
        self.deadline, self.max_steps, self.warmup_steps = deadline, max_steps, warmup_steps
        self.recent: list[float] = []  # seconds of the last EVERY steps
        self.steps_seen = 0
        self.fitting = True

    def due(self, seconds: float) -> bool:
        """Record one step's duration; True when a new horizon should be proposed now."""
        self.steps_seen += 1
        self.recent = (self.recent + [seconds])[-self.EVERY :]
        return self.fitting and self.steps_seen >= self.FIRST and self.steps_seen % self.EVERY == 0

    def propose(self, step: int, now: float) -> int:
        fits = step + int(0.9 * max(self.deadline - now, 0.0) / max(self.seconds_per_step, 1e-9))
        return min(self.max_steps, max(fits, step, self.warmup_steps + 1))

    def settle(self, step: int, horizon: int) -> bool:
        """Freeze once ``step`` is far enough into ``horizon``; True when that happens now."""
        if step >= self.FREEZE_AT * horizon:
            self.fitting = False
            return True
        return False

    @property
    def seconds_per_step(self) -> float:
        """Median duration of the last ``EVERY`` steps."""
        return sorted(self.recent)[len(self.recent) // 2]
