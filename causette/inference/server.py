"""``causette serve``: an OpenAI-compatible HTTP API and a web chat page for one checkpoint.

    app = create_app(load_checkpoint("runs/demo/sft"))      # then: uvicorn.run(app, port=8000)

Routes: ``GET /`` (the chat page, web/index.html, self-contained: works offline),
``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/completions`` (both with
``"stream": true`` for Server-Sent Events), in the shapes the official ``openai`` client reads.

**One model, one generation at a time.** A single worker thread owns the engine and takes the
requests from a bounded FIFO queue: whoever asks first is served first, memory stays bounded
(at most ``max_queue`` waiting requests, each with a bounded prompt and reply), and a request
that finds the queue full gets a 503 at once instead of waiting forever. The worker hands text
deltas back to the event loop as they come; a client that goes away (a closed stream, a
cancelled non-streaming request) marks its job cancelled and the worker stops that generation
at the next token (a cancelled job still waiting in the queue is skipped).

**Validation.** Every mistake gets a 4xx with an OpenAI-style body
``{"error": {"message", "type", "param", "code"}}``: malformed JSON, a wrong type or range,
an unknown role, roles out of order, too many messages, ``max_tokens`` above the limit, a
prompt that does not fit in the context (400), a body over ``max_body_bytes`` (413).

**Prompts.** Conversations go through the one chat template (``render_chat``), which encodes
contents with special tokens disallowed: a user who types ``<|user|>`` sends those characters,
never a role token. With a base (pretrained, not SFT) checkpoint, ``/v1/chat/completions``
works in *continuation* mode, like ``causette chat``: the last user message is continued as
plain text, without system prompt or history (``/v1/models`` says which mode is in use).
A reply ends at any special token, at a ``stop`` string, after ``max_tokens``, or when the
context is full (``finish_reason`` ``"stop"`` or ``"length"``).
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from causette.data.chat_template import render_chat
from causette.errors import CausetteError
from causette.inference.engine import Engine, Generation
from causette.inference.sampling import SamplingParams

CHAT, CONTINUE = "chat", "continue"
FINISH = {"stop_token": "stop", "stop_string": "stop", "length": "length", "context": "length"}


@dataclass
class Limits:
    """What one request may ask for."""

    max_body_bytes: int = 1_000_000
    max_messages: int = 64
    max_tokens: int | None = None  # most new tokens per request (None: the model's block_size)
    max_queue: int = 16  # requests waiting for the worker (beyond: 503)
    max_stop: int = 4  # stop strings per request, as OpenAI


class ApiError(Exception):
    """An error for the client: HTTP status and an OpenAI-style body."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


# ============================================================================== the worker


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


# ============================================================================== request checks


def _number(body: dict, name: str, default, lo: float, hi: float, integer: bool = False,
            open_lo: bool = False):
    """``body[name]`` (``default`` when absent or null), checked to lie in ``[lo, hi]`` (``(lo, hi]``)."""
    value = body.get(name)
    if value is None:
        return default
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise invalid(f"'{name}' must be {'an integer' if integer else 'a number'}", param=name)
    if not (lo < value if open_lo else lo <= value) or not value <= hi:
        span = f"({lo}, {hi}]" if open_lo else f"[{lo}, {hi}]"
        raise invalid(f"'{name}' must be in {span}, got {value}", param=name)
    return value


def _text_content(content: Any, n: int) -> str:
    """A message's content: a string, or OpenAI's list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            is_text = isinstance(part, dict) and part.get("type") == "text"
            if not (is_text and isinstance(part.get("text"), str)):
                raise invalid(f"messages[{n}].content: only text parts are supported", param="messages")
            parts.append(part["text"])
        return "".join(parts)
    raise invalid(f"messages[{n}].content must be a string", param="messages")


class RequestReader:
    """Turns request bodies into prompts and sampling settings, or raises :class:`ApiError`."""

    def __init__(self, engine: Engine, mode: str, limits: Limits, defaults: SamplingParams):
        self.engine = engine
        self.mode = mode
        self.limits = limits
        self.max_tokens = min(limits.max_tokens or engine.block_size, engine.block_size)
        self.defaults = defaults

    async def json_body(self, request) -> dict:
        """The body as a JSON object, read at most ``max_body_bytes`` (else 413)."""
        limit = self.limits.max_body_bytes
        too_big = ApiError(413, f"request body larger than {limit} bytes", code="request_too_large")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_big
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise invalid(f"the body is not valid JSON ({e})") from None
        if not isinstance(body, dict):
            raise invalid("the body must be a JSON object")
        return body

    def params(self, body: dict, prompt_len: int) -> SamplingParams:
        d = self.defaults
        if body.get("n") not in (None, 1):
            raise invalid("only n=1 is supported", param="n")
        for name in ("logprobs", "echo"):
            if body.get(name):
                raise invalid(f"'{name}' is not supported", param=name)
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if max_tokens is not None:
            param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
                raise invalid(f"'{param}' must be a positive integer", param=param)
            if max_tokens > self.max_tokens:
                raise invalid(f"'{param}' is {max_tokens}; this server allows at most {self.max_tokens}",
                              param=param, code="max_tokens_too_large")
        else:
            max_tokens = min(d.max_new_tokens, self.max_tokens)
        if prompt_len >= self.engine.block_size:
            raise invalid(
                f"the prompt is {prompt_len} tokens long; the model's context holds {self.engine.block_size} "
                "tokens, prompt and reply together: shorten it",
                param="messages" if "messages" in body else "prompt", code="context_length_exceeded")
        stop = body.get("stop")
        if stop is None:
            stop = []
        elif isinstance(stop, str):
            stop = [stop]
        if not (isinstance(stop, list) and all(isinstance(s, str) and s for s in stop)):
            raise invalid("'stop' must be a non-empty string or a list of them", param="stop")
        if len(stop) > self.limits.max_stop:
            raise invalid(f"at most {self.limits.max_stop} stop strings", param="stop")
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
            raise invalid("'seed' must be an integer in [0, 2**63)", param="seed")
        return SamplingParams(
            temperature=_number(body, "temperature", d.temperature, 0, 2),
            top_p=_number(body, "top_p", d.top_p, 0, 1, open_lo=True),
            top_k=_number(body, "top_k", d.top_k, 0, self.engine.vocab_size, integer=True),
            min_p=_number(body, "min_p", d.min_p, 0, 1),
            repetition_penalty=_number(body, "repetition_penalty", d.repetition_penalty, 0, 10, open_lo=True),
            max_new_tokens=max_tokens,
            stop_token_ids=self.engine.special_ids,
            stop_strings=tuple(stop),
            seed=seed if seed is not None else d.seed,
        ).validate()

    def chat_prompt(self, body: dict) -> list[int]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise invalid("'messages' must be a non-empty list", param="messages")
        if len(messages) > self.limits.max_messages:
            raise invalid(f"too many messages ({len(messages)}); at most {self.limits.max_messages}",
                          param="messages", code="too_many_messages")
        clean = []
        for n, m in enumerate(messages):
            if not isinstance(m, dict):
                raise invalid(f"messages[{n}] must be an object with 'role' and 'content'", param="messages")
            role = m.get("role")
            if role not in ("system", "user", "assistant"):
                raise invalid(f"messages[{n}]: unknown role {role!r} (system, user or assistant)",
                              param="messages", code="invalid_role")
            clean.append({"role": role, "content": _text_content(m.get("content"), n)})
        if self.mode == CONTINUE:  # a base model: continue the last user message as plain text
            if clean[-1]["role"] != "user":
                raise invalid("the last message must come from the user", param="messages")
            return self.engine.encode_prompt(clean[-1]["content"])
        try:
            ids, _ = render_chat(self.engine.tokenizer, clean, add_generation_prompt=True)
        except CausetteError as e:
            raise invalid(str(e), param="messages") from None
        return ids

    def completion_prompt(self, body: dict) -> list[int]:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise invalid("'prompt' must be a string", param="prompt")
        return self.engine.encode_prompt(prompt)


# ============================================================================== the app


def _sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def _usage(prompt: list[int], result: Generation) -> dict:
    n = len(result.token_ids)
    return {"prompt_tokens": len(prompt), "completion_tokens": n, "total_tokens": len(prompt) + n}


async def _run_job(worker: Worker, job: Job, request) -> AsyncIterator[str]:
    """Submit ``job`` (a 503 if the queue is full) and yield its text deltas."""
    worker.submit(job)
    async for delta in _events_of(job, request):
        yield delta


def create_app(loaded, mode: str = "auto", limits: Limits | None = None,
               defaults: SamplingParams | None = None, model_name: str = "causette", compile: bool = False):
    """The FastAPI application serving ``loaded`` (a :class:`~causette.inference.loading.LoadedCheckpoint`).

    ``mode``: ``"chat"`` (the chat template), ``"continue"`` (continue the last user message),
    ``"auto"``: chat for an SFT checkpoint, continuation for a base one. ``defaults``: the
    sampling settings of a request that does not give them. The generation thread starts
    with the app and stops at its shutdown.
    """
    if mode not in ("auto", CHAT, CONTINUE):
        raise CausetteError(f"mode must be auto, chat or continue, got {mode!r}")
    mode = mode if mode != "auto" else (CHAT if loaded.is_chat_model else CONTINUE)
    limits = limits or Limits()
    engine = Engine(loaded.model, loaded.tokenizer, compile=compile)
    defaults = defaults or SamplingParams(temperature=0.7, top_k=50, top_p=0.95, max_new_tokens=256)
    defaults.validate()
    reader = RequestReader(engine, mode, limits, defaults)
    created = int(time.time())
    state: dict[str, Worker] = {}

    @asynccontextmanager
    async def lifespan(app):
        state["worker"] = app.state.worker = Worker(engine, limits.max_queue)
        try:
            yield
        finally:
            state.pop("worker").close()

    app = FastAPI(title="Causette", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.reader = reader
    page = resources.files("causette.inference").joinpath("web/index.html").read_text(encoding="utf-8")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        kind = "not_found_error" if e.status_code == 404 else "invalid_request_error"
        error = ApiError(e.status_code, str(e.detail), type=kind)
        return JSONResponse(error.body(), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, e: Exception):
        error = ApiError(500, f"internal error: {e}", type="server_error")
        return JSONResponse(error.body(), status_code=500)

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return HTMLResponse(page)

    def model_card() -> dict:
        request_defaults = {"temperature": defaults.temperature, "top_p": defaults.top_p,
                            "top_k": defaults.top_k, "max_tokens": min(defaults.max_new_tokens, reader.max_tokens)}
        return {
            "id": model_name, "object": "model", "created": created, "owned_by": "causette",
            "causette": {"stage": loaded.stage, "mode": mode, "context": engine.block_size,
                         "max_tokens": reader.max_tokens, "defaults": request_defaults},
        }

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{name}")
    async def one_model(name: str):
        if name != model_name:
            raise ApiError(404, f"no model {name!r}; this server serves {model_name!r}",
                           type="not_found_error", param="model", code="model_not_found")
        return model_card()

    async def complete(request: Request, chat: bool):
        body = await reader.json_body(request)
        prompt = reader.chat_prompt(body) if chat else reader.completion_prompt(body)
        params = reader.params(body, len(prompt))
        stream_opts = body.get("stream_options") or {}
        if not isinstance(body.get("stream") or False, bool) or not isinstance(stream_opts, dict):
            raise invalid("'stream' must be true or false, 'stream_options' an object", param="stream")
        job = Job(prompt, params, asyncio.get_running_loop())
        ident = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        head = {"id": ident, "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()), "model": model_name}

        if not body.get("stream"):
            text = "".join([d async for d in _run_job(state["worker"], job, request)])
            result = job.result
            if result is None:  # the client left
                return JSONResponse({}, status_code=499)
            reason = FINISH.get(result.finish_reason, "stop")
            choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason,
                       "logprobs": None} if chat else
                      {"index": 0, "text": text, "finish_reason": reason, "logprobs": None})
            return {**head, "choices": [choice], "usage": _usage(prompt, result)}

        state["worker"].submit(job)  # a full queue gives a 503 now, before the stream starts
        head["object"] = "chat.completion.chunk" if chat else "text_completion"

        def chunk(delta: str | None, reason: str | None = None) -> dict:
            if chat:
                piece = {"delta": {} if delta is None else {"content": delta}}
            else:
                piece = {"text": delta or ""}
            return {**head, "choices": [{"index": 0, **piece, "finish_reason": reason, "logprobs": None}]}

        async def events() -> AsyncIterator[str]:
            if chat:
                first = chunk("")
                first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
                yield _sse(first)
            try:
                async for delta in _events_of(job, request):
                    yield _sse(chunk(delta))
            except Exception as e:  # noqa: BLE001 - the status is sent already: report in the stream
                err = e if isinstance(e, ApiError) else ApiError(500, f"internal error: {e}", "server_error")
                yield _sse(err.body())
                return
            result = job.result
            if result is None:  # the client left
                return
            yield _sse(chunk(None, FINISH.get(result.finish_reason, "stop")))
            if stream_opts.get("include_usage"):
                yield _sse({**head, "choices": [], "usage": _usage(prompt, result)})
            yield _sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await complete(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await complete(request, chat=False)

    return app


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


# ============================================================================== running it


class ServerThread:
    """A uvicorn server in a background thread (tests, benchmarks): ``with ServerThread(app) as s:``
    then ``s.url``. Port 0 picks a free port."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="causette-server", daemon=True)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(30)
