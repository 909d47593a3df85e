"""The range of a numeric setting, checked one way everywhere (config sections and command-line options).

``x <= 0`` is False when ``x`` is NaN, and an infinite value passes any lower bound: scattered
comparisons let both through, to crash far from the setting. A :class:`Range` states a setting's
bounds once; :meth:`Range.problem` rejects non-finite numbers first, then values outside the
bounds, then integers too large for the 64-bit integers of NumPy and PyTorch.

A config section lists the ranges of its numeric fields in a ``RANGES`` class attribute;
:func:`check_fields` checks them all (a field left at ``None``, for "not set", is skipped).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

INT64_MAX = 2**63 - 1  # the largest integer NumPy and PyTorch hold


@dataclass(frozen=True)
class Range:
    """Allowed values: ``min``/``max`` (``None``: unbounded on that side), each bound included
    unless ``min_open``/``max_open``, and the values of ``also`` (a temperature of 0, "greedy",
    below the least one that can be computed); ``note`` says what a special value means (``"0 = off"``)."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    note: str = ""
    also: tuple = ()

    def bounds(self) -> str:
        """``>= 1``, ``> 0``, ``within [0, 1)``: what the bounds say, in words for a message."""
        text = self._interval()
        return " or ".join([*(_bound(x) for x in self.also), text]) if self.also and text else text

    def _interval(self) -> str:
        lo, hi = self.min, self.max
        if lo is not None and hi is not None:
            return f"within {'(' if self.min_open else '['}{_bound(lo)}, {_bound(hi)}{')' if self.max_open else ']'}"
        if lo is not None:
            return f"{'>' if self.min_open else '>='} {_bound(lo)}"
        if hi is not None:
            return f"{'<' if self.max_open else '<='} {_bound(hi)}"
        return ""

    def contains(self, value: float) -> bool:
        if value in self.also:
            return True
        above = self.min is None or (value > self.min if self.min_open else value >= self.min)
        below = self.max is None or (value < self.max if self.max_open else value <= self.max)
        return above and below

    def problem(self, value: float) -> str | None:
        """None when ``value`` is allowed, else what it must be: ``"must be >= 0 (0 = off)"``."""
        note = f" ({self.note})" if self.note else ""
        bounds = self.bounds()
        if isinstance(value, float) and not math.isfinite(value):
            if self.also:
                return f"must be {bounds}{note}"
            return f"must be a finite number{' ' + bounds if bounds else ''}{note}"
        if not self.contains(value):
            return f"must be {bounds}{note}"
        if isinstance(value, int) and abs(value) > INT64_MAX:
            return f"must be at most {INT64_MAX} (a 64-bit integer){note}"
        return None


def _bound(x: float) -> str:
    return str(int(x)) if isinstance(x, int) or (x.is_integer() and abs(x) < 1e15) else f"{x:g}"


def show_number(value: float) -> str:
    """A number as the user wrote it, short: ``nan``, ``-1``, ``0.0003``, ``an integer of 5000 digits``."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        try:
            return f"an integer of {len(str(abs(value)))} digits"
        except ValueError:  # beyond Python's limit for converting integers to text
            return "an integer of thousands of digits"
    return repr(value) if isinstance(value, float) else str(value)


def check(name: str, value: float, rng: Range) -> None:
    """Raise ``ValueError("lr must be > 0, got nan")`` when ``value`` is out of ``rng``."""
    problem = rng.problem(value)
    if problem:
        raise ValueError(f"{name} {problem}, got {show_number(value)}")


def check_fields(obj) -> None:
    """Check every field that ``type(obj).RANGES`` names (``None`` stands for "not set", and a
    word such as ``auto`` for a choice made later: only numbers have a range)."""
    for name, rng in getattr(type(obj), "RANGES", {}).items():
        value = getattr(obj, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            check(name, value, rng)


# Ranges several sections share. Seeds go to NumPy and PyTorch: a non-negative 64-bit integer.
SEED = Range(0, INT64_MAX)
# Worker processes are started, not just counted: more than this is a typo, not a machine.
WORKERS = Range(0, 1024, note="0 = one per core")


def number_in(rng: Range, kind: type = int):
    """An argparse ``type``: the option's text read as ``kind`` (int or float) and checked against
    ``rng``, so that ``--top -5`` stops at parsing: ``argument --top: must be >= 1, got -5``."""

    def parse(text: str):
        shown = text if len(text) <= 30 else text[:29] + "…"
        try:
            value = kind(text)
        except ValueError:
            if text.strip().lstrip("+-").isdigit():  # beyond Python's 4,300 digits
                raise argparse.ArgumentTypeError(f"an integer of {len(text.strip().lstrip('+-'))} digits is "
                                                 "too large") from None
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {shown!r}") from None
        problem = rng.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, got {shown}")
        return value

    parse.__name__ = kind.__name__
    return parse
