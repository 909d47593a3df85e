"""The generation worker of ``causette serve``: one model, one generation at a time.

A single worker thread owns the engine and takes the requests from a bounded FIFO queue:
whoever asks first is served first, memory stays bounded (at most ``max_queue`` waiting
requests, each with a bounded prompt and reply), and a request that finds the queue full gets
a 503 at once instead of waiting forever. The worker hands text deltas back to the event loop
as they come; a client that goes away (a closed stream, a cancelled non-streaming request)
marks its job cancelled and the worker stops that generation at the next token (a cancelled
job still waiting in the queue is skipped).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from causette.inference.engine import Engine, Generation
from causette.inference.sampling import SamplingParams
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


class Worker:
    """The thread that owns the engine: takes jobs one by one from a bounded FIFO queue."""

    def __init__(self, engine: Engine, max_queue: int):
        self.engine = engine
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=max_queue)
        self.last: Generation | None = None  # the latest finished generation (for tests)
        self._thread = threading.Thread(target=self._run, name="causette-generation", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise ApiError(503, "the server is busy (too many requests waiting): retry in a moment",
                           type="server_busy", code="queue_full") from None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after the job it is running (waiting jobs are dropped)."""
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

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            if job.cancelled.is_set():
                continue  # its client left while it waited
            try:
                stream = self.engine.stream(job.prompt, job.params)
                for delta in stream:
                    if job.cancelled.is_set():
                        stream.stop("interrupted")
                        break
                    job.emit("delta", delta)
                self.last = stream.result
                job.emit("done", self.last)
            except Exception as e:  # noqa: BLE001 - reported to the client, the worker goes on
                job.emit("error", e)


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
