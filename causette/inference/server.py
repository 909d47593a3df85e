"""``causette serve``: an OpenAI-compatible HTTP API and a web chat page for one checkpoint.

    app = create_app(load_checkpoint("runs/demo/sft"))      # then: uvicorn.run(app, port=8000)

Routes: ``GET /`` (the chat page, web/index.html, self-contained: works offline),
``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/completions`` (both with
``"stream": true`` for Server-Sent Events), in the shapes the official ``openai`` client reads.

Who may send requests (the local user, not the web pages they open) is checked by
:mod:`causette.inference.server_guard`, what a request may ask by
:mod:`causette.inference.server_schema`; the generation thread, its
bounded FIFO queue and the continuous batching of the requests in
:mod:`causette.inference.server_worker`; this module wires them into the routes and the
Server-Sent Events.

A reply ends at any special token, at a ``stop`` string, after ``max_tokens``, or when the
context is full (``finish_reason`` ``"stop"`` or ``"length"``). When the request offers tools
(server_schema.py), the calls the model writes come back as ``tool_calls`` (arguments as JSON
text), streamed as one ``tool_calls`` delta per call once it is whole, with ``finish_reason``
``"tool_calls"``; a call that does not parse (cut by ``max_tokens``) stays in the content as
its text, as llama.cpp's server does.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import threading
import time
import uuid
from contextlib import asynccontextmanager
from importlib import resources
from typing import AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from causette.errors import CausetteError
from causette.inference.engine import Engine, Generation
from causette.inference.sampling import SamplingParams
from causette.inference.server_guard import LocalOnly
from causette.inference.server_schema import CHAT, CONTINUE, ApiError, Limits, RequestReader, invalid
from causette.inference.server_worker import Job, Worker, _events_of, _run_job
from causette.inference.tool_use import CallSplitter, read_call
from causette.tokenizer.special import supports_tools

__all__ = ["ApiError", "Limits", "ServerThread", "create_app", "listen_socket"]

FINISH = {"stop_token": "stop", "stop_string": "stop", "length": "length", "context": "length"}


# ============================================================================== the app


def _sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def _usage(prompt: list[int], result: Generation) -> dict:
    n = len(result.token_ids)
    return {"prompt_tokens": len(prompt), "completion_tokens": n, "total_tokens": len(prompt) + n}


def create_app(loaded, mode: str = "auto", limits: Limits | None = None,
               defaults: SamplingParams | None = None, model_name: str = "causette", decode: str = "auto",
               notify=None, host: str = "127.0.0.1", allow_hosts: tuple[str, ...] = ()):
    """The FastAPI application serving ``loaded`` (a :class:`~causette.checkpoint.load.LoadedCheckpoint`).

    ``mode``: ``"chat"`` (the chat template), ``"continue"`` (continue the last user message),
    ``"auto"``: chat for an SFT checkpoint, continuation for a base one. ``defaults``: the
    sampling settings of a request that does not give them. ``decode``: the engine's mode
    (engine.py); with ``"fast"`` the batched step is compiled (or read from the disk cache) here,
    before the server answers (``notify`` gets a line when it compiles). The generation thread
    starts with the app and stops at its shutdown. ``host`` (the address it listens on) and
    ``allow_hosts`` say which requests come from the local user (server_guard.py).
    """
    if mode not in ("auto", CHAT, CONTINUE):
        raise CausetteError(f"mode must be auto, chat or continue, got {mode!r}")
    mode = mode if mode != "auto" else (CHAT if loaded.is_chat_model else CONTINUE)
    limits = limits or Limits()
    if limits.max_batch < 1:
        raise CausetteError("max_batch must be at least 1")
    engine = Engine(loaded.model, loaded.tokenizer, decode=decode, notify=notify)
    engine.backend(limits.max_batch)  # compiled now rather than at the first request
    defaults = defaults or SamplingParams(temperature=0.7, top_k=50, top_p=0.95, max_new_tokens=256)
    defaults.validate()
    reader = RequestReader(engine, mode, limits, defaults)
    created = int(time.time())
    state: dict[str, Worker] = {}

    @asynccontextmanager
    async def lifespan(app):
        state["worker"] = app.state.worker = Worker(engine, limits.max_queue, limits.max_batch,
                                                        prefix_reuse=limits.prefix_reuse)
        try:
            yield
        finally:
            state.pop("worker").close()

    app = FastAPI(title="Causette", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.reader = reader
    app.add_middleware(LocalOnly, host=host, allow_hosts=tuple(allow_hosts))
    page = resources.files("causette.inference").joinpath("web/index.html").read_text(encoding="utf-8")
    _add_error_handlers(app)

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return HTMLResponse(page)

    def model_card() -> dict:
        request_defaults = {"temperature": defaults.temperature, "top_p": defaults.top_p,
                            "top_k": defaults.top_k, "max_tokens": min(defaults.max_new_tokens, reader.max_tokens)}
        return {
            "id": model_name, "object": "model", "created": created, "owned_by": "causette",
            "causette": {"stage": loaded.stage, "mode": mode, "context": engine.block_size,
                         "tools": mode == CHAT and supports_tools(engine.tokenizer),
                         "max_tokens": reader.max_tokens, "defaults": request_defaults},
        }

    _add_model_routes(app, model_name, model_card)
    _add_completion_routes(app, reader, state, model_name)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is an OpenAI-shaped JSON body: ours (:class:`ApiError`), the framework's (an
    unknown route: 404) and any other exception (500)."""

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


def _add_model_routes(app: FastAPI, model_name: str, model_card: Callable[[], dict]) -> None:
    """``GET /v1/models`` and ``GET /v1/models/{name}``: the one model served, as ``model_card``
    describes it."""

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{name}")
    async def one_model(name: str):
        if name != model_name:
            raise ApiError(404, f"no model {name!r}; this server serves {model_name!r}",
                           type="not_found_error", param="model", code="model_not_found")
        return model_card()


def _add_completion_routes(app: FastAPI, reader: RequestReader, state: dict[str, Worker],
                           model_name: str) -> None:
    """``POST /v1/chat/completions`` and ``POST /v1/completions``: a request read and checked, its
    job given to the worker (``state["worker"]`` while the app runs); the reply whole or streamed."""

    async def complete(request: Request, chat: bool):
        body = await reader.json_body(request)
        offer = reader.tool_offer(body) if chat else None
        prompt = reader.chat_prompt(body, offer) if chat else reader.completion_prompt(body)
        params = reader.params(body, len(prompt))
        stream_opts = body.get("stream_options") or {}
        if not isinstance(body.get("stream") or False, bool) or not isinstance(stream_opts, dict):
            raise invalid("'stream' must be true or false, 'stream_options' an object", param="stream")
        job = Job(prompt, params, asyncio.get_running_loop(), processor=reader.processor(offer))
        calls = offer is not None and offer.callable  # the reply may hold tool calls
        ident = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        head = {"id": ident, "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()), "model": model_name}

        if not body.get("stream"):
            return await _whole_reply(state["worker"], job, request, head, prompt, chat, calls)

        state["worker"].submit(job)  # a full queue gives a 503 now, before the stream starts
        head["object"] = "chat.completion.chunk" if chat else "text_completion"
        events = _stream_events(job, request, head, prompt, chat, stream_opts.get("include_usage"), calls)
        return StreamingResponse(events, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await complete(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await complete(request, chat=False)


async def _whole_reply(worker: Worker, job: Job, request: Request, head: dict, prompt: list[int], chat: bool,
                       calls: bool = False):
    """The reply in one JSON body, once the job is done (499 when the client left first)."""
    text = "".join([d async for d in _run_job(worker, job, request)])
    result = job.result
    if result is None:  # the client left
        return JSONResponse({}, status_code=499)
    reason = FINISH.get(result.finish_reason, "stop")
    if not chat:
        choice = {"index": 0, "text": text, "finish_reason": reason, "logprobs": None}
        return {**head, "choices": [choice], "usage": _usage(prompt, result)}
    message = {"role": "assistant", "content": text}
    if calls:
        content, tool_calls = _split_calls(text)
        if tool_calls:
            message = {"role": "assistant", "content": content or None, "tool_calls": tool_calls}
            reason = "tool_calls" if reason == "stop" else reason
    choice = {"index": 0, "message": message, "finish_reason": reason, "logprobs": None}
    return {**head, "choices": [choice], "usage": _usage(prompt, result)}


def _reply_parts(pieces: list[tuple[str, str]], first_index: int = 0) -> list[tuple[str, str | dict]]:
    """The pieces of tool_use.CallSplitter as ``("text", str)`` or ``("call", tool_calls entry)``
    (OpenAI's form, arguments as JSON text, ``index`` counted from ``first_index``); a call that
    does not parse (or was cut) is given back as its text."""
    out: list[tuple[str, str | dict]] = []
    for kind, piece in pieces:
        call = read_call(piece, "call_" + uuid.uuid4().hex[:24]) if kind == "call" else None
        if call is None or call.error is not None:
            out.append(("text", piece if kind == "text" else "<tool_call>" + piece
                        + ("</tool_call>" if kind == "call" else "")))
            continue
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        out.append(("call", {"index": first_index + sum(k == "call" for k, _ in out), "id": call.id,
                             "type": "function", "function": {"name": call.name, "arguments": arguments}}))
    return out


def _split_calls(text: str) -> tuple[str, list[dict]]:
    """The content and the calls of a whole reply."""
    splitter = CallSplitter()
    parts = _reply_parts(splitter.feed(text) + splitter.close())
    calls = [{k: v for k, v in entry.items() if k != "index"} for kind, entry in parts if kind == "call"]
    return "\n".join(piece for kind, piece in parts if kind == "text"), calls


def _chunk(head: dict, chat: bool, delta: str | None, reason: str | None = None) -> dict:
    """One streamed piece of the reply: new text (``delta``), or its end (``reason``)."""
    if chat:
        piece = {"delta": {} if delta is None else {"content": delta}}
    else:
        piece = {"text": delta or ""}
    return {**head, "choices": [{"index": 0, **piece, "finish_reason": reason, "logprobs": None}]}


class _StreamedCalls:
    """The chunks of a streamed chat reply that may hold tool calls: text as content deltas, each
    call as one ``tool_calls`` delta once it is whole."""

    def __init__(self, head: dict):
        self.head, self.splitter, self.count = head, CallSplitter(), 0

    def chunks(self, pieces: list[tuple[str, str]]) -> list[dict]:
        out = []
        for kind, part in _reply_parts(pieces, self.count):
            chunk = _chunk(self.head, True, part if kind == "text" else None)
            if kind == "call":
                self.count += 1
                chunk["choices"][0]["delta"] = {"tool_calls": [part]}
            out.append(chunk)
        return out


async def _stream_events(job: Job, request: Request, head: dict, prompt: list[int], chat: bool,
                         include_usage, calls: bool = False) -> AsyncIterator[str]:
    """The Server-Sent Events of a streamed reply: its pieces as they come, the finish reason, the
    usage if asked, ``[DONE]``. An error once the stream has started is an event (the status is sent)."""
    if chat:
        first = _chunk(head, chat, "")
        first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
        yield _sse(first)
    streamed = _StreamedCalls(head) if calls else None
    try:
        async for delta in _events_of(job, request):
            for chunk in streamed.chunks(streamed.splitter.feed(delta)) if streamed else [_chunk(head, chat, delta)]:
                yield _sse(chunk)
    except Exception as e:  # noqa: BLE001 - the status is sent already: report in the stream
        err = e if isinstance(e, ApiError) else ApiError(500, f"internal error: {e}", "server_error")
        yield _sse(err.body())
        return
    result = job.result
    if result is None:  # the client left
        return
    reason = FINISH.get(result.finish_reason, "stop")
    if streamed:
        for chunk in streamed.chunks(streamed.splitter.close()):
            yield _sse(chunk)
        reason = "tool_calls" if streamed.count and reason == "stop" else reason
    yield _sse(_chunk(head, chat, None, reason))
    if include_usage:
        yield _sse({**head, "choices": [], "usage": _usage(prompt, result)})
    yield _sse("[DONE]")


# ============================================================================== running it


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, for uvicorn to listen on; a one-line
    :class:`CausetteError` when it cannot be (port taken, address not of this machine, unknown
    name, port reserved to the administrator), before the model is even loaded."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise CausetteError(f"cannot listen on {where}: {e.strerror or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restart at once
        sock.bind(address)
    except OSError as e:
        sock.close()
        hint = ": another program listens there (choose another --port)" if e.errno == errno.EADDRINUSE else ""
        raise CausetteError(f"cannot listen on {where}: {e.strerror or e}{hint}") from None
    return sock


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
