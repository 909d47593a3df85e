"""Tool calls in a reply: find them, run them, show them.

A model trained with tools writes its calls in the Hermes / Qwen2.5 format (the chat template,
causette/data/chat_template.py, renders the same)::

    Je calcule.<tool_call>
    {"name": "calculer", "arguments": {"expression": "17*23"}}
    </tool_call>

:func:`parse_tool_calls` splits such a reply into its text and its calls; a call that does not
parse is kept as a *bad* call (its error is what the model reads back), never dropped silently.
:func:`run_calls` runs the calls with the built-in tools (causette/tools, safe by construction)
and gives the ``role: "tool"`` messages to append to the conversation; a call that writes (a
note) first asks ``confirm`` (the terminal asks the user; ``--yes`` says yes). :func:`describe`
is the line the user sees: « → calculer(17*23) = 391 ».
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Iterator

from causette.tools import BY_NAME, run_tool

CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)
OPEN = "<tool_call>"
WRITES = frozenset({"note_ajouter"})  # tools that change the user's files: asked first


@dataclass
class ToolCall:
    """One call the model wrote: ``name`` and ``arguments`` (a dict), or ``error`` when its text
    is not a call (``raw`` keeps that text)."""

    name: str
    arguments: dict
    id: str
    raw: str = ""
    error: str | None = None

    def as_message(self) -> dict:
        """The OpenAI form of the call, for the assistant message of the conversation."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


def parse_tool_calls(text: str, first_id: int = 1) -> tuple[str, list[ToolCall]]:
    """``text`` without its calls (stripped), and the calls in order. An unclosed last call
    (the reply ended inside it) counts as a call too."""
    calls: list[ToolCall] = []
    body = text
    tail = ""
    last = text.rfind(OPEN)
    if last >= 0 and "</tool_call>" not in text[last:]:
        body, tail = text[:last], text[last + len(OPEN):]
    for i, chunk in enumerate([m.group(1) for m in CALL.finditer(body)] + ([tail] if tail else [])):
        calls.append(read_call(chunk.strip(), f"call_{first_id + i}"))
    content = CALL.sub("", body).strip()
    return content, calls


def read_call(raw: str, call_id: str) -> ToolCall:
    """One call from the text between its tags (an ``error`` when it is not a call)."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        return ToolCall("", {}, call_id, raw, f"l'appel n'est pas du JSON valide ({e.msg}, caractère {e.pos})")
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return ToolCall("", {}, call_id, raw, "l'appel doit être un objet {\"name\": …, \"arguments\": {…}}")
    args = obj.get("arguments", {})
    if isinstance(args, str):  # the OpenAI string form
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return ToolCall(obj["name"], {}, call_id, raw, "les arguments ne sont pas un objet JSON")
    if not isinstance(args, dict):
        return ToolCall(obj["name"], {}, call_id, raw, "les arguments doivent être un objet JSON")
    return ToolCall(obj["name"], args, call_id, raw)


def run_calls(calls: list[ToolCall], confirm: Callable[[ToolCall], bool] = lambda call: True,
              context=None) -> list[dict]:
    """Run each call; the ``role: "tool"`` messages of their results, in order."""
    out = []
    for call in calls:
        if call.error is not None:
            result = json.dumps({"erreur": call.error}, ensure_ascii=False)
        elif call.name in WRITES and call.name in BY_NAME and not confirm(call):
            result = json.dumps({"erreur": "l'utilisateur a refusé cet appel"}, ensure_ascii=False)
        else:
            result = run_tool(call.name, call.arguments, context)
        out.append({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result})
    return out


def describe(call: ToolCall, result: str) -> str:
    """The line shown to the user: « → calculer(17*23) = 391 »."""
    if call.error is not None:
        return f"→ appel illisible : {call.error}"
    args = ", ".join(_short(v) for v in call.arguments.values())
    try:
        value = json.loads(result)
    except json.JSONDecodeError:
        value = result
    return f"→ {call.name}({args}) = {_short_result(value)}"


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"


def _short_result(value) -> str:
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "erreur":
            return f"erreur : {inner}"
        if not isinstance(inner, (dict, list)):
            return str(inner)
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:119] + "…"


class CallSplitter:
    """A reply's text deltas split, as they come, into text and whole calls.

    ``feed(delta)`` and, at the end, ``close()`` give ``("text", str)``, ``("call", raw)`` (the
    text between ``<tool_call>`` and ``</tool_call>``) and, from ``close`` only, ``("cut", raw)``
    (a call the reply ended inside). Text that may start a tag is held back, and so are blanks
    until what follows them is known: those just before a call (the template's line break) or
    at the very end are dropped, as :func:`parse_tool_calls` strips them."""

    def __init__(self):
        self.held = ""  # text not yet given out (it may start a tag)
        self.blank = ""  # blanks after the last text given out
        self.raw = ""  # the call under way
        self.inside = False

    def feed(self, delta: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        self.held += delta
        while self.held:
            tag = "</tool_call>" if self.inside else OPEN
            at = self.held.find(tag)
            if at >= 0:
                piece, self.held = self.held[:at], self.held[at + len(tag):]
                if self.inside:
                    out.append(("call", (self.raw + piece).strip()))
                    self.raw = ""
                else:
                    self._text(piece, out)
                    self.blank = ""
                self.inside = not self.inside
                continue
            keep = next((k for k in range(min(len(tag) - 1, len(self.held)), 0, -1)
                         if self.held.endswith(tag[:k])), 0)
            ready, self.held = self.held[: len(self.held) - keep], self.held[len(self.held) - keep:]
            if self.inside:
                self.raw += ready
            else:
                self._text(ready, out)
            break
        return out

    def close(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.inside:
            out.append(("cut", (self.raw + self.held).strip()))
        else:
            self._text(self.held, out)
        self.held = self.raw = self.blank = ""
        return out

    def _text(self, piece: str, out: list) -> None:
        text = self.blank + piece
        body = text.rstrip()
        if body:
            out.append(("text", body))
        self.blank = text[len(body):]


def hide_calls(deltas: Iterator[str]) -> Iterator[str]:
    """The text deltas of a reply without its ``<tool_call>…</tool_call>`` parts (the user sees
    the calls as one line each once they run)."""
    splitter = CallSplitter()
    for delta in deltas:
        yield from (text for kind, text in splitter.feed(delta) if kind == "text")
    yield from (text for kind, text in splitter.close() if kind == "text")


__all__ = ["CallSplitter", "ToolCall", "describe", "hide_calls", "parse_tool_calls", "read_call", "run_calls"]
