"""What ``causette serve`` accepts: request bodies turned into prompts and sampling settings.

**Validation.** Every mistake gets a 4xx with an OpenAI-style body
``{"error": {"message", "type", "param", "code"}}``, never a 500: a body that is not JSON
(invalid UTF-8, nested too deeply, an integer of thousands of digits) or not an object, a wrong
type or range (NaN and infinities included), an unknown role, roles out of order, too many
messages, ``max_tokens`` above the limit, a prompt that does not fit in the context (400), a
body over ``max_body_bytes`` (413). Strings holding lone surrogates (``"\\ud800"``, valid JSON
but not text) are repaired with :func:`~causette.utils.text.valid_unicode`, as every reader of
user text does.

**Tools** (OpenAI's function calling). A request may offer ``tools`` (function objects with a
JSON schema), with ``tool_choice`` (``"auto"``, ``"none"``, ``"required"`` or one function) and
``parallel_tool_calls``; its messages may hold assistant ``tool_calls`` (arguments as JSON
text, as OpenAI sends them) and ``role: "tool"`` results. The template renders them as the
model was trained (Hermes / Qwen2.5 tags, causette/data/chat_template.py). The model's calls are
constrained (causette/inference/constrain.py): a name among the offered tools, arguments
valid for its schema; a schema the automaton does not cover (arrays, ``anyOf``...) leaves the
calls of that request free, the choice still holds. Tools need a chat model whose tokenizer has
the tool tokens: otherwise a 400 says so.

**Prompts.** Conversations go through the one chat template (``render_chat``), which encodes
contents with special tokens disallowed: a user who types ``<|user|>`` sends those characters,
never a role token. With a base (pretrained, not SFT) checkpoint, ``/v1/chat/completions``
works in *continuation* mode, like ``causette chat``: the last user message is continued as
plain text, without system prompt or history (``/v1/models`` says which mode is in use).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from causette.data.chat_template import check_tools, render_chat
from causette.errors import CausetteError
from causette.inference.config import MIN_PENALTY, MIN_TEMPERATURE, setting_problem, shown
from causette.inference.constrain import TokenTrie, ToolCallProcessor
from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from causette.tokenizer.special import supports_tools
from causette.utils.text import valid_unicode

CHAT, CONTINUE = "chat", "continue"


@dataclass
class Limits:
    """What one request may ask for."""

    max_body_bytes: int = 1_000_000
    max_messages: int = 64
    max_tokens: int | None = None  # most new tokens per request (None: the model's block_size)
    max_queue: int = 16  # requests waiting for the worker (beyond: 503)
    max_batch: int = 8  # requests decoded together (server_worker.py); 1: one after the other
    prefix_reuse: bool = True  # a prompt's start already in a free cache row is not read again
    max_stop: int = 4  # stop strings per request, as OpenAI


class ApiError(Exception):
    """An error for the client: HTTP status and an OpenAI-style body."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        message = valid_unicode(self.message)  # never a string the JSON response cannot encode
        return {"error": {"message": message, "type": self.type, "param": self.param, "code": self.code}}


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


# ============================================================================== request checks


def _number(body: dict, name: str, default, lo: float, hi: float, integer: bool = False,
            open_lo: bool = False):
    """``body[name]`` (``default`` when absent or null), checked to lie in ``[lo, hi]`` (``(lo, hi]``)."""
    value = body.get(name)
    if value is None:
        return default
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise invalid(f"'{name}' must be {'an integer' if integer else 'a number'}, got {_kind(value)}",
                      param=name)
    if not (lo < value if open_lo else lo <= value) or not value <= hi:  # NaN fails both
        span = f"({lo}, {hi}]" if open_lo else f"[{lo}, {hi}]"
        raise invalid(f"'{name}' must be in {span}, got {shown(value)}", param=name)
    return value


def _kind(value: Any) -> str:
    """What a JSON value is, for a message (never the value itself: it may be huge or deep)."""
    names = {bool: "a boolean", str: "a string", list: "a list", dict: "an object", type(None): "null",
             int: "an integer", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _text_content(content: Any, n: int) -> str:
    """A message's content: a string, or OpenAI's list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return valid_unicode(content)
    if isinstance(content, list):
        parts = []
        for part in content:
            is_text = isinstance(part, dict) and part.get("type") == "text"
            if not (is_text and isinstance(part.get("text"), str)):
                raise invalid(f"messages[{n}].content: only text parts are supported", param="messages")
            parts.append(part["text"])
        return valid_unicode("".join(parts))
    raise invalid(f"messages[{n}].content must be a string, got {_kind(content)}", param="messages")


@dataclass
class ToolOffer:
    """The tools a chat request offers, and how the model may call them."""

    tools: list[dict]  # OpenAI tool objects, rendered in the system turn
    choice: str = "auto"  # auto, required or none (a named function: required, ``only`` set)
    only: str | None = None  # the one function the reply must call
    parallel: bool = True  # more than one call per reply

    @property
    def callable(self) -> bool:
        return self.choice != "none"


def _tool_offer(body: dict) -> ToolOffer | None:
    """The request's ``tools``, ``tool_choice`` and ``parallel_tool_calls``, checked."""
    tools, choice = body.get("tools"), body.get("tool_choice")
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid("'parallel_tool_calls' must be true or false", param="parallel_tool_calls")
    if not tools:
        if choice not in (None, "none", "auto") or (tools is not None and not isinstance(tools, list)):
            what = "'tools' must be a non-empty list" if tools is not None else "'tool_choice' needs 'tools'"
            raise invalid(what, param="tools" if tools is not None else "tool_choice")
        return None
    try:
        tools = check_tools(tools)
    except CausetteError as e:
        raise invalid(str(e), param="tools") from None
    for k, tool in enumerate(tools):
        params = tool["function"].get("parameters")
        if tool.get("type", "function") != "function" or not (params is None or isinstance(params, dict)):
            raise invalid(f"tools[{k}] must be {{\"type\": \"function\", \"function\": {{\"name\", "
                          f"\"parameters\": {{...}}}}}}", param="tools")
    names = [t["function"]["name"] for t in tools]
    offer = ToolOffer(tools, parallel=parallel is not False)
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), dict) else None
        if choice.get("type") != "function" or name not in names:
            raise invalid(f"'tool_choice' must name one of the tools offered ({', '.join(names)})",
                          param="tool_choice")
        offer.choice, offer.only = "required", name
    elif choice is not None:
        if choice not in ("auto", "none", "required"):
            raise invalid(f"'tool_choice' must be auto, none, required or a function, got {shown(choice)}",
                          param="tool_choice")
        offer.choice = choice
    return offer


def _assistant_calls(calls: Any, n: int) -> list[dict]:
    """An assistant message's ``tool_calls``, their arguments read from JSON text into objects."""
    if not isinstance(calls, list):
        raise invalid(f"messages[{n}].tool_calls must be a list", param="messages")
    out = []
    for k, call in enumerate(calls):
        where = f"messages[{n}].tool_calls[{k}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise invalid(f"{where} must be {{\"id\", \"type\": \"function\", \"function\": "
                          f"{{\"name\", \"arguments\"}}}}", param="messages")
        args = function.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except (json.JSONDecodeError, RecursionError):
                args = None
        if not isinstance(args, dict):
            raise invalid(f"{where}.function.arguments must be a JSON object (or its text)", param="messages")
        out.append({"id": str(call.get("id") or f"call_{k + 1}"), "type": "function",
                    "function": {"name": valid_unicode(function["name"]), "arguments": args}})
    return out


def _message(m: Any, n: int) -> dict:
    """One request message in the template's form."""
    if not isinstance(m, dict):
        raise invalid(f"messages[{n}] must be an object with 'role' and 'content'", param="messages")
    role = m.get("role")
    if role not in ("system", "user", "assistant", "tool"):
        what = shown(valid_unicode(role)) if isinstance(role, str) else _kind(role)
        raise invalid(f"messages[{n}]: unknown role {what} (system, user, assistant or tool)",
                      param="messages", code="invalid_role")
    calls = m.get("tool_calls") if role == "assistant" else None
    if calls:  # OpenAI sends "content": null with calls
        content = "" if m.get("content") is None else _text_content(m.get("content"), n)
        return {"role": role, "content": content, "tool_calls": _assistant_calls(calls, n)}
    message = {"role": role, "content": _text_content(m.get("content"), n)}
    if role == "tool" and isinstance(m.get("tool_call_id"), str):
        message["tool_call_id"] = m["tool_call_id"]
    return message


class RequestReader:
    """Turns request bodies into prompts and sampling settings, or raises :class:`ApiError`."""

    def __init__(self, engine: Engine, mode: str, limits: Limits, defaults: SamplingParams):
        self.engine = engine
        self.mode = mode
        self.limits = limits
        self.max_tokens = min(limits.max_tokens or engine.block_size, engine.block_size)
        self.defaults = defaults
        self._trie: TokenTrie | None = None  # the vocabulary's byte trie, made at the first tools request

    async def json_body(self, request) -> dict:
        """The body as a JSON object, read at most ``max_body_bytes`` (else 413)."""
        limit = self.limits.max_body_bytes
        too_big = ApiError(413, f"request body larger than {limit} bytes", code="request_too_large")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isascii() and declared.isdigit() and (
                len(declared) > 18 or int(declared) > limit):
            raise too_big
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks))
        except UnicodeDecodeError as e:
            raise invalid(f"the body is not valid JSON: not UTF-8 text ({e.reason} at byte {e.start})") from None
        except json.JSONDecodeError as e:
            raise invalid(f"the body is not valid JSON ({e})") from None
        except RecursionError:
            raise invalid("the body is not valid JSON: arrays or objects nested too deeply") from None
        except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
            raise invalid("the body is not valid JSON: it holds an integer of thousands of digits") from None
        if not isinstance(body, dict):
            raise invalid(f"the body must be a JSON object, got {_kind(body)}")
        return body

    def params(self, body: dict, prompt_len: int) -> SamplingParams:
        d = self.defaults
        if body.get("n") not in (None, 1):
            raise invalid("only n=1 is supported", param="n")
        for name in ("logprobs", "echo"):
            if body.get(name):
                raise invalid(f"'{name}' is not supported", param=name)
        param = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        max_tokens = body.get(param)
        if max_tokens is not None:
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
                raise invalid(f"'{param}' must be a positive integer, got {shown(max_tokens)}", param=param)
            if max_tokens > self.max_tokens:
                raise invalid(f"'{param}' is {shown(max_tokens)}; this server allows at most {self.max_tokens}",
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
        problem = setting_problem("seed", seed)
        if problem:
            raise invalid(f"'seed' {problem}, got {shown(seed)}", param="seed")
        temperature = _number(body, "temperature", d.temperature, 0, 2)
        if 0 < temperature < MIN_TEMPERATURE:  # the logits divided by it would overflow
            raise invalid(f"'temperature' must be 0 (greedy) or in [{MIN_TEMPERATURE}, 2], got {shown(temperature)}",
                          param="temperature")
        params = SamplingParams(
            temperature=temperature,
            top_p=_number(body, "top_p", d.top_p, 0, 1, open_lo=True),
            top_k=_number(body, "top_k", d.top_k, 0, self.engine.vocab_size, integer=True),
            min_p=_number(body, "min_p", d.min_p, 0, 1),
            repetition_penalty=_number(body, "repetition_penalty", d.repetition_penalty, MIN_PENALTY, 10),
            max_new_tokens=max_tokens,
            stop_token_ids=self.engine.special_ids,
            stop_strings=tuple(valid_unicode(s) for s in stop),
            seed=seed if seed is not None else d.seed,
        )
        try:
            return params.validate()
        except CausetteError as e:  # the checks above are the stricter ones: a bug if it comes here
            raise invalid(str(e)) from None

    def chat_prompt(self, body: dict, offer: ToolOffer | None = None) -> list[int]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise invalid("'messages' must be a non-empty list", param="messages")
        if len(messages) > self.limits.max_messages:
            raise invalid(f"too many messages ({len(messages)}); at most {self.limits.max_messages}",
                          param="messages", code="too_many_messages")
        clean = [_message(m, n) for n, m in enumerate(messages)]
        if self.mode == CONTINUE:  # a base model: continue the last user message as plain text
            if clean[-1]["role"] != "user":
                raise invalid("the last message must come from the user", param="messages")
            return self.engine.encode_prompt(clean[-1]["content"])
        try:
            ids, _ = render_chat(self.engine.tokenizer, clean, add_generation_prompt=True,
                                 tools=offer.tools if offer else None)
        except CausetteError as e:
            raise invalid(str(e), param="messages") from None
        return ids

    def tool_offer(self, body: dict) -> ToolOffer | None:
        """The tools the request offers (None: none), or a 400 when this model cannot take them."""
        offer = _tool_offer(body)
        if offer is not None and self.mode == CONTINUE:
            raise invalid("tools need a chat model: this server continues text (a base checkpoint)", param="tools")
        if offer is not None and not supports_tools(self.engine.tokenizer):
            raise invalid("this model's tokenizer has no tool tokens (trained before tools): send no 'tools'",
                          param="tools")
        return offer

    def processor(self, offer: ToolOffer | None) -> ToolCallProcessor | None:
        """The logits processor that keeps the calls of one reply valid (constrain.py)."""
        if offer is None:
            return None
        tools = [t for t in offer.tools if offer.only in (None, t["function"]["name"])]
        if self._trie is None:
            self._trie = TokenTrie(self.engine.tokenizer)
        # constrain=None: a schema the automaton does not cover leaves the calls free
        return ToolCallProcessor(self.engine.tokenizer, tools, self._trie, choice=offer.choice,
                                 parallel=offer.parallel, constrain=None)

    def completion_prompt(self, body: dict) -> list[int]:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise invalid(f"'prompt' must be a string, got {_kind(prompt)}", param="prompt")
        return self.engine.encode_prompt(valid_unicode(prompt))
