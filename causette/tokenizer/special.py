"""Special tokens: markers the model must see as one indivisible symbol.

``<|bos|>`` starts (and separates) documents, ``<|pad|>`` fills batches, ``<|im_start|>``
opens a chat turn and ``<|im_end|>`` closes it (the ChatML convention, see
causette/data/chat_template.py). ``<tool_call>``, ``</tool_call>``, ``<tool_response>`` and
``</tool_response>`` frame a call to a tool and its result (the Hermes / Qwen2.5 convention).
A tokenizer keeps a fixed number of *slots* for them (32 by default): the named ones first,
then ``<|reserved_k|>`` up to the last slot, so that tokens can be added later without changing
the vocabulary size of a trained model.

**The tool tags took the first four reserved slots.** A reserved slot keeps the name it had
before: slot ``k`` after the chat specials is ``<|reserved_k|>``, so a default tokenizer now has
``<|reserved_4|>`` to ``<|reserved_27|>`` (``<|reserved_0..3|>`` became the tool tags), with the
same ids as before. Older tokenizers, whose slots 4 to 7 are still reserved, keep working
without tools (:func:`supports_tools` says which is which).

**The tool tags are text specials.** Each is one token that the model writes or reads, but, unlike
the control specials (``<|bos|>``, ``<|im_end|>``...), it is part of the text of a reply: it
decodes as its name, it does not end a reply (:data:`TEXT_SPECIALS`), and the exports declare
it as an ordinary added token (Hugging Face ``special: false``, GGUF "user-defined") so that
llama.cpp, Ollama and ``transformers`` keep it in the text their tool-call parsers read.

Two rules keep them safe:

* they are cut out of the text *before* pre-tokenisation and BPE, in training and in
  encoding, so no merge ever contains one;
* encoding recognises only the specials it is explicitly allowed to. Text typed by a user is
  encoded with none allowed: a literal ``"<|im_start|>"`` in a message becomes ordinary bytes
  (``<``, ``|``, ``im``, ``_start``, ``|>``), and nobody can forge a turn of the conversation.
"""

from __future__ import annotations

import functools
from typing import AbstractSet, Iterable, Iterator, Literal, Union

import regex

TOOL_CALL, TOOL_CALL_END = "<tool_call>", "</tool_call>"
TOOL_RESPONSE, TOOL_RESPONSE_END = "<tool_response>", "</tool_response>"
TOOL_TOKENS: tuple[str, ...] = (TOOL_CALL, TOOL_CALL_END, TOOL_RESPONSE, TOOL_RESPONSE_END)
# Specials that are text of a reply (see the module docstring); every other special is "control".
TEXT_SPECIALS: frozenset[str] = frozenset(TOOL_TOKENS)

# The specials every chat tokenizer has (an imported one too), then the default list.
CHAT_SPECIALS: tuple[str, ...] = ("<|bos|>", "<|pad|>", "<|im_start|>", "<|im_end|>")
DEFAULT_SPECIALS: tuple[str, ...] = (*CHAT_SPECIALS, *TOOL_TOKENS)
DEFAULT_SLOTS = 32

# What ``encode(..., allowed_special=...)`` accepts: "none", "all", or a set of token strings.
AllowedSpecial = Union[Literal["none", "all"], AbstractSet[str], Iterable[str]]


def reserved_name(k: int) -> str:
    return f"<|reserved_{k}|>"


def special_token_list(named: Iterable[str], slots: int) -> list[str]:
    """The named specials, then ``<|reserved_k|>`` up to ``slots`` tokens in all.

    The reserved slots are numbered from the end of the named specials that are not tool tags
    (the tool tags took reserved slots 0 to 3): ``<|reserved_4|>`` follows the default list.
    """
    names = list(named)
    k = sum(1 for name in names if name in TEXT_SPECIALS)
    while len(names) < slots:
        if reserved_name(k) not in names:
            names.append(reserved_name(k))
        k += 1
    return names


def supports_tools(tokenizer) -> bool:
    """Whether ``tokenizer`` has the four tool tags (and ChatML's turn tokens): a tokenizer trained
    before tools had reserved slots there, and chats without tools."""
    specials = tokenizer.special_tokens
    return all(name in specials for name in (*TOOL_TOKENS, "<|im_start|>", "<|im_end|>"))


def check_special_names(names: Iterable[str]) -> None:
    """Raise ValueError for an empty or duplicated special token."""
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"special tokens must be non-empty strings, got {name!r}")
        if name in seen:
            raise ValueError(f"special token {name!r} is listed twice")
        seen.add(name)


def resolve_allowed(allowed_special: AllowedSpecial, specials: AbstractSet[str]) -> frozenset[str]:
    """Turn ``"none"``, ``"all"`` or an iterable of names into the set of recognised specials."""
    if allowed_special == "none" or allowed_special is None:
        return frozenset()
    if allowed_special == "all":
        return frozenset(specials)
    if isinstance(allowed_special, str):  # a single name: a frequent slip, accept it
        allowed_special = (allowed_special,)
    allowed = frozenset(allowed_special)
    unknown = allowed - set(specials)
    if unknown:
        raise ValueError(f"unknown special token(s): {', '.join(sorted(unknown))}")
    return allowed


@functools.lru_cache(maxsize=64)
def _special_regex(allowed: frozenset[str]) -> regex.Pattern:
    # Longest first, so that a special that is a prefix of another never hides it.
    alternatives = sorted(allowed, key=lambda s: (-len(s), s))
    return regex.compile("|".join(regex.escape(s) for s in alternatives))


def split_specials(text: str, allowed: frozenset[str]) -> Iterator[tuple[str, bool]]:
    """Yield ``(piece, is_special)``: the ordinary text between allowed specials, and the specials.

    Empty ordinary pieces are skipped. With nothing allowed, the whole text is one ordinary piece.
    """
    if not allowed:
        if text:
            yield text, False
        return
    start = 0
    for m in _special_regex(allowed).finditer(text):
        if m.start() > start:
            yield text[start : m.start()], False
        yield m.group(), True
        start = m.end()
    if start < len(text):
        yield text[start:], False
