"""The scheduler: requests in, rows of the KV cache out, one token per busy row per step.

Every generation goes through it: ``Engine.generate`` submits its prompts and steps until they
are done; ``causette serve``'s worker thread submits requests as they arrive and steps while
any is busy. What it decides, in this order at each :meth:`Scheduler.step`:

1. **Admission.** Waiting requests, oldest first, take the free rows of the cache (the runner's
   ``rows``; the others wait for a row to free up). A request goes to the free row whose cache
   already holds the longest start of its prompt (*prefix reuse*); when none holds more than
   its first token, to the row used least recently (what the others hold may serve the next
   turn of their conversations). If a busy row holds a longer start, it is copied over. Only
   the rest of the prompt is read (*prefill*, the model's own forward), and the request's first
   token is picked from its logits. When all but the last prompt token are already held, that
   token is simply fed by the next step with the other rows'.
2. **One step.** Every busy row feeds its latest token at its own position, all rows in one
   call of the runner (runner.py: the chosen backend runs ``model.step``), and picks its next
   token with its own sampling settings and its own random generator: a request gets the same
   tokens whatever else shares the batch. Rows with the same filters (and no repetition
   penalty or logits processor) pick in one call.
3. **Leaving.** A row whose request ends (stop token, stop string, length, context full,
   cancelled) is free for the next step's admission. Rows join and leave between two steps:
   nobody waits for the longest reply of a batch (*continuous batching*).

A row's cache keeps the keys and values of its last request after it ends (``_held`` says
which tokens), which is what prefix reuse finds. The reused keys and values are those of the
same tokens at the same positions, computed by a prefill or by steps: equal to within float
rounding (~1e-6). Off for sliding-window models (their ring buffer has overwritten old
positions) and with ``prefix_reuse=False``.

**A logits processor** (``Request.processor``) sees each row's logits before its token is
picked, with the tokens generated so far: the one place where constrained decoding plugs in,
for ``generate``, ``chat`` and ``serve`` alike.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch

from causette.errors import CausetteError
from causette.inference.config import SEED_LIMIT
from causette.inference.row import Generation, Row
from causette.inference.runner import Runner
from causette.inference.sampling import SamplingParams, fresh_seed, make_generators, pick_tokens

LogitsProcessor = Callable[[list[int], torch.Tensor], torch.Tensor]  # (tokens so far, logits (1, V)) -> logits


@dataclass(eq=False)
class Request:
    """One prompt to complete. ``seed``: its draws' seed (None: ``params.seed``, else fresh).
    ``cancelled``: asked at every token; True ends the request ("interrupted")."""

    prompt: list[int]
    params: SamplingParams
    seed: int | None = None
    processor: LogitsProcessor | None = None
    cancelled: Callable[[], bool] = field(default=lambda: False)
    row: Row | None = None  # its text bookkeeping, once admitted
    result: Generation | None = None  # once done


class Update(NamedTuple):
    """What a step did for one request: ``("delta", text)``, ``("done", Generation)`` or
    ``("error", exception)``."""

    request: Request
    kind: str
    value: object


class _Busy:
    """A busy row: its request, its generator, its repetition mask and where it stands."""

    def __init__(self, request: Request, generator: torch.Generator, seen: torch.Tensor | None, pos: int, last: int):
        self.request, self.generator, self.seen = request, generator, seen
        self.pos = pos  # where the next token goes in the cache
        self.last = last  # the token to feed at the next step


def check_prompt(prompt, block_size: int, vocab_size: int) -> list[int]:
    """The prompt as a list of ints, or a clear error."""
    prompt = [int(t) for t in prompt]
    if not prompt:
        raise CausetteError("a prompt must hold at least one token (start it with <|bos|>)")
    if len(prompt) >= block_size:
        raise CausetteError(
            f"a prompt of {len(prompt)} tokens leaves no room in the model's context of {block_size} tokens: shorten it"
        )
    if min(prompt) < 0 or max(prompt) >= vocab_size:
        raise CausetteError(f"a prompt holds a token id outside the model's vocabulary of {vocab_size}")
    return prompt


class Scheduler:
    """Requests → rows → steps (see the module docstring)."""

    def __init__(self, runner: Runner, tokenizer, prefix_reuse: bool = True):
        self.runner = runner
        self.tokenizer = tokenizer
        self.rows = runner.rows
        self.block_size: int = runner.model.cfg.block_size
        self.vocab_size: int = runner.vocab_size
        self.waiting: deque[Request] = deque()
        self._busy: list[_Busy | None] = [None] * self.rows
        # the token ids whose keys/values row i of the cache holds at positions 0, 1, ...
        self._held: list[list[int]] = [[] for _ in range(self.rows)]
        self._used = [0] * self.rows  # when each row last took a request (a counter)
        window = getattr(runner.model.cfg, "sliding_window", None)
        self.reuse = prefix_reuse and window is None
        self.prompt_tokens = 0  # prompt tokens of the requests started so far ...
        self.reused_tokens = 0  # ... of which the cache already held the keys and values

    # ------------------------------------------------------------------ state

    @property
    def busy(self) -> bool:
        """Whether a request is being decoded or waits for a row."""
        return bool(self.waiting) or any(b is not None for b in self._busy)

    def has_free_row(self) -> bool:
        return None in self._busy

    def submit(self, request: Request) -> None:
        """Queue ``request``; it takes a row at the next step that finds one free."""
        request.prompt = check_prompt(request.prompt, self.block_size, self.vocab_size)
        request.params.validate()
        self.waiting.append(request)

    def stop_all(self, reason: str = "interrupted") -> list[Update]:
        """End every request now, busy or waiting."""
        updates: list[Update] = []
        for i, b in enumerate(self._busy):
            if b is not None:
                self._end(i, reason, updates)
        while self.waiting:
            request = self.waiting.popleft()
            request.row = request.row or self._new_row(request)
            self._finish(request, reason, updates)
        return updates

    # ------------------------------------------------------------------ one step

    def step(self) -> list[Update]:
        """Admit what fits, then one token for every busy row; what happened, in order."""
        updates: list[Update] = []
        self.admit(updates)
        if any(b is not None for b in self._busy):
            self._decode(updates)
        return updates

    def admit(self, updates: list[Update]) -> None:
        """Give the free rows to waiting requests (prefill and first token)."""
        while self.waiting and self.has_free_row():
            request = self.waiting.popleft()
            if request.cancelled():
                continue  # its client left while it waited
            try:
                self._start(request, self.free_row(request.prompt), updates)
            except Exception as e:  # noqa: BLE001 - reported to its caller, the others go on
                updates.append(Update(request, "error", e))

    def free_row(self, prompt: list[int]) -> int:
        """The free row whose cache holds the longest start of ``prompt``; when none holds more
        than its first token, the row used least recently."""
        free = [i for i, b in enumerate(self._busy) if b is None]
        if not self.reuse:
            return free[0]
        best = max(free, key=lambda i: (_common_prefix(self._held[i], prompt), -self._used[i]))
        if _common_prefix(self._held[best], prompt) <= 1:
            best = min(free, key=lambda i: self._used[i])
        return best

    def _new_row(self, request: Request) -> Row:
        params = request.params
        seed = request.seed if request.seed is not None else params.seed
        seed = (seed if seed is not None else fresh_seed()) % SEED_LIMIT
        return Row(list(request.prompt), self.tokenizer, params, seed)

    def _reuse_into(self, i: int, prompt: list[int]) -> int:
        """How many first prompt tokens row ``i`` holds (copied from a busy row that holds
        more, if any); the last prompt token is always read (its logits are needed)."""
        if not self.reuse:
            return 0
        have = _common_prefix(self._held[i], prompt)
        donors = [j for j, b in enumerate(self._busy) if b is not None and j != i]
        if donors:
            j = max(donors, key=lambda j: _common_prefix(self._held[j], prompt))
            n = min(_common_prefix(self._held[j], prompt), self._busy[j].pos)
            if n > have + 1:
                self.runner.copy_prefix(j, i, n)
                self._held[i] = list(prompt[:n])
                have = n
        return min(have, len(prompt) - 1)

    def _start(self, request: Request, i: int, updates: list[Update]) -> None:
        """Prefill ``request``'s prompt into row ``i`` and pick its first token."""
        prompt, params = request.prompt, request.params
        request.row = self._new_row(request)
        seen = None
        if params.repetition_penalty != 1.0:
            seen = torch.zeros(1, self.vocab_size, dtype=torch.bool, device=self.runner.device)
            seen[0, prompt] = True
        busy = _Busy(request, make_generators([request.row.seed])[0], seen, len(prompt), 0)
        reused = self._reuse_into(i, prompt)
        self._used[i] = self.prompt_tokens = self.prompt_tokens + len(prompt)  # grows at every request
        self.reused_tokens += reused
        if reused == len(prompt) - 1 and reused > 0:
            # Only the last prompt token is new: the next step feeds it with the other rows'.
            del self._held[i][reused:]
            busy.pos, busy.last = reused, prompt[-1]
            self._busy[i] = busy
            return
        self._held[i] = []  # until the prefill below has written the row
        logits = self.runner.prefill(i, prompt[reused:], reused)
        self._held[i] = list(prompt) if self.reuse else []
        self._busy[i] = busy
        self._take(i, logits[None], None, updates)

    def _decode(self, updates: list[Update]) -> None:
        """One token for every busy row, all rows in one call of the runner."""
        busy = [i for i, b in enumerate(self._busy) if b is not None]
        # The step computes every row. An idle row writes (token 0) just past what its cache
        # holds, never over it: a later request may reuse that prefix.
        tokens = [0] * self.rows
        positions = [min(len(held), self.block_size - 1) for held in self._held]
        for i in busy:
            b = self._busy[i]
            tokens[i], positions[i] = b.last, b.pos
            if self.reuse:  # this step writes the row's token at its position
                del self._held[i][b.pos :]
                self._held[i].append(b.last)
        try:
            logits = self.runner.step(tokens, positions, [b is not None for b in self._busy])
        except Exception as e:  # noqa: BLE001 - the rows fail, the caller goes on
            for i in busy:
                b, self._busy[i] = self._busy[i], None
                self._held[i] = []
                updates.append(Update(b.request, "error", e))
            return
        groups: dict[tuple, list[int]] = {}
        for i in busy:
            b = self._busy[i]
            b.pos += 1
            p = b.request.params
            alone = p.repetition_penalty != 1.0 or b.request.processor is not None
            key = ("alone", i) if alone else (p.temperature, p.top_k, p.top_p, p.min_p)
            groups.setdefault(key, []).append(i)
        for rows in groups.values():
            if len(rows) == 1:
                self._take(rows[0], logits[rows[0] : rows[0] + 1], None, updates)
                continue
            first = self._busy[rows[0]].request.params
            picked = pick_tokens(logits[rows], first, [self._busy[i].generator for i in rows]).tolist()
            for i, token in zip(rows, picked):
                self._take(i, None, token, updates)

    def _take(self, i: int, logits: torch.Tensor | None, token: int | None, updates: list[Update]) -> None:
        """Pick row ``i``'s next token from its logits ``(1, V)`` (or take ``token``, already
        picked), show it, end the row if done."""
        b = self._busy[i]
        request, row = b.request, b.request.row
        if request.cancelled():
            return self._end(i, "interrupted", updates)
        if token is None:
            if request.processor is not None:
                logits = request.processor(list(row.tokens), logits)
            token = int(pick_tokens(logits, request.params, [b.generator], b.seen)[0])
        if b.seen is not None:
            b.seen[0, token] = True
        delta = row.push(token)
        if delta:
            updates.append(Update(request, "delta", delta))
        b.last = token
        if not row.done and b.pos >= self.block_size - 1:  # no room to feed it back
            delta = row.finish("context")
            if delta:
                updates.append(Update(request, "delta", delta))
        if row.done:
            self._end(i, None, updates)

    def _end(self, i: int, reason: str | None, updates: list[Update]) -> None:
        b, self._busy[i] = self._busy[i], None
        self._finish(b.request, reason, updates)

    def _finish(self, request: Request, reason: str | None, updates: list[Update]) -> None:
        if reason is not None:
            delta = request.row.finish(reason)
            if delta:
                updates.append(Update(request, "delta", delta))
        request.result = request.row.result
        updates.append(Update(request, "done", request.result))


def _common_prefix(a: list[int], b: list[int]) -> int:
    """How many first tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    for k in range(n):
        if a[k] != b[k]:
            return k
    return n


__all__ = ["LogitsProcessor", "Request", "Scheduler", "Update", "check_prompt"]
