"""The generation worker of ``causette serve``: one model, the requests decoded together.

A single worker thread owns the model and takes the requests from a bounded FIFO queue:
whoever asks first is served first, memory stays bounded (at most ``max_queue`` waiting
requests, each with a bounded prompt and reply), and a request that finds the queue full gets
a 503 at once instead of waiting forever.

**Continuous batching.** The worker keeps ``max_batch`` *slots*, one row each of a KV cache
``(max_batch, heads, block_size, head_dim)`` per layer (``sliding_window`` positions instead of
``block_size`` for a sliding-window model: a ring buffer, causette/model/kvcache.py). A request taken from the queue gets a
free slot: its prompt is read (prefill, eager) into that row, and from then on each *step*
decodes one token for every busy slot at once, each row at its own position
(decode_step.py). A request leaves its slot as soon as it ends (stop token, length, client
gone) and the next waiting one takes it, between two steps: requests join and leave the batch
as they come, nobody waits for the longest reply of a batch. At this size a step is paid for
the weights it reads, not the rows it computes, so 8 rows cost little more than one.

**Prefix reuse.** A row's cache still holds the keys and values of its last request when that
request ends. A new request goes to the free row whose cache already holds the longest start of
its prompt, and only the rest of the prompt is read. A conversation's next turn resends the
whole conversation: its new prefill is then just the new message (and a system prompt shared by
many requests is read once per row). The reused keys and values are those of the same tokens at
the same positions, computed by the prefill or by decoding steps: equal to within float
rounding (~1e-6). Off for sliding-window models (their ring buffer has overwritten old
positions) and with ``prefix_reuse=False`` (``causette serve --no-prefix-reuse``).

Each row keeps its own sampling settings and its own random generator (the seed of its
request), so a request gets the same tokens whether it shares the batch or not (for greedy
requests the tests check it against the unbatched engine). The worker hands text deltas back
to the event loop as they come; a client that goes away (a closed stream, a cancelled
non-streaming request) marks its job cancelled and its row ends at the next step (a cancelled
job still waiting in the queue is skipped).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import torch

from causette.inference.engine import Engine
from causette.inference.row import Generation, Row
from causette.inference.sampling import SamplingParams, fresh_seed, make_generators, pick_tokens
from causette.inference.server_schema import ApiError


@dataclass
class Job:
    """One generation request, as the worker sees it. Events go to ``events`` in the event loop:
    ``("delta", str)``, then ``("done", Generation)`` or ``("error", Exception)``."""

    prompt: list[int]
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    result: Generation | None = None  # set when the worker is done with it

    def emit(self, kind: str, value: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is closed (server shutting down): nobody listens
            self.cancelled.set()


def _deliver(items: list[tuple[Job, str, Any]]) -> None:
    """In the event loop: each event into its job's queue, in order."""
    for job, kind, value in items:
        job.events.put_nowait((kind, value))


class _Slot:
    """A busy row of the batch: its job, its text bookkeeping, its generator and position."""

    def __init__(self, job: Job, row: Row, generator: torch.Generator, seen: torch.Tensor | None):
        self.job, self.row, self.generator, self.seen = job, row, generator, seen
        self.pos = len(job.prompt)  # where the next token goes in the cache
        self.last = 0  # the token to feed at the next step


class Worker:
    """The thread that owns the model: takes jobs from a bounded FIFO queue, decodes them together."""

    def __init__(self, engine: Engine, max_queue: int, max_batch: int = 8, min_step_seconds: float = 0.0,
                 prefix_reuse: bool = True):
        """``max_batch``: requests decoded together (1: one after the other). ``min_step_seconds``:
        a floor on the time of a step, to watch a stream come slowly (tests, demos).
        ``prefix_reuse``: see the module's docstring."""
        self.engine = engine
        self.max_batch = max_batch
        self.prefix_reuse = prefix_reuse
        # the token ids whose keys/values row i of the cache holds at positions 0, 1, ...
        self._held: list[list[int]] = [[] for _ in range(max_batch)]
        self._used = [0] * max_batch  # when each row last took a request (a counter)
        self.prompt_tokens = 0  # prompt tokens of the requests started so far ...
        self.reused_tokens = 0  # ... of which the cache already held the keys and values
        self.min_step_seconds = min_step_seconds
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self.last: Generation | None = None  # the latest finished generation (for tests)
        self._slots: list[_Slot | None] = [None] * max_batch
        self._outbox: list[tuple[Job, str, Any]] = []  # events of this step, sent together
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="causette-generation", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise ApiError(503, "the server is busy (too many requests waiting): retry in a moment",
                           type="server_busy", code="queue_full") from None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread: waiting jobs get a 503, the rows being decoded end ("interrupted")."""
        self._closing = True
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.emit("error", ApiError(503, "the server is shutting down", type="server_busy"))
        try:
            self.jobs.put(None, timeout=timeout)
        except queue.Full:  # a request slipped in meanwhile; the thread is a daemon: let it be
            return
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            self._setup()
        except Exception as e:  # noqa: BLE001 - every request gets the error rather than a hang
            while (job := self.jobs.get()) is not None:
                job.emit("error", e)
            return
        while not self._closing:
            busy = any(s is not None for s in self._slots)
            admitted = self._admit(block=not busy)
            self._flush()
            if not admitted:
                break
            if any(s is not None for s in self._slots):
                start = time.perf_counter()
                self._step()
                self._flush()
                rest = self.min_step_seconds - (time.perf_counter() - start)
                if rest > 0:
                    time.sleep(rest)
        for i, slot in enumerate(self._slots):
            if slot is not None:
                self._end(i, "interrupted")
        self._flush()

    def _emit(self, job: Job, kind: str, value: Any) -> None:
        self._outbox.append((job, kind, value))

    def _flush(self) -> None:
        """Send the events gathered since the last flush: one wake-up of each event loop per step
        instead of one per row and token (each wake-up writes to a socket: ~0.15 ms of the
        worker's time on the machine of bench/LOG.md, a fifth of a run)."""
        if not self._outbox:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Job, str, Any]]] = {}
        for item in self._outbox:
            by_loop.setdefault(item[0].loop, []).append(item)
        self._outbox = []
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # the event loop is closed (server shutting down): nobody listens
                for job, _, _ in items:
                    job.cancelled.set()

    def _setup(self) -> None:
        model = self.engine.model
        # A model without attention keeps no cache: each row is recomputed over its context.
        self.cache = model.new_cache(self.max_batch, max_len=self.engine.block_size) if model.supports_cache else None
        step = self.engine.fast_step(self.max_batch)
        if step is None:  # the same step, eager (exact mode, a model not compiled)
            from causette.inference.decode_step import DecodeStep, supports

            step = DecodeStep(model) if supports(model) else None
        self._decode = step
        self._reuse = self.prefix_reuse and self.cache is not None and model.cfg.sliding_window is None
        self._tokens = torch.zeros(self.max_batch, dtype=torch.long)
        self._pos = torch.zeros(self.max_batch, dtype=torch.long)

    def _admit(self, block: bool) -> bool:
        """Give free slots to waiting jobs (waiting for one when ``block``); False at shutdown."""
        while None in self._slots:
            try:
                job = self.jobs.get(block=block)
            except queue.Empty:
                return True
            if job is None:
                return False
            block = False
            if job.cancelled.is_set():
                continue  # its client left while it waited
            try:
                self._start(job, self._free_row(job.prompt))
            except Exception as e:  # noqa: BLE001 - reported to the client, the worker goes on
                self._emit(job, "error", e)
        return True

    def _free_row(self, prompt: list[int]) -> int:
        """The free row whose cache holds the longest start of ``prompt``; when none holds more
        than its first token, the row used least recently (what the others hold may serve the
        next turn of their conversations)."""
        free = [i for i, s in enumerate(self._slots) if s is None]
        if not self._reuse:
            return free[0]
        best = max(free, key=lambda i: (_common_prefix(self._held[i], prompt), -self._used[i]))
        if _common_prefix(self._held[best], prompt) <= 1:
            best = min(free, key=lambda i: self._used[i])
        return best

    @torch.inference_mode()
    def _start(self, job: Job, i: int) -> None:
        """Prefill ``job``'s prompt into row ``i`` of the cache and pick its first token."""
        engine, params = self.engine, job.params.validate()
        seed = params.seed if params.seed is not None else fresh_seed()
        row = Row(list(job.prompt), engine.tokenizer, params, seed)
        seen = None
        if params.repetition_penalty != 1.0:
            seen = torch.zeros(1, engine.vocab_size, dtype=torch.bool, device=engine.device)
            seen[0, job.prompt] = True
        slot = _Slot(job, row, make_generators([seed])[0], seen)
        # the start of the prompt this row already holds (the last token is always read: its logits)
        reused = min(_common_prefix(self._held[i], job.prompt), len(job.prompt) - 1) if self._reuse else 0
        self._used[i] = self.prompt_tokens = self.prompt_tokens + len(job.prompt)  # grows at every request
        self.reused_tokens += reused
        if reused == len(job.prompt) - 1 and reused > 0:
            # Only the last prompt token is new: the next batched step feeds it with the other
            # rows (as it feeds each row's latest token) instead of a prefill of its own.
            del self._held[i][reused:]
            slot.pos, slot.last = reused, job.prompt[-1]
            self._slots[i] = slot
            return
        self._held[i] = []  # until the prefill below has written the row
        prompt = torch.tensor([job.prompt[reused:]], dtype=torch.long, device=engine.device)
        cache = None
        if self.cache is not None:
            cache = self.cache.rows(i, i + 1)
            cache.pos = reused  # positions 0 .. reused-1 hold this prompt's keys and values already
        logits = engine.model.logits(prompt, cache=cache, last_only=True)[:, -1].float()
        self._held[i] = list(job.prompt) if self._reuse else []
        self._slots[i] = slot
        self._take(i, logits)

    def _take(self, i: int, logits: torch.Tensor, token: int | None = None) -> None:
        """Pick row ``i``'s next token from its logits ``(1, V)`` (or take ``token``, already
        picked), show it, end the row if done."""
        slot = self._slots[i]
        job, row = slot.job, slot.row
        if job.cancelled.is_set():
            return self._end(i, "interrupted")
        if token is None:
            token = int(pick_tokens(logits, job.params, [slot.generator], slot.seen)[0])
        if slot.seen is not None:
            slot.seen[0, token] = True
        delta = row.push(token)
        if delta:
            self._emit(job, "delta", delta)
        slot.last = token
        if not row.done and slot.pos >= self.engine.block_size - 1:  # no room to feed it back
            delta = row.finish("context")
            if delta:
                self._emit(job, "delta", delta)
        if row.done:
            self._end(i, None)

    def _end(self, i: int, reason: str | None) -> None:
        slot, self._slots[i] = self._slots[i], None
        if reason is not None:
            slot.row.finish(reason)
        self.last = slot.row.result
        self._emit(slot.job, "done", self.last)

    @torch.inference_mode()
    def _step(self) -> None:
        """One token for every busy row, all rows in one forward pass."""
        busy = [i for i, s in enumerate(self._slots) if s is not None]
        # The step computes every row. An idle row writes (token 0) just past what its cache holds,
        # never over it: a later request may reuse that prefix.
        tokens = [0] * self.max_batch
        positions = [min(len(held), self.engine.block_size - 1) for held in self._held]
        for i in busy:
            slot = self._slots[i]
            tokens[i], positions[i] = slot.last, slot.pos
            if self._reuse:  # this step writes the row's token at its position
                del self._held[i][slot.pos :]
                self._held[i].append(slot.last)
        # two tensors made at once (setting their items one by one cost ~8 % of the worker's time)
        self._tokens, self._pos = torch.tensor(tokens), torch.tensor(positions)
        try:
            logits = self._forward()
        except Exception as e:  # noqa: BLE001 - the rows fail, the worker goes on
            for i in busy:
                slot, self._slots[i] = self._slots[i], None
                self._held[i] = []
                self._emit(slot.job, "error", e)
            return
        # Rows with the same filters (and no repetition penalty) pick their tokens in one call,
        # each with its own generator: the same draws as one by one, fewer small operations.
        groups: dict[tuple, list[int]] = {}
        for i in busy:
            self._slots[i].pos += 1
            p = self._slots[i].job.params
            key = (p.temperature, p.top_k, p.top_p, p.min_p) if p.repetition_penalty == 1.0 else ("alone", i)
            groups.setdefault(key, []).append(i)
        for rows in groups.values():
            if len(rows) == 1:
                self._take(rows[0], logits[rows[0] : rows[0] + 1])
                continue
            first = self._slots[rows[0]].job.params
            picked = pick_tokens(logits[rows], first, [self._slots[i].generator for i in rows]).tolist()
            for i, token in zip(rows, picked):
                self._take(i, logits[i : i + 1], token)

    def _forward(self) -> torch.Tensor:
        if self._decode is not None:
            return self._decode(self._tokens, self._pos, self.cache.k, self.cache.v)
        # A model the step does not cover (MoE): each busy row alone, through its cache row.
        out = torch.zeros(self.max_batch, self.engine.vocab_size)
        for i, slot in enumerate(self._slots):
            if slot is not None and self.cache is None:  # no cache: the row's whole context again
                ids = torch.tensor([slot.row.prompt + slot.row.tokens], dtype=torch.long, device=self.engine.device)
                out[i] = self.engine.model.logits(ids, last_only=True)[0, -1]
            elif slot is not None:
                rows = self.cache.rows(i, i + 1)
                rows.pos = slot.pos
                out[i] = self.engine.model.logits(self._tokens[i : i + 1, None], cache=rows, last_only=True)[0, -1]
        return out


def _common_prefix(a: list[int], b: list[int]) -> int:
    """How many first tokens ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    for k in range(n):
        if a[k] != b[k]:
            return k
    return n


async def _run_job(worker: Worker, job: Job, request) -> AsyncIterator[str]:
    """Submit ``job`` (a 503 if the queue is full) and yield its text deltas."""
    worker.submit(job)
    async for delta in _events_of(job, request):
        yield delta


async def _events_of(job: Job, request) -> AsyncIterator[str]:
    """The text deltas of a submitted job, until it is done (then ``job.result`` is set). The
    job is cancelled if the client disconnects or the caller stops iterating."""
    try:
        while True:
            try:
                kind, value = await asyncio.wait_for(job.events.get(), timeout=0.5)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    return
                continue
            if kind == "delta":
                yield value
                if await request.is_disconnected():
                    return
            elif kind == "done":
                job.result = value
                return
            else:
                raise value
    finally:
        job.cancelled.set()
