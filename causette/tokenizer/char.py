"""A character-level tokenizer, for teaching and for comparison with BPE.

One token per character, as in the first character-level language models: simple to read,
but sequences are 3 to 4 times longer than with BPE, so a model sees far less text per step.

Ids: ``0..255`` are the bytes (an ASCII character is its own byte, and any character never seen
in training falls back to its UTF-8 bytes, so every string still round-trips), then one id per
non-ASCII character kept from the training text (``é``, ``à``, ``«``, ``œ``...), in Unicode
order, then the special tokens. ``vocab_size`` in the config is an upper bound: the most
frequent characters are kept until it is reached.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping, Sequence

from causette.tokenizer.base import Tokenizer
from causette.utils.text import valid_unicode


class CharTokenizer(Tokenizer):
    kind = "char"

    def __init__(self, chars: Sequence[str], special_tokens: Mapping[str, int], metadata: dict | None = None):
        super().__init__(dict(special_tokens))
        self.chars: list[str] = list(chars)
        self.metadata = dict(metadata or {})
        for ch in self.chars:
            if len(ch) != 1 or ord(ch) < 128:
                raise ValueError(f"character tokens must be single non-ASCII characters, got {ch!r}")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("a character is listed twice")
        self.char_ids: dict[str, int] = {chr(b): b for b in range(128)}  # ASCII: the byte itself
        self.char_ids.update({ch: 256 + k for k, ch in enumerate(self.chars)})
        first_special = 256 + len(self.chars)
        expected = list(range(first_special, first_special + len(self.special_tokens)))
        if sorted(self.special_tokens.values()) != expected:
            raise ValueError(f"special token ids must follow the characters, from {first_special}")

    @classmethod
    def train(
        cls, texts: Iterable[str], vocab_size: int, specials: Sequence[str], min_frequency: int = 1
    ) -> "CharTokenizer":
        """Keep the most frequent non-ASCII characters that fit in ``vocab_size``."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        budget = vocab_size - 256 - len(specials)
        candidates = [(n, ch) for ch, n in counts.items() if ord(ch) >= 128 and n >= min_frequency]
        candidates.sort(key=lambda nc: (-nc[0], nc[1]))  # most frequent first, ties by code point
        kept = sorted(ch for _, ch in candidates[: max(0, budget)])
        special_tokens = {s: 256 + len(kept) + k for k, s in enumerate(specials)}
        metadata = {"characters_seen": len(counts), "characters_total": sum(counts.values())}
        return cls(kept, special_tokens, metadata=metadata)

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.chars) + len(self.special_tokens)

    def _encode_ordinary(self, text: str) -> list[int]:
        ids: list[int] = []
        get = self.char_ids.get
        for ch in valid_unicode(text):
            token = get(ch)
            if token is None:
                ids.extend(ch.encode("utf-8"))  # unseen character: its bytes
            else:
                ids.append(token)
        return ids

    def token_bytes(self, token_id: int) -> bytes:
        if 0 <= token_id < 256:
            return bytes([token_id])
        if 256 <= token_id < 256 + len(self.chars):
            return self.chars[token_id - 256].encode("utf-8")
        if token_id in self.special_names:
            return self.special_names[token_id].encode("utf-8")
        self._check_id(token_id)
        raise AssertionError("unreachable")

    def to_dict(self) -> dict:
        return {
            "type": self.kind,
            "chars": list(self.chars),
            "special_tokens": dict(sorted(self.special_tokens.items(), key=lambda kv: kv[1])),
        }
