"""The sampling settings (``SamplingParams``): plain data, no PyTorch, so that ``causette --help``
can show their defaults without importing it. The filters that apply them are in sampling.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from causette.errors import CausetteError
from causette.utils.ranges import SEED, Range, show_number

# What a draw can compute. Dividing float32 logits by a temperature or a penalty below ~1e-37
# overflows to inf and the draw fails (NaN probabilities); above these bounds a setting only
# flattens the distribution into noise. Seeds: the project's one range (utils/ranges.py); a row's
# or a turn's seed + i wraps around past its top (engine.py, chat.py).
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.001, 100.0
MIN_PENALTY, MAX_PENALTY = 0.01, 100.0
SEED_LIMIT = SEED.max + 1
INTEGERS = ("top_k", "max_new_tokens", "seed")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def setting_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the sampling setting ``name`` (``"must be ..."``), or None:
    the one rule the dataclass, the command line and the server apply."""
    rng = SamplingParams.RANGES[name]
    if name == "seed" and value is None:
        return None
    if name in INTEGERS and not _is_int(value):
        return f"must be an integer {rng.bounds()}"
    if not (_is_int(value) or isinstance(value, float)):
        return f"must be a number {rng.bounds()}"
    return rng.problem(value)


def shown(value: Any, width: int = 40) -> str:
    """``value`` for an error message, at most ``width`` characters (a long value is cut)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer too long for Python to print (sys.get_int_max_str_digits)
        return "an integer of thousands of digits" if isinstance(value, int) else f"a {type(value).__name__}"
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class SamplingParams:
    """How to generate: the filters, when to stop, and the seed.

    * ``temperature``: divides the logits; < 1 sharpens, > 1 flattens, 0 = greedy.
    * ``top_k``: keep the ``k`` most probable tokens (0 = off).
    * ``top_p``: keep the smallest set of most probable tokens whose probabilities sum to at
      least ``p`` (1.0 = off).
    * ``min_p``: keep the tokens at least ``min_p`` times as probable as the best one (0 = off).
    * ``repetition_penalty``: > 1 makes tokens already present (prompt or reply) less likely.
    * ``max_new_tokens``: at most this many generated tokens (per sequence).
    * ``stop_token_ids``: generating one of these ends the sequence (it is not part of the reply).
    * ``stop_strings``: the reply ends just before the first of these strings (not shown).
    * ``seed``: the same seed, prompt and settings give the same text; None = a fresh random seed.
    """

    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    max_new_tokens: int = 200
    stop_token_ids: tuple[int, ...] = ()
    stop_strings: tuple[str, ...] = ()
    seed: int | None = None

    RANGES: ClassVar[dict[str, Range]] = {
        "temperature": Range(MIN_TEMPERATURE, MAX_TEMPERATURE, also=(0,), note="0 = greedy"),
        "top_k": Range(min=0, note="0 = off"),
        "top_p": Range(0, 1, min_open=True, note="1 = off"),
        "min_p": Range(0, 1, note="0 = off"),
        "repetition_penalty": Range(MIN_PENALTY, MAX_PENALTY, note="1 = off"),
        "max_new_tokens": Range(min=1),
        "seed": SEED,
    }

    def __post_init__(self):
        self.stop_token_ids = tuple(int(i) for i in self.stop_token_ids)
        self.stop_strings = tuple(self.stop_strings)

    def validate(self) -> "SamplingParams":
        """Raise a :class:`CausetteError` naming the bad setting; return self."""
        for name in self.RANGES:
            problem = setting_problem(name, getattr(self, name))
            if problem:
                raise CausetteError(f"{name} {problem}, got {show_number(getattr(self, name))}")
        if any(not s for s in self.stop_strings):
            raise CausetteError("stop strings must not be empty")
        return self

    def with_(self, **changes) -> "SamplingParams":
        """A copy with some settings changed (and checked)."""
        return replace(self, **changes).validate()

    def describe(self) -> str:
        """One line for the user, e.g. ``temperature 0.8, top-k 50, top-p off, ...``."""
        return ", ".join(
            [
                f"temperature {self.temperature:g}" + (" (greedy)" if self.temperature == 0 else ""),
                f"top-k {self.top_k or 'off'}",
                f"top-p {'off' if self.top_p >= 1 else format(self.top_p, 'g')}",
                f"min-p {'off' if self.min_p == 0 else format(self.min_p, 'g')}",
                f"repetition penalty {'off' if self.repetition_penalty == 1 else format(self.repetition_penalty, 'g')}",
                f"max new tokens {self.max_new_tokens}",
            ]
        )


# The defaults of the commands: `causette generate` continues text, `chat` and `serve` answer.
# `causette export ollama` writes the chat ones into the Modelfile, so Ollama samples alike.
GENERATE_DEFAULTS = SamplingParams(temperature=0.8, top_k=50, max_new_tokens=200)
CHAT_DEFAULTS = SamplingParams(temperature=0.7, top_k=50, top_p=0.95, max_new_tokens=256)
