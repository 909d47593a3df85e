"""Constrained decoding of tool calls: after ``<tool_call>``, only tokens that keep the text a
valid call can be drawn.

A small model writes ``<tool_call>{"name": "calculer", "arguments": {"expression": "17*23"}}
</tool_call>`` most of the time, not always: a misspelt tool name, a missing quote or an
argument the tool does not take, and the call cannot run. Constrained decoding removes the
problem at the source. While the model writes a call, every token whose bytes would make the
text something no valid call starts with gets a logit of ``-inf``:

* the call is a JSON object ``{"name": N, "arguments": A}``, keys in that order (the order the
  chat template renders), blanks allowed between the parts;
* ``N`` is one of the offered tools' names;
* ``A`` is an object that follows that tool's JSON schema: only its properties, each once, of
  the right type (string, with its ``enum`` if any; number; integer; boolean; nested object),
  closed only once every required property is there;
* after the object, only a blank line and the ``</tool_call>`` token. Then the model is free
  again (another call, or ``<|im_end|>``).

**How.** :class:`CallGrammar` is an automaton over *bytes* (our tokens are byte sequences, and
a token may end in the middle of a character): ``step(state, byte)`` gives the next state or
None. States are tuples, so they can be compared and cached. To find the allowed tokens, the
vocabulary is kept as a byte trie; a depth-first walk from the current state follows only the
bytes the automaton accepts, so its cost is the number of *viable* token prefixes, not the
size of the vocabulary, and the set found for a state is cached (inside a free string, every
step has the same state: one walk serves them all).

:class:`ToolCallProcessor` is the logits processor (causette/inference/scheduler.py's hook): it
follows the tokens a request generates, switches on at ``<tool_call>`` and off at
``</tool_call>``.
"""

from __future__ import annotations

import copy

import torch

from causette.errors import CausetteError

WS = frozenset(b" \n\t\r")
MAX_BLANKS = 2  # blanks in a row between two parts (no endless whitespace)
MAX_STRING = 500  # bytes in one string
MAX_NUMBER = 24  # characters in one number
DIGITS = frozenset(b"0123456789")
ESCAPES = frozenset(b'"\\/bfnrt')
HEX = frozenset(b"0123456789abcdefABCDEF")
# UTF-8 lead bytes whose second byte has a narrower range (RFC 3629): lead -> pending state,
# and that state's (lowest, highest) second byte and the pending state after it.
UTF8_LEAD = {0xE0: 21, 0xED: 22, 0xF0: 23, 0xF4: 24}
UTF8_SECOND = {21: (0xA0, 0xBF, 11), 22: (0x80, 0x9F, 11), 23: (0x90, 0xBF, 12), 24: (0x80, 0x8F, 12)}

# A state is a tuple of frames, innermost last:
#   ("obj", schema, seen, phase, key, chosen)  an object; phase: start ({ to come), open (a key or }),
#                                             key (reading it), colon, value (its first byte),
#                                             next (, or }); chosen: the tool name (the call's frame)
#   ("str", options, got, pending, cap)        inside a string; options: the enum's bytes or None;
#                                             got: its bytes (enum) or their number; pending below;
#                                             cap: most bytes (maxLength, MAX_STRING)
#   ("num", text, integer)                     inside a number
#   ("lit", rest)                              the rest of true / false
#   ("blank", n, frame)                        n blanks read before ``frame`` goes on
#   ("end", n)                                 the call is whole: blanks, then </tool_call>
# ``schema`` is an index into CallGrammar.objects (schemas are dicts: not hashable).


class CallGrammar:
    """The texts of a valid call to one of ``tools`` (OpenAI tool objects or plain
    ``{"name", "parameters"}``), as an automaton over bytes (see the module docstring)."""

    def __init__(self, tools: list[dict], max_string: int = MAX_STRING):
        self.max_string = max_string  # bytes in one string argument
        self.schemas: dict[bytes, int] = {}
        self.objects: list[dict] = [{"type": "object", "call": True}]  # 0: the call itself
        for tool in tools:
            fn = tool.get("function", tool)
            schema = copy.deepcopy(fn.get("parameters") or {"type": "object", "properties": {}})
            _check_schema(schema, fn.get("name", "?"))
            self.schemas[fn["name"].encode("utf-8")] = self._index(schema)
        if not self.schemas:
            raise CausetteError("constrained tool calls need at least one tool")

    def _index(self, schema: dict) -> int:
        """The index of an object schema (and of the objects nested in it)."""
        self.objects.append(schema)
        i = len(self.objects) - 1
        for sub in schema.get("properties", {}).values():
            if sub.get("type") == "object":
                sub["_index"] = self._index(sub)
        return i

    # ------------------------------------------------------------------ states

    def start(self) -> tuple:
        """Before the call's first byte (the line break after ``<tool_call>`` is a blank)."""
        return (("blank", 0, ("obj", 0, frozenset(), "start", b"", None)),)

    @staticmethod
    def complete(state: tuple) -> bool:
        """Whether the call is whole (``</tool_call>`` may come)."""
        return bool(state) and state[-1][0] == "end"

    def step(self, state: tuple, byte: int) -> tuple | None:
        """The state after ``byte``, or None when no valid call continues that way."""
        frame = state[-1]
        kind, rest = frame[0], state[:-1]
        if kind == "blank":
            if byte in WS:
                return None if frame[1] >= MAX_BLANKS else rest + (("blank", frame[1] + 1, frame[2]),)
            return self.step(rest + (frame[2],), byte)
        if kind == "end":
            return rest + (("end", frame[1] + 1),) if byte in WS and frame[1] < MAX_BLANKS else None
        if kind == "str":
            return self._string(rest, frame, byte)
        if kind == "num":
            return self._number(rest, frame, byte)
        if kind == "lit":
            if not frame[1] or frame[1][0] != byte:
                return None
            return rest + (("lit", frame[1][1:]),) if len(frame[1]) > 1 else self._value_done(rest, None)
        return self._object(rest, frame, byte)

    # ------------------------------------------------------------------ objects

    def _keys(self, frame) -> tuple[list[bytes], set[bytes]]:
        """The keys this object may take next, and those it must have before closing."""
        schema, seen = self.objects[frame[1]], frame[2]
        if schema.get("call"):  # {"name": ..., "arguments": ...}, in that order
            order = [b"name", b"arguments"]
            return [k for k in order if k not in seen][:1], set(order) - seen
        props = [k.encode("utf-8") for k in schema.get("properties", {})]
        required = {k.encode("utf-8") for k in schema.get("required", [])}
        return [k for k in props if k not in seen], required - seen

    def _object(self, rest, frame, byte):
        _, idx, seen, phase, key, chosen = frame
        if phase == "start":
            return rest + (("blank", 0, ("obj", idx, seen, "open", b"", chosen)),) if byte == ord("{") else None
        if phase in ("open", "next"):
            keys, missing = self._keys(frame)
            if byte == ord("}") and not missing and (phase == "next" or not seen):
                return self._value_done(rest, None) if rest else (("end", 0),)
            if byte == ord(",") and phase == "next" and keys:
                return rest + (("blank", 0, ("obj", idx, seen, "open", b"", chosen)),)
            if byte == ord('"') and phase == "open" and keys:
                return rest + (("obj", idx, seen, "key", b"", chosen),)
            return None
        if phase == "key":
            keys, _ = self._keys(frame)
            if byte == ord('"'):
                return rest + (("blank", 0, ("obj", idx, seen, "colon", key, chosen)),) if key in keys else None
            grown = key + bytes([byte])
            return rest + (("obj", idx, seen, "key", grown, chosen),) if any(k.startswith(grown) for k in keys) else None
        if phase == "colon":
            return rest + (("blank", 0, ("obj", idx, seen, "value", key, chosen)),) if byte == ord(":") else None
        # phase "value": the value's first byte opens it; the object waits, at "next"
        parent = rest + (("obj", idx, seen | {key}, "next", key, chosen),)
        return self._open_value(parent, self._value_schema(idx, key, chosen), byte)

    def _value_schema(self, idx: int, key: bytes, chosen: bytes | None) -> dict:
        if self.objects[idx].get("call"):
            if key == b"name":
                return {"type": "string", "enum": [n.decode("utf-8") for n in self.schemas]}
            return {"type": "object", "_index": self.schemas[chosen]}
        return self.objects[idx]["properties"][key.decode("utf-8")]

    # ------------------------------------------------------------------ values

    def _open_value(self, parent: tuple, schema: dict, byte: int):
        kind = schema.get("type")
        if kind == "object":
            frame = ("obj", schema["_index"], frozenset(), "open", b"", None)
            return parent + (("blank", 0, frame),) if byte == ord("{") else None
        if kind == "string":
            options = tuple(v.encode("utf-8") for v in schema["enum"]) if "enum" in schema else None
            cap = min(self.max_string, _cap(schema.get("maxLength")))
            return parent + (("str", options, b"" if options else 0, 0, cap),) if byte == ord('"') else None
        if kind in ("number", "integer"):
            return parent + (("num", bytes([byte]), kind == "integer"),) if byte == ord("-") or byte in DIGITS else None
        if kind == "boolean" and byte in (ord("t"), ord("f")):
            return parent + (("lit", b"rue" if byte == ord("t") else b"alse"),)
        return None

    def _value_done(self, rest: tuple, text: bytes | None) -> tuple:
        """A value is complete: its object goes on (a comma or the closing brace, after blanks).
        The call's ``name`` is remembered, to know the schema of its ``arguments``."""
        _, idx, seen, phase, key, chosen = rest[-1]
        if self.objects[idx].get("call") and key == b"name":
            chosen = text
        return rest[:-1] + (("blank", 0, ("obj", idx, seen, phase, key, chosen)),)

    def _string(self, rest, frame, byte):
        _, options, got, pending, cap = frame
        if options is not None:  # an enum: the bytes so far start one of the choices
            if byte == ord('"'):
                return self._value_done(rest, got) if got in options else None
            grown = got + bytes([byte])
            return rest + (("str", options, grown, 0, cap),) if any(o.startswith(grown) for o in options) else None
        # ``pending``: 0 nothing; -1 after a backslash; 1..4 hex digits of \uXXXX still due;
        # 11..13 continuation bytes of a UTF-8 character still due (minus 10); 21..24 the
        # narrower second byte after E0, ED, F0, F4 (no overlong forms, surrogates or > U+10FFFF). ``got`` counts
        # bytes; ``cap`` (the schema's maxLength, counted in bytes: never more characters than it)
        if pending == 0 and byte != ord('"') and got >= cap:
            return None  # long enough: only the closing quote (a character or escape under way ends first)
        if pending == -1:
            if byte == ord("u"):
                return rest + (("str", None, got + 1, 4, cap),)
            return rest + (("str", None, got + 1, 0, cap),) if byte in ESCAPES else None
        if 1 <= pending <= 4:
            return rest + (("str", None, got + 1, pending - 1, cap),) if byte in HEX else None
        if pending > 20:  # the second byte of a sequence whose range is narrower (UTF8_SECOND)
            lo, hi, after = UTF8_SECOND[pending]
            return rest + (("str", None, got + 1, after, cap),) if lo <= byte <= hi else None
        if pending > 10:
            return rest + (("str", None, got + 1, pending - 1 if pending > 11 else 0, cap),) \
                if 0x80 <= byte <= 0xBF else None
        if byte == ord('"'):
            return self._value_done(rest, None)
        if byte < 0x20 or 0x80 <= byte <= 0xC1 or byte > 0xF4:
            return None  # a control character, or not the start of a UTF-8 character
        if byte >= 0xC2:
            due = UTF8_LEAD.get(byte, 11 if byte < 0xE0 else 12 if byte < 0xF0 else 13)
            return rest + (("str", None, got + 1, due, cap),)
        return rest + (("str", None, got + 1, -1 if byte == ord("\\") else 0, cap),)

    def _number(self, rest, frame, byte):
        _, text, integer = frame
        grown = text + bytes([byte])
        if len(grown) <= MAX_NUMBER and _number_prefix(grown, integer):
            return rest + (("num", grown, integer),)
        if _number_whole(text, integer):  # the number ended: this byte belongs to what follows
            return self.step(self._value_done(rest, None), byte)
        return None


def _number_prefix(text: bytes, integer: bool) -> bool:
    """Whether ``text`` can start a JSON number (an integer one with ``integer``)."""
    s = text.decode("ascii", "replace")
    i, n = 0, len(s)
    if i < n and s[i] == "-":
        i += 1
    if i == n:
        return True
    if s[i] == "0":
        i += 1
    elif s[i].isdigit():
        while i < n and s[i].isdigit():
            i += 1
    else:
        return False
    if i == n:
        return True
    if integer:
        return False
    if s[i] == ".":
        i += 1
        if i == n:
            return True
        if not s[i].isdigit():
            return False
        while i < n and s[i].isdigit():
            i += 1
    if i == n:
        return True
    if s[i] in "eE":
        i += 1
        if i < n and s[i] in "+-":
            i += 1
        while i < n and s[i].isdigit():
            i += 1
        return i == n
    return False


def _cap(max_length) -> int:
    """A schema's ``maxLength`` as a cap on a string's bytes (none: no cap of its own)."""
    return max_length if isinstance(max_length, int) and not isinstance(max_length, bool) and max_length >= 0 \
        else 1 << 30


def _number_whole(text: bytes, integer: bool) -> bool:
    return _number_prefix(text, integer) and text[-1:] not in (b"-", b".", b"e", b"E", b"+")


def _check_schema(schema: dict, where: str) -> None:
    """Refuse, in one line, a schema this automaton does not cover."""
    kind = schema.get("type")
    if kind == "object":
        for name, sub in schema.get("properties", {}).items():
            _check_schema(sub, f"{where}.{name}")
        return
    if kind not in ("string", "number", "integer", "boolean"):
        raise CausetteError(f"tool {where}: constrained calls cover string, number, integer, boolean "
                            f"and object arguments, not {kind!r}")


# ============================================================================== tokens


class TokenTrie:
    """The tokenizer's ordinary tokens as a trie of their bytes: ``node = (ids ending here,
    {byte: child})``."""

    def __init__(self, tokenizer):
        self.root: tuple[list[int], dict] = ([], {})
        special = set(tokenizer.special_ids)
        for token_id in range(tokenizer.vocab_size):
            if token_id in special:
                continue
            node = self.root
            for byte in tokenizer.token_bytes(token_id):
                node = node[1].setdefault(byte, ([], {}))
            node[0].append(token_id)

    def allowed(self, grammar: CallGrammar, state: tuple) -> list[int]:
        """The ids of the tokens whose every byte the grammar accepts from ``state``."""
        out: list[int] = []
        stack = [(self.root, state)]
        while stack:
            (ids, children), st = stack.pop()
            out.extend(ids)
            for byte, child in children.items():
                nxt = grammar.step(st, byte)
                if nxt is not None:
                    stack.append((child, nxt))
        return out


class ToolCallProcessor:
    """A logits processor (scheduler.py) that keeps every ``<tool_call>`` … ``</tool_call>`` of
    one reply a valid call to one of ``tools``. One per request: it follows that request's tokens.

    Outside a call it changes nothing. Inside, the logits of every token that would leave the
    grammar are ``-inf``; once the call is whole, only blanks and ``</tool_call>`` remain.

    ``choice`` is OpenAI's ``tool_choice``: ``"auto"`` (the model decides), ``"required"`` (the
    reply starts with a call) or ``"none"`` (no call: ``<tool_call>`` is never drawn); a choice
    of one function is ``"required"`` with ``tools`` reduced to it. ``parallel=False``: at most
    one call per reply (``parallel_tool_calls: false``). ``constrain=False``: the calls
    themselves are left free; ``None``: free only when a schema is one this automaton does not
    cover (arrays, ``anyOf``...: the server's case for client tools). The choice and
    ``parallel`` hold either way.
    """

    def __init__(self, tokenizer, tools: list[dict], trie: TokenTrie | None = None, max_string: int = MAX_STRING,
                 choice: str = "auto", parallel: bool = True, constrain: bool | None = True):
        names = tokenizer.special_tokens
        if "<tool_call>" not in names or "</tool_call>" not in names:
            raise CausetteError("this tokenizer has no tool tokens (trained before tools): chat without tools")
        if choice not in ("auto", "required", "none"):
            raise CausetteError(f"tool choice must be auto, required or none, got {choice!r}")
        self.open_id, self.close_id = names["<tool_call>"], names["</tool_call>"]
        self.choice, self.parallel = choice, parallel
        self.calls = 0  # calls opened so far in this reply
        self.grammar: CallGrammar | None = None
        if constrain is not False:
            try:
                self.grammar = CallGrammar(tools, max_string)
            except CausetteError:
                if constrain:
                    raise
        self.trie = trie or TokenTrie(tokenizer)
        self.tokenizer = tokenizer
        self.state: tuple | None = None  # None: outside a call
        self.seen = 0  # tokens of the reply followed so far
        self._cache: dict[tuple, torch.Tensor] = {}

    def __call__(self, tokens: list[int], logits: torch.Tensor) -> torch.Tensor:
        for token in tokens[self.seen :]:
            self._follow(token)
        self.seen = len(tokens)
        if self.state is None:
            if self.choice == "required" and not tokens:  # the reply opens with a call
                only = torch.full_like(logits, float("-inf"))
                only[..., self.open_id] = logits[..., self.open_id]
                return only
            if self.choice == "none" or (self.calls and not self.parallel):
                logits = logits.clone()
                logits[..., self.open_id] = float("-inf")
            return logits
        mask = self._cache.get(self.state)
        if mask is None:
            ids = self.trie.allowed(self.grammar, self.state)
            if CallGrammar.complete(self.state):
                ids.append(self.close_id)
            mask = torch.full((logits.shape[-1],), float("-inf"))
            mask[ids] = 0.0
            self._cache[self.state] = mask
        return logits + mask.to(logits.device)

    def _follow(self, token: int) -> None:
        if self.state is None:
            if token == self.open_id:
                self.state = self.grammar.start() if self.grammar else None
                self.calls += 1
            return
        if token == self.close_id:
            self.state = None
            return
        for byte in self.tokenizer.token_bytes(token):
            nxt = self.grammar.step(self.state, byte)
            if nxt is None:  # a token the mask did not allow (forced by the caller): stop constraining
                self.state = None
                return
            self.state = nxt
