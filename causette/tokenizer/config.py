"""Settings of the tokenizer stage (``tokenizer:`` section of a config file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from causette.tokenizer.special import DEFAULT_SPECIALS, check_special_names
from causette.utils.ranges import WORKERS, Range, check_fields

DEFAULT_SPECIAL_TOKENS = list(DEFAULT_SPECIALS)  # ChatML's four, then the four tool tags


@dataclass
class TokenizerConfig:
    """``causette tokenizer train``: corpus → runs/<name>/tokenizer/{tokenizer.json, hf/tokenizer.json}.

    ``vocab_size`` counts everything: the 256 byte tokens, the learned tokens (BPE merges, or
    characters for ``type: char``) and the ``special_slots`` special tokens at the end. With the
    defaults, 8192 = 256 bytes + 7904 merges + 32 specials (8 named: ChatML's four and the four
    tool tags, then 24 ``<|reserved_k|>``).
    """

    type: str = "bpe"  # "bpe" (byte-level BPE) or "char" (one token per character, for teaching)
    vocab_size: int = 8192  # including the 256 byte tokens and the special slots
    pattern: str = "gpt4"  # pre-tokenisation pattern: "gpt4", "french", "gpt2" (see pattern.py) or a regex
    special_tokens: list[str] = field(default_factory=lambda: list(DEFAULT_SPECIAL_TOKENS))
    special_slots: int = 32  # ids kept for specials: the named ones, then <|reserved_0|>, ...
    min_frequency: int = 2  # a pair seen fewer times is never merged (training may stop early)
    max_train_chars: int = 0  # train on at most this many characters of the corpus (0: all of it)
    workers: int = 0  # processes counting chunks (0: one per core)

    RANGES: ClassVar[dict[str, Range]] = {
        "vocab_size": Range(1, 2**32, note="token ids are stored as 32-bit integers"),
        "special_slots": Range(min=0),
        "min_frequency": Range(min=1),
        "max_train_chars": Range(min=0, note="0 = all of the corpus"),
        "workers": WORKERS,
    }

    def validate(self) -> None:
        if self.type not in ("bpe", "char"):
            raise ValueError(f"type must be 'bpe' or 'char', got {self.type!r}")
        check_fields(self)
        try:
            check_special_names(self.special_tokens)
        except ValueError as e:
            raise ValueError(f"special_tokens: {e}") from None
        if self.special_slots < len(self.special_tokens):
            raise ValueError(
                f"special_slots ({self.special_slots}) is smaller than the number of"
                f" special tokens ({len(self.special_tokens)})"
            )
        minimum = 256 + self.special_slots
        if self.vocab_size < minimum:
            raise ValueError(
                f"vocab_size {self.vocab_size} is too small: 256 byte tokens"
                f" + {self.special_slots} special slots need at least {minimum}"
            )
        if not self.pattern:
            raise ValueError("pattern must not be empty")
        from causette.tokenizer.pattern import PATTERNS

        if self.pattern not in PATTERNS:
            import regex

            try:
                regex.compile(self.pattern)
            except (regex.error, OverflowError, RecursionError) as e:
                raise ValueError(f"pattern is neither a known name nor a valid regex ({e})") from None

    @property
    def num_merges(self) -> int:
        """How many BPE merges the vocabulary has room for."""
        return self.vocab_size - 256 - self.special_slots
