"""The chat template: how a conversation becomes the token ids a chat model reads.

One function, :func:`render_chat`, used everywhere a conversation meets the model: SFT training
(with its loss mask), the terminal chat, the HTTP server, and (as the equivalent Jinja string
``CHAT_TEMPLATE_JINJA`` of causette/data/chat_jinja.py) the ``chat_template`` of the Hugging Face
and GGUF exports.
Keeping a single definition is what guarantees that the model is asked questions in exactly
the format it was trained on.

**The format is ChatML**, exactly as llama.cpp, Ollama and Hugging Face know it (Qwen, SmolLM
and many others use it), so that a Causette model chats the same way in those tools: llama.cpp
recognises it even without a Jinja engine (its built-in ``chatml`` template). A conversation::

    [{"role": "system", "content": "Tu es concis."},
     {"role": "user", "content": "Bonjour !"},
     {"role": "assistant", "content": "Bonjour."}]

becomes the text::

    <|bos|><|im_start|>system
    Tu es concis.<|im_end|>
    <|im_start|>user
    Bonjour !<|im_end|>
    <|im_start|>assistant
    Bonjour.<|im_end|>
                                  [+ "<|im_start|>assistant\\n" with add_generation_prompt]

``<|bos|>``, ``<|im_start|>`` and ``<|im_end|>`` are special tokens (one id each); the role
names and line breaks are ordinary text. The ``<|bos|>`` in front is the tokenizer's start of
sequence, the token every pretraining document starts with: llama.cpp and transformers add it
the same way (``add_bos_token``), so ChatML's own text starts at ``<|im_start|>``.

Rules:

* the ids are those of the text above cut at the special tokens, each piece of ordinary text
  (``"user\\nBonjour !"``, ``"\\n"``) encoded on its own: exactly what llama.cpp, tiktoken and
  Hugging Face ``tokenizers`` do with the rendered text, so the three give the same ids;
* the contents are encoded with special tokens **disallowed**: a user who types
  ``<|im_start|>`` gets those 12 characters as ordinary text, never a role token;
* an optional system message comes first; then user and assistant turns alternate, starting
  with the user;
* ``mask[i] = 1`` exactly for the tokens of assistant contents and the ``<|im_end|>`` that
  closes them: what SFT trains the model to produce. The ``<|im_start|>assistant\\n`` header is
  given, not learned (the model must learn to *stop*, with ``<|im_end|>``, not to start).

**Tools** (the Hermes format of Qwen2.5, which llama.cpp, Ollama and ``transformers`` know).
A conversation may hold assistant messages that call tools and ``"tool"`` messages that give
the results (the OpenAI chat format; ``arguments`` is an object in our data)::

    [{"role": "user", "content": "Combien font 17 fois 23 ?"},
     {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
         "function": {"name": "calculer", "arguments": {"expression": "17*23"}}}]},
     {"role": "tool", "tool_call_id": "call_1", "name": "calculer", "content": "{\\"resultat\\": 391}"},
     {"role": "assistant", "content": "17 × 23 = 391."}]

becomes (after ``<|bos|>``, with ``tools=`` the six built-in tools)::

    <|im_start|>system
    Outils : calculer(expression), date_heure(), note_ajouter(texte), notes_lister(), convertir(valeur, de, vers), chercher(requete).<|im_end|>
    <|im_start|>user
    Combien font 17 fois 23 ?<|im_end|>
    <|im_start|>assistant
    <tool_call>
    {"name": "calculer", "arguments": {"expression": "17*23"}}
    </tool_call><|im_end|>
    <|im_start|>user
    <tool_response>
    {"resultat": 391}
    </tool_response><|im_end|>
    <|im_start|>assistant
    17 × 23 = 391.<|im_end|>

* ``<tool_call>``, ``</tool_call>``, ``<tool_response>`` and ``</tool_response>`` are special
  tokens (one id each, causette/tokenizer/special.py), written only by the template, never read
  from a message's text;
* an assistant message with calls: ``assistant\\n``, its content, then each call as
  ``<tool_call>\\n{json}\\n</tool_call>``, a line break between the content and the first call and
  between calls; none before the first call when the content is empty (Qwen2.5's layout: the
  header's line break then leads straight to ``<tool_call>``, which is what the model writes
  after the generation prompt ``<|im_start|>assistant\\n``);
* the call's JSON is ``json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)``
  (separators ``", "`` and ``": "``, keys in the given order, non-ASCII kept). The Jinja twin
  writes ``{"name": "`` + name + ``", "arguments": `` + ``arguments | tojson`` + ``}``: the
  ``tojson`` of ``transformers`` is that same ``json.dumps``, llama.cpp's writes the same
  separators, order and escapes, so the bytes agree (names are checked to need no escaping).
  Two limits: llama.cpp prints a float with 6 significant digits and without ``.0`` (``5.0`` →
  ``5``), so arguments are best integers or short decimals; Ollama sorts the keys of arguments
  and writes its own JSON (causette/export/ollama.py);
* the ``tool`` messages that follow one another make **one** user turn, one
  ``\\n<tool_response>\\n{content}\\n</tool_response>`` block each after ``<|im_start|>user``
  (as Qwen2.5 does); their ``content`` is the result's JSON text, encoded like any message
  (specials disallowed); ``name`` and ``tool_call_id`` are not rendered;
* ``tools=`` (OpenAI tool objects) ends the system turn with a tools block, after a blank line
  when the system message has text, alone otherwise (a system turn is created if there is
  none). When every tool is a built-in Causette tool (:data:`BUILTIN_TOOLS`, any subset, in the
  given order) the block is the **compact** line above, names and arguments only: the demo
  model's context is 256 tokens, JSON punctuation is costly (a ``convertir`` call alone takes
  about 50 tokens of the demo tokenizer), and the model learns how to call its tools from its
  training conversations. The line takes 58 tokens of the demo run's tokenizer (4 096 ids); a hint on how to
  call (``Pour appeler un outil : <tool_call>{"name": …, "arguments": {…}}</tool_call>``) would
  take 30 more, 12 % of the context, for nothing the training does not teach. Otherwise (a
  client's own tools, which the model never saw) it is the **full** block: ``# Outils``,
  ``<tools>``, one ``json.dumps(tool)`` line per tool, ``</tools>``, and how to call one (the
  tags of that last line are tokens; the tools' JSON is encoded like any message);
* the mask is 1 for the assistant's content **and** its calls (the tool tags, the JSON, the line
  breaks between them) and its ``<|im_end|>``; 0 for tool results (the whole user turn),
  the system turn (tools block included) and the user's turns;
* order: an assistant message with calls is followed by exactly one ``tool`` message per call,
  then by the assistant; a reply can be asked for after a user message or after tool results.

A tokenizer trained before the tool tags (their slots still reserved) renders conversations
without tools as before; tools or tool messages give a clear error (:func:`supports_tools`).

Tokenizers made before Causette adopted ChatML have ``<|system|>``, ``<|user|>``,
``<|assistant|>`` and ``<|end|>`` instead: :func:`chat_format` recognises them and the same
functions render that older format (``<|bos|><|user|>Bonjour !<|end|><|assistant|>``), so
models trained with it keep working (without tools).
"""

from __future__ import annotations

import json
from typing import NamedTuple, Sequence

from causette.errors import CausetteError
from causette.tokenizer.special import (
    TOOL_CALL,
    TOOL_CALL_END,
    TOOL_RESPONSE,
    TOOL_RESPONSE_END,
    supports_tools,
)
from causette.tools import TOOLS as REGISTRY

ROLES = ("system", "user", "assistant")  # the roles of both formats (and of the legacy role tokens)
CHAT_ROLES = (*ROLES, "tool")  # ChatML also takes tool results
BOS = "<|bos|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
CHATML, LEGACY = "chatml", "legacy"
LEGACY_END = "<|end|>"

# Causette's built-in tools and their arguments, in the order of the compact tools line, read
# from the tools themselves (causette/tools). A tools list made only of these names gets that
# line (module docstring).
BUILTIN_TOOLS: dict[str, tuple[str, ...]] = {
    tool.name: tuple(tool.parameters.get("properties", {})) for tool in REGISTRY
}
TOOLS_LINE_START = "Outils : "
TOOLS_LINE_END = "."
TOOLS_BLOCK_START = "# Outils\n\n<tools>"
TOOLS_BLOCK_END = (
    "\n</tools>\n\nPour appeler un outil, écris : "
    '<tool_call>\n{"name": <nom>, "arguments": <arguments JSON>}\n</tool_call>'
)
CALL_SHAPE = '{"type": "function", "function": {"name": ..., "arguments": {...}}}'
TOOL_SHAPE = '{"type": "function", "function": {"name": ..., "parameters": {...}}}'
NO_TOOL_TOKENS = (
    "this tokenizer has no tool tokens (trained before tools): retrain the tokenizer or chat without tools"
)


def legacy_role_token(role: str) -> str:
    return f"<|{role}|>"


def builtin_signature(name: str) -> str:
    """``convertir(valeur, de, vers)``: how the compact tools line shows a built-in tool."""
    return f"{name}({', '.join(BUILTIN_TOOLS[name])})"


def chat_format(tokenizer) -> str:
    """``"chatml"`` or ``"legacy"``, from the special tokens the tokenizer has."""
    specials = tokenizer.special_tokens
    if IM_START in specials and IM_END in specials:
        return CHATML
    if all(legacy_role_token(r) in specials for r in ROLES) and LEGACY_END in specials:
        return LEGACY
    raise CausetteError(
        "this tokenizer has no chat tokens (<|im_start|> and <|im_end|>): it cannot render a conversation"
    )


def end_token(tokenizer) -> str:
    """The token that ends a turn: ``<|im_end|>`` (or ``<|end|>`` in the older format)."""
    return IM_END if chat_format(tokenizer) == CHATML else LEGACY_END


# ------------------------------------------------------------------------------ checks


def check_messages(messages: Sequence[dict], add_generation_prompt: bool = False) -> None:
    """Raise a :class:`CausetteError` saying which message is wrong and why."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise CausetteError("a conversation needs at least one message")
    prev, calls, results = "", 0, 0  # prev: the last role, "calls" for an assistant that called tools
    for n, message in enumerate(messages, start=1):
        role = _check_message(n, message)
        if role == "system":
            if n != 1:
                raise CausetteError(f"message {n}: a system message may only come first")
            continue
        if prev == "tool" and role != "tool" and results != calls:
            raise CausetteError(f"message {n}: {calls} tool call(s) but {results} tool result(s) before it")
        allowed = {"user": ("", "assistant"), "assistant": ("user", "tool"), "tool": ("calls", "tool")}[role]
        if prev not in allowed:
            _order_error(n, role, prev)
        if role == "tool":
            results += 1
            if results > calls:
                raise CausetteError(
                    f"message {n}: more tool results than the {calls} tool call(s) before them"
                )
        prev = role
        if role == "assistant" and message.get("tool_calls"):
            prev, calls, results = "calls", len(message["tool_calls"]), 0
    if prev == "tool" and results != calls:
        raise CausetteError(f"the conversation ends with {results} tool result(s) for {calls} tool call(s)")
    if add_generation_prompt and prev not in ("user", "tool"):
        raise CausetteError(
            "a reply can only be asked for after a user message or tool results "
            f"(the last message is {messages[-1]['role']!r})"
        )


def _order_error(n: int, role: str, prev: str) -> None:
    if role == "tool":
        raise CausetteError(f"message {n}: a 'tool' message must follow an assistant message with tool_calls")
    if prev == "calls":
        raise CausetteError(
            f"message {n}: role {role!r} where a 'tool' result was expected (the assistant called tools)"
        )
    expected = "assistant" if prev in ("user", "tool") else "user"
    raise CausetteError(
        f"message {n}: role {role!r} where {expected!r} was expected "
        "(after an optional system message, turns alternate user, assistant, user, ...)"
    )


def _check_message(n: int, message) -> str:
    """The role of message ``n``, once its fields are known to be right."""
    if not isinstance(message, dict) or "role" not in message:
        raise CausetteError(f"message {n}: expected an object with 'role' and 'content'")
    role, calls = message["role"], message.get("tool_calls")
    if role not in CHAT_ROLES:
        raise CausetteError(f"message {n}: unknown role {role!r} (system, user, assistant or tool)")
    if calls is not None and role != "assistant":
        raise CausetteError(f"message {n}: only an assistant message may have 'tool_calls'")
    if "content" not in message and not calls:
        raise CausetteError(f"message {n}: expected an object with 'role' and 'content'")
    content = message.get("content")
    if content is None and calls:  # OpenAI's form of a call without text: "content": null, or none
        content = ""
    if not isinstance(content, str):
        raise CausetteError(f"message {n}: content must be a string, got {type(content).__name__}")
    if calls is not None:
        if not isinstance(calls, list):
            raise CausetteError(f"message {n}: 'tool_calls' must be a list, got {type(calls).__name__}")
        for k, call in enumerate(calls, start=1):
            _check_call(f"message {n}: tool call {k}", call)
    return role


def _check_call(where: str, call) -> None:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        raise CausetteError(f"{where}: expected {CALL_SHAPE}")
    _check_name(f"{where}: name", function.get("name"))
    if not isinstance(function.get("arguments"), dict):
        got = type(function.get("arguments")).__name__ if "arguments" in function else "nothing"
        raise CausetteError(f"{where}: arguments must be a JSON object, got {got}")


def _check_name(where: str, name) -> None:
    """A tool name is written between quotes as it is: it must need no JSON escaping."""
    if not isinstance(name, str) or not name or any(c in '"\\' or ord(c) < 0x20 for c in name):
        raise CausetteError(
            f"{where} must be a non-empty string without quotes, backslashes or control characters"
        )


def check_tools(tools) -> list[dict]:
    """The ``tools`` list (OpenAI tool objects), checked; ``None`` or ``[]`` gives ``[]``."""
    if tools is None:
        return []
    if not isinstance(tools, (list, tuple)):
        raise CausetteError(f"tools must be a list of tool objects, got {type(tools).__name__}")
    for k, tool in enumerate(tools, start=1):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict):
            raise CausetteError(f"tools[{k}]: expected {TOOL_SHAPE}")
        _check_name(f"tools[{k}]: function.name", function.get("name"))
    return list(tools)


def uses_tools(messages: Sequence[dict], tools) -> bool:
    """Whether the conversation needs the tool tokens (tools offered, calls or results)."""
    return bool(tools) or any(m.get("tool_calls") or m.get("role") == "tool" for m in messages)


# ------------------------------------------------------------------------------ rendering


class Part(NamedTuple):
    """A piece of the rendered conversation: a special token or ordinary text, trained or not."""

    text: str
    special: bool = False
    trained: bool = False


def call_json(call: dict) -> str:
    """``{"name": "calculer", "arguments": {"expression": "17*23"}}``: a call as the model writes it."""
    function = call["function"]
    return json.dumps({"name": function["name"], "arguments": function["arguments"]}, ensure_ascii=False)


def tools_block(tools: Sequence[dict]) -> list[Part]:
    """The end of the system turn that lists the tools (compact line or full block). The tags in
    the block's own text are tokens; the tools' JSON is text like any content (a tag typed in a
    description stays bytes)."""
    names = [t["function"]["name"] for t in tools]
    if all(name in BUILTIN_TOOLS for name in names):
        line = TOOLS_LINE_START + ", ".join(builtin_signature(name) for name in names) + TOOLS_LINE_END
        return _with_specials(line)
    lines = "".join("\n" + json.dumps(t, ensure_ascii=False) for t in tools)
    return [Part(TOOLS_BLOCK_START + lines), *_with_specials(TOOLS_BLOCK_END)]


def _with_specials(text: str, specials: Sequence[str] = (TOOL_CALL, TOOL_CALL_END)) -> list[Part]:
    """Template text cut at the given special tokens (there, the specials are meant)."""
    parts: list[Part] = []
    while text:
        found = [(text.find(s), s) for s in specials if s in text]
        if not found:
            parts.append(Part(text))
            break
        at, special = min(found)
        if at:
            parts.append(Part(text[:at]))
        parts.append(Part(special, special=True))
        text = text[at + len(special):]
    return parts


def _system_parts(messages: Sequence[dict], tools: Sequence[dict]) -> list[Part]:
    has_system = messages[0]["role"] == "system"
    if not has_system and not tools:
        return []
    content = messages[0]["content"] if has_system else ""
    parts = [Part(IM_START, True), Part("system\n" + content)]
    if tools:
        parts += ([Part("\n\n")] if content else []) + tools_block(tools)
    return parts + [Part(IM_END, True), Part("\n")]


def _assistant_parts(message: dict) -> list[Part]:
    content = message.get("content") or ""
    parts = [Part(IM_START, True), Part("assistant\n"), Part(content, trained=True)]
    for k, call in enumerate(message.get("tool_calls") or []):
        if k or content:
            parts.append(Part("\n", trained=True))
        parts += [
            Part(TOOL_CALL, True, True),
            Part("\n" + call_json(call) + "\n", trained=True),
            Part(TOOL_CALL_END, True, True),
        ]
    return parts + [Part(IM_END, True, True), Part("\n")]


def chatml_parts(messages: Sequence[dict], add_generation_prompt: bool = False, tools=None) -> list[Part]:
    """The conversation as :class:`Part` s, ``<|bos|>`` left out (see the module docstring)."""
    tools = check_tools(tools)
    parts = _system_parts(messages, tools)
    for k, message in enumerate(messages):
        role = message["role"]
        if role == "system":
            continue
        if role == "assistant":
            parts += _assistant_parts(message)
        elif role == "tool":
            if messages[k - 1]["role"] != "tool":
                parts += [Part(IM_START, True), Part("user")]
            parts += [
                Part("\n"), Part(TOOL_RESPONSE, True), Part("\n" + message["content"] + "\n"),
                Part(TOOL_RESPONSE_END, True),
            ]
            if k + 1 == len(messages) or messages[k + 1]["role"] != "tool":
                parts += [Part(IM_END, True), Part("\n")]
        else:
            parts += [Part(IM_START, True), Part(f"{role}\n{message['content']}"), Part(IM_END, True), Part("\n")]
    if add_generation_prompt:
        parts += [Part(IM_START, True), Part("assistant\n")]
    return parts


def render_chat(
    tokenizer, messages: Sequence[dict], add_generation_prompt: bool = False, tools=None
) -> tuple[list[int], list[int]]:
    """Token ids of a conversation, and the SFT loss mask (1 = a token the assistant wrote).

    ``add_generation_prompt``: end with ``<|im_start|>assistant\\n``, to ask for the next reply.
    ``tools``: the OpenAI tool objects offered to the model (the system turn lists them).
    """
    check_messages(messages, add_generation_prompt)
    tools = check_tools(tools)
    needs_tools = uses_tools(messages, tools)
    if chat_format(tokenizer) == LEGACY:
        if needs_tools:
            raise CausetteError(NO_TOOL_TOKENS)
        return _render_legacy(tokenizer, messages, add_generation_prompt)
    if needs_tools and not supports_tools(tokenizer):
        raise CausetteError(NO_TOOL_TOKENS)
    ids, mask = [tokenizer.bos_id], [0]
    run: list[Part] = []  # ordinary text since the last special: encoded in one piece, as runtimes do
    for part in [*chatml_parts(messages, add_generation_prompt, tools), Part("", special=True)]:
        if not part.special:
            run.append(part)
            continue
        _encode_run(tokenizer, run, ids, mask)
        run = []
        if part.text:
            ids.append(tokenizer.special_id(part.text))
            mask.append(int(part.trained))
    return ids, mask


def _encode_run(tokenizer, run: list[Part], ids: list[int], mask: list[int]) -> None:
    """Encode a run of ordinary text (specials disallowed). A token is trained when it holds a
    byte of a trained part: the header ``"assistant\\n"`` and the content are encoded together,
    as every runtime does, and a token may straddle both (a content starting with a line break
    joins the header's): it holds content, so it is trained."""
    text = "".join(p.text for p in run)
    if not text:
        return
    trained = [t for p in run for t in [p.trained] * len(p.text.encode("utf-8"))]
    position = 0
    for token in tokenizer.encode(text, allowed_special="none"):
        size = len(tokenizer.token_bytes(token))
        ids.append(token)
        mask.append(int(any(trained[position : position + size])))
        position += size


def _render_legacy(tokenizer, messages: Sequence[dict], add_generation_prompt: bool) -> tuple[list[int], list[int]]:
    end = tokenizer.special_id(LEGACY_END)
    ids, mask = [tokenizer.bos_id], [0]
    for message in messages:
        content = tokenizer.encode(message["content"], allowed_special="none")
        trained = int(message["role"] == "assistant")
        ids += [tokenizer.special_id(legacy_role_token(message["role"])), *content, end]
        mask += [0] + [trained] * (len(content) + 1)
    if add_generation_prompt:
        ids.append(tokenizer.special_id(legacy_role_token("assistant")))
        mask.append(0)
    return ids, mask


def render_text(
    messages: Sequence[dict], add_generation_prompt: bool = False, fmt: str = CHATML, tools=None
) -> str:
    """The same conversation as text (what ``tokenizer.decode(render_chat(...)[0])`` gives)."""
    check_messages(messages, add_generation_prompt)
    if fmt == LEGACY:
        if uses_tools(messages, check_tools(tools)):
            raise CausetteError(NO_TOOL_TOKENS)
        parts = [BOS] + [legacy_role_token(m["role"]) + m["content"] + LEGACY_END for m in messages]
        if add_generation_prompt:
            parts.append(legacy_role_token("assistant"))
        return "".join(parts)
    return BOS + "".join(p.text for p in chatml_parts(messages, add_generation_prompt, tools))
