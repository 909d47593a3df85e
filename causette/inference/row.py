"""One sequence being generated: its tokens, the text it shows, when and why it ends.

Shared by the engine (engine.py, every row of a batch) and the server's worker (server_worker.py,
one row per request): what a token adds to the text, stop tokens and stop strings (held back
while they may still be starting), the length limit, and the :class:`Generation` it produces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from causette.inference.sampling import SamplingParams


@dataclass
class Generation:
    """What one prompt produced."""

    prompt_ids: list[int]
    token_ids: list[int] = field(default_factory=list)  # generated ids, without the stop token
    text: str = ""  # the generated text, without the stop string
    finish_reason: str | None = None
    seed: int | None = None  # the seed its draws used (with temperature > 0)


class Row:
    """The bookkeeping of one sequence: its tokens, its decoded text, whether and why it ended."""

    def __init__(self, prompt: list[int], tokenizer, params: SamplingParams, seed: int):
        self.prompt = prompt
        self.tokens: list[int] = []
        self.text = ""
        self.finish_reason: str | None = None
        self.seed = seed
        self._decoder = tokenizer.incremental_decoder()
        self._stop_ids = frozenset(params.stop_token_ids)
        self._stop_strings = params.stop_strings
        self._max_new = params.max_new_tokens
        self._held = ""  # decoded text not shown yet: it may be the start of a stop string

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    @property
    def result(self) -> Generation:
        return Generation(list(self.prompt), list(self.tokens), self.text, self.finish_reason, self.seed)

    def push(self, token: int) -> str:
        """Take one generated token; return the text it makes visible."""
        if token in self._stop_ids:
            return self.finish("stop_token")
        self.tokens.append(token)
        delta = self._release(self._decoder.push(token))
        if not self.done and len(self.tokens) >= self._max_new:
            delta += self.finish("length")
        return delta

    def finish(self, reason: str) -> str:
        """End the sequence; return the text still held back. The bytes of a character left
        incomplete by the last token are dropped rather than shown as "�"."""
        if self.done:
            return ""
        out, self._held = self._held, ""
        self.text += out
        self.finish_reason = reason
        return out

    def _release(self, new_text: str) -> str:
        """Show ``new_text`` except a possible beginning of a stop string; stop at a whole one."""
        if not self._stop_strings:
            self.text += new_text
            return new_text
        held = self._held + new_text
        hits = [i for i in (held.find(s) for s in self._stop_strings) if i >= 0]
        if hits:
            out = held[: min(hits)]
            self._held = ""
            self.text += out
            self.finish_reason = "stop_string"
            return out
        keep = _longest_stop_prefix(held, self._stop_strings)
        out, self._held = held[: len(held) - keep], held[len(held) - keep :]
        self.text += out
        return out


def _longest_stop_prefix(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that is the beginning of one of ``stops``."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


# ============================================================================== for the trainer
