"""Settings of the tokenizer stage (``tokenizer:`` section of a config file)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenizerConfig:
    """``causette tokenizer train``: corpus → runs/<name>/tokenizer/{tokenizer.json, hf/tokenizer.json}."""

    type: str = "bpe"  # "bpe" (byte-level BPE) or "char" (one token per character, for teaching)
    vocab_size: int = 8192  # including the 256 byte tokens and the special tokens
    pattern: str = "french"  # name of a pre-tokenisation pattern (see pattern.py) or a regex

    def validate(self) -> None:
        if self.type not in ("bpe", "char"):
            raise ValueError(f"tokenizer.type must be 'bpe' or 'char', got {self.type!r}")
