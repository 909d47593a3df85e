"""Learning-rate schedules: a pure function of the step, so resuming needs no state; or, under a
wall-clock budget, a function of the time left (:class:`TimeBudget`).

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


class TimeBudget:
    """The learning-rate schedule of a run with a wall-clock budget (``train.max_minutes``), driven by
    the clock rather than by a step count fixed in advance.

    Before each step, :meth:`plan` looks at the time left and the recent speed (median duration of
    the last ``WINDOW`` steps, whatever slows or speeds them: compilation, another program on the
    cores, a pause) and returns the step's learning-rate scale and whether it is the last one:

    - the run ends when the next step would finish closer to the deadline than the one after it,
      minus a reserve for what comes after the last step (final evaluation and checkpoint, as
      measured during the run or estimated); ``max_steps`` ends it earlier if it comes first;
    - ``wsd``: the decay starts when the time left equals the decay length (``decay_frac`` of the
      run's expected length) and follows the clock linearly down to ``min_lr``;
    - ``cosine``: half a cosine of the share of the expected length already spent;
    - while ``max_steps`` fits in the time left, the step schedule (:func:`lr_at`) exactly, so a
      budget that does not bind changes nothing (resuming stays bit for bit);
    - the last step always runs at ``min_lr``; warmup stays a number of steps; once decaying, the
      scale never rises again (a run that slows down does not warm back up).

    When the clock binds, only elapsed time counts, not steps, so a faster or slower second half,
    or a pause, just moves the decay on the clock. ``spent`` is the budget used by earlier sessions of the same run
    (resuming keeps it). All times are seconds of ``clock`` (any monotonic clock).
    """

    WINDOW = 10

    def __init__(
        self,
        seconds: float,
        start: float,
        *,
        spent: float = 0.0,
        schedule: str = "cosine",
        decay_frac: float = 0.2,
        min_scale: float = 0.1,
        warmup_steps: int = 0,
        max_steps: int | None = None,
        eval_in_steps: float = 0.0,
        recent: list[float] | None = None,
    ):
        if schedule not in ("cosine", "wsd", "constant"):
            raise ValueError(f"unknown schedule {schedule!r} (cosine, wsd or constant)")
        self.seconds, self.schedule, self.decay_frac = seconds, schedule, decay_frac
        self.min_scale, self.warmup_steps, self.max_steps = min_scale, warmup_steps, max_steps
        self.origin = start - spent  # when the budget would have started, had the run never stopped
        self.recent: list[float] = list(recent or [])[-self.WINDOW :]  # durations of the last WINDOW steps
        # What follows the last step: the final evaluation (measured once one has run; until then
        # estimated as this many steps) and the final checkpoint (as measured).
        self.eval_in_steps = eval_in_steps
        self.eval_seconds: float | None = None
        self.save_seconds = 0.0
        self.ceiling = 1.0  # the decay factor never rises again

    # ------------------------------------------------------------------ what the loop reports
    def record_step(self, seconds: float) -> None:
        self.recent = (self.recent + [seconds])[-self.WINDOW :]

    def record_eval(self, seconds: float) -> None:
        self.eval_seconds = seconds

    def record_save(self, seconds: float) -> None:
        self.save_seconds = seconds

    # ------------------------------------------------------------------ what it answers
    def spent(self, now: float) -> float:
        return now - self.origin

    @property
    def step_seconds(self) -> float:
        """Median duration of the recent steps, the lower one of an even count (0 before the first
        step): the session's first step, which pays for compilation, does not count after the second."""
        return sorted(self.recent)[(len(self.recent) - 1) // 2] if self.recent else 0.0

    @property
    def reserve(self) -> float:
        """Seconds kept for what follows the last step. A guessed evaluation (none timed yet) is
        capped at 10 % of the budget, so that a wrong guess cannot end a run early."""
        if self.eval_seconds is not None:
            evaluation = self.eval_seconds
        else:
            evaluation = min(self.eval_in_steps * self.step_seconds, 0.1 * self.seconds)
        return evaluation + self.save_seconds

    def steps_left(self, step: int, now: float) -> int:
        """How many more steps (this one included) are expected to fit."""
        s = self.step_seconds
        left = self.origin + self.seconds - self.reserve - now
        fit = int(left / s + 0.5) if s > 0 else 1
        if self.max_steps is not None:
            fit = min(fit, self.max_steps - step)
        return max(fit, 1)

    def plan(self, step: int, now: float) -> tuple[float, bool]:
        """(learning-rate scale, is this the last step) for optimizer step ``step`` (0-based) starting at ``now``."""
        s = self.step_seconds
        # The last step's own duration, if shorter than the median, decides when to stop: a run
        # whose first steps paid for compilation does not stop early on their account.
        s_end = min(s, self.recent[-1]) if self.recent else 0.0
        left = self.origin + self.seconds - self.reserve - now  # time for steps from now on
        after = left - s  # what is left once this step is done
        last = left < 1.5 * s_end if s_end > 0 else left <= 0
        steps_after = None if self.max_steps is None else self.max_steps - step - 1
        if steps_after is not None and steps_after <= 0:
            last = True
        warm = (step + 1) / self.warmup_steps if step < self.warmup_steps else 1.0
        if self.schedule == "constant":
            return min(warm, 1.0), last
        if last:
            decay = self.min_scale
        elif steps_after is not None and (s == 0 or steps_after * s <= after):
            # max_steps comes first: the step schedule, exactly as without a budget (reproducible)
            scale = lr_at(step, lr=1.0, min_lr=self.min_scale, warmup_steps=self.warmup_steps,
                          total_steps=self.max_steps, schedule=self.schedule, decay_frac=self.decay_frac)
            if step >= self.warmup_steps:
                self.ceiling = scale = min(scale, self.ceiling)
            return scale, last
        elif s == 0:  # the session's first step, speed unknown yet (a resumed run passes ``recent``)
            decay = 1.0
        else:  # the clock comes first
            elapsed = now + s - self.origin  # at the end of this step
            expected = elapsed + max(after, 0.0)  # the run's expected length
            if self.schedule == "cosine":
                progress = min(elapsed / max(expected, 1e-9), 1.0)
                decay = self.min_scale + 0.5 * (1.0 - self.min_scale) * (1.0 + math.cos(math.pi * progress))
            else:  # wsd
                length = self.decay_frac * expected
                share = 1.0 if after >= length else max(after, 0.0) / max(length, 1e-9)
                decay = self.min_scale + (1.0 - self.min_scale) * share
        self.ceiling = decay = min(decay, self.ceiling)
        return min(warm, decay), last
