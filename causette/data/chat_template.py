"""The chat template: how a conversation becomes the token ids a chat model reads.

One function, :func:`render_chat`, used everywhere a conversation meets the model: SFT training
(with its loss mask), the terminal chat, the HTTP server, and (as the equivalent Jinja string
:data:`CHAT_TEMPLATE_JINJA`) the ``chat_template`` of the Hugging Face export. Keeping a
single definition is what guarantees that the model is asked questions in exactly the format
it was trained on. A conversation::

    [{"role": "system", "content": "Tu es concis."},
     {"role": "user", "content": "Bonjour !"},
     {"role": "assistant", "content": "Bonjour."}]

becomes (specials shown by name, ``·`` separates tokens)::

    <|bos|> · <|system|> · Tu es concis. · <|end|> · <|user|> · Bonjour ! · <|end|>
            · <|assistant|> · Bonjour. · <|end|>          [+ <|assistant|> with add_generation_prompt]

Rules:

* the contents are encoded with special tokens **disallowed**: a user who types
  ``<|assistant|>`` gets those 13 characters as ordinary text, never a role token;
* an optional system message comes first; then user and assistant turns alternate, starting
  with the user;
* ``mask[i] = 1`` exactly for the tokens of assistant contents and the ``<|end|>`` that closes
  them: what SFT trains the model to produce. The role tokens themselves are given, not learned
  (the model must learn to *stop*, with ``<|end|>``, not to start).
"""

from __future__ import annotations

from typing import Sequence

from causette.errors import CausetteError

ROLES = ("system", "user", "assistant")
BOS, END = "<|bos|>", "<|end|>"


def role_token(role: str) -> str:
    return f"<|{role}|>"


# The same format for Hugging Face ``transformers`` (``tokenizer.apply_chat_template``), which
# renders it with Jinja and offers ``raise_exception``. tests/test_chat_template.py checks that
# it gives exactly the text of :func:`render_text`.
CHAT_TEMPLATE_JINJA = (
    "{%- set offset = 1 if messages and messages[0]['role'] == 'system' else 0 -%}"
    "{{- '<|bos|>' -}}"
    "{%- for message in messages -%}"
    "{%- if loop.index0 >= offset and message['role'] != ['user', 'assistant'][(loop.index0 - offset) % 2] -%}"
    "{{- raise_exception('after an optional first system message, roles must alternate user/assistant') -}}"
    "{%- endif -%}"
    "{{- '<|' + message['role'] + '|>' + message['content'] + '<|end|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>' -}}{%- endif -%}"
)


def check_messages(messages: Sequence[dict], add_generation_prompt: bool = False) -> None:
    """Raise a :class:`CausetteError` saying which message is wrong and why."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise CausetteError("a conversation needs at least one message")
    offset = 0
    for n, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise CausetteError(f"message {n}: expected an object with 'role' and 'content'")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise CausetteError(f"message {n}: unknown role {role!r} (system, user or assistant)")
        if not isinstance(content, str):
            raise CausetteError(f"message {n}: content must be a string, got {type(content).__name__}")
        if role == "system":
            if n != 1:
                raise CausetteError(f"message {n}: a system message may only come first")
            offset = 1
            continue
        expected = ("user", "assistant")[(n - 1 - offset) % 2]
        if role != expected:
            raise CausetteError(
                f"message {n}: role {role!r} where {expected!r} was expected "
                "(after an optional system message, turns alternate user, assistant, user, ...)"
            )
    if add_generation_prompt and messages[-1]["role"] != "user":
        raise CausetteError("a reply can only be asked for after a user message (the last message is not 'user')")


def render_chat(tokenizer, messages: Sequence[dict], add_generation_prompt: bool = False) -> tuple[list[int], list[int]]:
    """Token ids of a conversation, and the SFT loss mask (1 = a token the assistant wrote).

    ``add_generation_prompt``: end with ``<|assistant|>``, to ask the model for the next reply.
    """
    check_messages(messages, add_generation_prompt)
    end = tokenizer.special_id(END)
    ids = [tokenizer.special_id(BOS)]
    mask = [0]
    for message in messages:
        content = tokenizer.encode(message["content"], allowed_special="none")
        trained = int(message["role"] == "assistant")
        ids += [tokenizer.special_id(role_token(message["role"])), *content, end]
        mask += [0] + [trained] * (len(content) + 1)
    if add_generation_prompt:
        ids.append(tokenizer.special_id(role_token("assistant")))
        mask.append(0)
    return ids, mask


def render_text(messages: Sequence[dict], add_generation_prompt: bool = False) -> str:
    """The same conversation as text (what ``tokenizer.decode(render_chat(...)[0])`` gives)."""
    check_messages(messages, add_generation_prompt)
    parts = [BOS] + [role_token(m["role"]) + m["content"] + END for m in messages]
    if add_generation_prompt:
        parts.append(role_token("assistant"))
    return "".join(parts)
