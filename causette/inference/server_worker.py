"""The generation worker of ``causette serve``: one thread, one queue, events back to the clients.

A single worker thread owns the model and takes the requests from a bounded FIFO queue:
whoever asks first is served first, memory stays bounded (at most ``max_queue`` waiting
requests, each with a bounded prompt and reply), and a request that finds the queue full gets
a 503 at once instead of waiting forever.

What to compute is the scheduler's (scheduler.py), the same one ``Engine.generate`` uses:
``max_batch`` rows of a KV cache, continuous batching (requests join and leave the batch
between two steps, each row at its own position), prefix reuse (a conversation's next turn
reads only its new message; ``causette serve --no-prefix-reuse`` turns it off), each request
with its own sampling settings and random generator, so that it gets the same tokens whether
it shares the batch or not. This module keeps the rest: the thread, the queue, and the
delivery of text deltas to the event loop as they come. A client that goes away (a closed
stream, a cancelled non-streaming request) marks its job cancelled and its row ends at the
next step (a cancelled job still waiting in the queue is skipped).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from causette.inference.engine import Engine
from causette.inference.row import Generation
from causette.inference.sampling import SamplingParams
from causette.inference.scheduler import Request, Scheduler
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
    processor: Any = None  # a logits processor for its tokens (tool calls: constrain.py)

    def emit(self, kind: str, value: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is closed (server shutting down): nobody listens
            self.cancelled.set()


def _deliver(items: list[tuple[Job, str, Any]]) -> None:
    """In the event loop: each event into its job's queue, in order."""
    for job, kind, value in items:
        job.events.put_nowait((kind, value))


class Worker:
    """The thread that owns the model: takes jobs from a bounded FIFO queue into the scheduler."""

    def __init__(self, engine: Engine, max_queue: int, max_batch: int = 8, min_step_seconds: float = 0.0,
                 prefix_reuse: bool = True):
        """``max_batch``: requests decoded together (1: one after the other). ``min_step_seconds``:
        a floor on the time of a step, to watch a stream come slowly (tests, demos).
        ``prefix_reuse``: see scheduler.py."""
        self.engine = engine
        self.max_batch = max_batch
        self.prefix_reuse = prefix_reuse
        self.min_step_seconds = min_step_seconds
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self.last: Generation | None = None  # the latest finished generation (for tests)
        self.scheduler: Scheduler | None = None  # made by the thread (_setup)
        self._jobs: dict[int, Job] = {}  # id(request) -> its job
        self._outbox: list[tuple[Job, str, Any]] = []  # events of this step, sent together
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="causette-generation", daemon=True)
        self._thread.start()

    @property
    def prompt_tokens(self) -> int:
        """Prompt tokens of the requests started so far ..."""
        return self.scheduler.prompt_tokens if self.scheduler else 0

    @property
    def reused_tokens(self) -> int:
        """... of which the cache already held the keys and values."""
        return self.scheduler.reused_tokens if self.scheduler else 0

    @property
    def cache(self):
        return self.scheduler.runner.cache if self.scheduler else None

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

    def _setup(self) -> None:
        if self.scheduler is None:
            self.scheduler = self.engine.scheduler(self.max_batch, prefix_reuse=self.prefix_reuse)

    def _run(self) -> None:
        try:
            self._setup()
        except Exception as e:  # noqa: BLE001 - every request gets the error rather than a hang
            while (job := self.jobs.get()) is not None:
                job.emit("error", e)
            return
        scheduler = self.scheduler
        while not self._closing:
            if not self._take_jobs(block=not scheduler.busy):
                break
            if scheduler.busy:
                start = time.perf_counter()
                self._send(scheduler.step())
                rest = self.min_step_seconds - (time.perf_counter() - start)
                if rest > 0:
                    time.sleep(rest)
        self._send(scheduler.stop_all("interrupted"))

    def _take_jobs(self, block: bool) -> bool:
        """Move waiting jobs into the scheduler while it has a free row (waiting for one job when
        ``block``); False at shutdown."""
        scheduler = self.scheduler
        while scheduler.has_free_row() and len(scheduler.waiting) < scheduler.rows:
            try:
                job = self.jobs.get(block=block)
            except queue.Empty:
                return True
            if job is None:
                return False
            block = False
            if job.cancelled.is_set():
                continue  # its client left while it waited
            request = Request(job.prompt, job.params, cancelled=job.cancelled.is_set, processor=job.processor)
            try:
                scheduler.submit(request)
            except Exception as e:  # noqa: BLE001 - reported to the client, the worker goes on
                self._emit(job, "error", e)
                continue
            self._jobs[id(request)] = job
            # Admitted now (prefill and first token), not after the next request arrives.
            self._send(self._admit())
        self._flush()
        return True

    def _admit(self):
        updates = []
        self.scheduler.admit(updates)
        return updates

    def _send(self, updates) -> None:
        """The scheduler's updates to their jobs, then one flush."""
        for request, kind, value in updates:
            job = self._jobs[id(request)] if kind != "done" else self._jobs.pop(id(request))
            if kind == "error":
                self._jobs.pop(id(request), None)
            if kind == "done":
                self.last = value
            self._emit(job, kind, value)
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
