"""Streaming decoding: turn ids into text one id at a time, never showing half a character.

A byte-level token can end in the middle of a UTF-8 character: "é" is two bytes (C3 A9) and a
small vocabulary may hold them as two tokens. Decoding each token alone would print "��"
where the full sequence reads "é". When a chat streams its answer token by token we must
therefore keep the bytes of an unfinished character until the token that completes it arrives.

UTF-8 makes this possible locally: the first byte of a character says how long it is
(0xxxxxxx: 1 byte, 110xxxxx: 2, 1110xxxx: 3, 11110xxx: 4) and the following bytes all look like
10xxxxxx. Python's incremental UTF-8 codec applies exactly these rules, keeping an incomplete
tail for the next call, and yields the same text as decoding everything at once (bytes that
can never form a character still become "�").
"""

from __future__ import annotations

import codecs


class IncrementalDecoder:
    """Feed ids with :meth:`push`; each call returns only whole characters (maybe ``""``)."""

    def __init__(self, tokenizer, errors: str = "replace"):
        self.tokenizer = tokenizer
        self.errors = errors
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors=errors)

    def push(self, token_id: int) -> str:
        """The text completed by this token (the bytes of an unfinished character wait)."""
        return self._utf8.decode(self.tokenizer.token_bytes(int(token_id)))

    @property
    def pending(self) -> bytes:
        """The bytes held back, waiting for the end of their character."""
        return self._utf8.getstate()[0]

    def flush(self) -> str:
        """End of stream: bytes still waiting can no longer be completed and become "�"."""
        text = self._utf8.decode(b"", final=True)
        self._utf8.reset()
        return text

    def reset(self) -> None:
        self._utf8.reset()
