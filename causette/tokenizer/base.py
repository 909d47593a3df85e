"""What every Causette tokenizer offers, whatever cuts the text (BPE or characters).

A tokenizer maps text to a list of integer ids and back. Three groups of ids exist:

* ``0..255``: the 256 possible bytes. Any string can be encoded with them alone, so no text is
  ever "unknown" and ``decode(encode(s)) == s`` holds for every string;
* then the ids a tokenizer learned (BPE merges, or frequent characters);
* then the special tokens (see :mod:`causette.tokenizer.special`), last, so that
  ``vocab_size`` is a round number that a model can keep when specials are added.

Subclasses implement :meth:`_encode_ordinary` (text without specials → ids),
:meth:`token_bytes`, :attr:`vocab_size` and :meth:`to_dict`; the rest is shared here.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Iterable, Sequence

from causette.errors import CausetteError
from causette.tokenizer.special import TEXT_SPECIALS, AllowedSpecial, resolve_allowed, split_specials
from causette.utils.workers import OrderedPool

PARALLEL_MIN_CHARS = 1_000_000  # smaller batches are encoded in this process


class Tokenizer:
    """Base class: text ⇄ ids, special tokens, batches, streaming decoding."""

    kind = "base"

    def __init__(self, special_tokens: dict[str, int]):
        self.special_tokens: dict[str, int] = dict(special_tokens)
        self.special_names: dict[int, str] = {i: s for s, i in special_tokens.items()}

    # ----------------------------------------------------------------- to implement
    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def _encode_ordinary(self, text: str) -> list[int]:
        """Ids of ``text`` where no special token is recognised."""
        raise NotImplementedError

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one token stands for (a special token: its UTF-8 name)."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        """Everything needed to rebuild this tokenizer (saved as ``tokenizer.json``)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- encoding
    def encode(self, text: str, allowed_special: AllowedSpecial = "none") -> list[int]:
        """Ids of ``text``. Only the specials in ``allowed_special`` ("none", "all" or a set of
        names) are read as special tokens; any other ``<|...|>`` is encoded as ordinary text.

        Text from a user must be encoded with the default ``"none"``.
        """
        allowed = resolve_allowed(allowed_special, self.special_tokens.keys())
        ids: list[int] = []
        for piece, is_special in split_specials(text, allowed):
            if is_special:
                ids.append(self.special_tokens[piece])
            else:
                ids.extend(self._encode_ordinary(piece))
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Same as ``encode(text)``: no special token is recognised."""
        return self.encode(text)

    def encode_batch(
        self, texts: Sequence[str], allowed_special: AllowedSpecial = "none", workers: int | None = None
    ) -> list[list[int]]:
        """Encode many texts on every core (``workers`` processes; default: all cores).

        Small batches are encoded in this process: starting workers costs more than it saves.
        """
        texts = list(texts)
        workers = workers or os.cpu_count() or 1
        if workers == 1 or len(texts) < 2 or sum(len(t) for t in texts) < PARALLEL_MIN_CHARS:
            return [self.encode(t, allowed_special) for t in texts]
        size = max(1, len(texts) // (4 * workers))
        slices = [texts[i : i + size] for i in range(0, len(texts), size)]
        # worker processes that die with this one and leave Ctrl-C to it (causette/utils/workers.py)
        with OrderedPool(workers, _encode_slice, _set_worker_tokenizer, (self, allowed_special)) as pool:
            return [ids for part in pool.imap(slices) for ids in part]

    # ----------------------------------------------------------------- decoding
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The exact bytes of ``ids`` (possibly cut in the middle of a UTF-8 character)."""
        return b"".join(self.token_bytes(i) for i in ids)

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Text of ``ids``. Ids produced by :meth:`encode` always give back the original text;
        an arbitrary sequence (a model's output) may split a character: "�" marks such bytes."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def incremental_decoder(self, errors: str = "replace"):
        """A decoder fed one id at a time that never emits half a character (chat streaming)."""
        from causette.tokenizer.decoder import IncrementalDecoder

        return IncrementalDecoder(self, errors=errors)

    def _check_id(self, token_id: int) -> None:
        if not 0 <= token_id < self.vocab_size:
            raise CausetteError(f"token id {token_id} is out of range for a vocabulary of {self.vocab_size}")

    # ----------------------------------------------------------------- specials
    @property
    def special_ids(self) -> set[int]:
        return set(self.special_names)

    @property
    def control_ids(self) -> set[int]:
        """The specials that are not text: all but the tool tags (``special.TEXT_SPECIALS``). A
        reply ends at one of these; a tool tag is part of the reply."""
        return {i for i, name in self.special_names.items() if name not in TEXT_SPECIALS}

    def special_id(self, name: str) -> int:
        try:
            return self.special_tokens[name]
        except KeyError:
            raise CausetteError(f"this tokenizer has no special token {name}") from None

    def is_special(self, token_id: int) -> bool:
        return token_id in self.special_names

    @property
    def bos_id(self) -> int:
        return self.special_id("<|bos|>")

    @property
    def pad_id(self) -> int:
        return self.special_id("<|pad|>")

    @property
    def end_id(self) -> int:
        """The token that ends a chat turn (``<|im_end|>``; ``<|end|>`` in older tokenizers)."""
        for name in ("<|im_end|>", "<|end|>"):
            if name in self.special_tokens:
                return self.special_tokens[name]
        raise CausetteError("this tokenizer has no end-of-turn token <|im_end|>")

    # ----------------------------------------------------------------- identity
    @property
    def hash(self) -> str:
        """Short SHA-256 of what defines the ids (not of training metadata): two tokenizers with
        the same hash encode identically. Later stages record it next to token data."""
        if getattr(self, "_hash", None) is None:  # a tokenizer never changes once built
            blob = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
            self._hash = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
        return self._hash

    def __repr__(self) -> str:
        return f"<{type(self).__name__} vocab_size={self.vocab_size} specials={len(self.special_tokens)}>"


# ----------------------------------------------------------------------------- encode_batch's workers
_WORKER_TOKENIZER: tuple[Tokenizer, AllowedSpecial] | None = None  # set once in each worker process


def _set_worker_tokenizer(tok: Tokenizer, allowed_special: AllowedSpecial) -> None:
    global _WORKER_TOKENIZER
    _WORKER_TOKENIZER = (tok, allowed_special)


def _encode_slice(texts: list[str]) -> list[list[int]]:
    tok, allowed_special = _WORKER_TOKENIZER
    return [tok.encode(t, allowed_special) for t in texts]
