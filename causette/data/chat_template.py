"""The chat template: how a conversation becomes the token ids a chat model reads.

One function, :func:`render_chat`, used everywhere a conversation meets the model: SFT training
(with its loss mask), the terminal chat, the HTTP server, and (as the equivalent Jinja string
:data:`CHAT_TEMPLATE_JINJA`) the ``chat_template`` of the Hugging Face and GGUF exports.
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

Tokenizers made before Causette adopted ChatML have ``<|system|>``, ``<|user|>``,
``<|assistant|>`` and ``<|end|>`` instead: :func:`chat_format` recognises them and the same
functions render that older format (``<|bos|><|user|>Bonjour !<|end|><|assistant|>``), so
models trained with it keep working.
"""

from __future__ import annotations

from typing import Sequence

from causette.errors import CausetteError

ROLES = ("system", "user", "assistant")
BOS = "<|bos|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
CHATML, LEGACY = "chatml", "legacy"
LEGACY_END = "<|end|>"


def legacy_role_token(role: str) -> str:
    return f"<|{role}|>"


# The same format for the Jinja engines of Hugging Face ``transformers``
# (``tokenizer.apply_chat_template``) and llama.cpp. ``bos_token`` is given by both; llama.cpp
# removes it from the text because it adds the token itself (``add_bos_token``), transformers
# keeps it (its chat tokenisation adds nothing). tests/test_chat_template.py checks the text
# against :func:`render_text`; tests/test_llamacpp.py checks the ids llama.cpp gets from it.
CHAT_TEMPLATE_JINJA = (
    "{%- set offset = 1 if messages and messages[0]['role'] == 'system' else 0 -%}"
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if loop.index0 >= offset and message['role'] != ['user', 'assistant'][(loop.index0 - offset) % 2] -%}"
    "{{- raise_exception('after an optional first system message, roles must alternate user/assistant') -}}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}"
)

# The older format (tokenizers with <|user|>... and <|end|>), for their exports.
LEGACY_CHAT_TEMPLATE_JINJA = (
    "{%- set offset = 1 if messages and messages[0]['role'] == 'system' else 0 -%}"
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if loop.index0 >= offset and message['role'] != ['user', 'assistant'][(loop.index0 - offset) % 2] -%}"
    "{{- raise_exception('after an optional first system message, roles must alternate user/assistant') -}}"
    "{%- endif -%}"
    "{{- '<|' + message['role'] + '|>' + message['content'] + '<|end|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>' -}}{%- endif -%}"
)


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


def jinja_template(tokenizer) -> str:
    """The Jinja chat template of the format the tokenizer speaks."""
    return CHAT_TEMPLATE_JINJA if chat_format(tokenizer) == CHATML else LEGACY_CHAT_TEMPLATE_JINJA


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

    ``add_generation_prompt``: end with ``<|im_start|>assistant\\n``, to ask for the next reply.
    """
    check_messages(messages, add_generation_prompt)
    if chat_format(tokenizer) == LEGACY:
        return _render_legacy(tokenizer, messages, add_generation_prompt)
    start, end = tokenizer.special_id(IM_START), tokenizer.special_id(IM_END)
    newline = tokenizer.encode("\n")
    ids, mask = [tokenizer.bos_id], [0]
    for message in messages:
        header = message["role"] + "\n"
        piece = tokenizer.encode(header + message["content"], allowed_special="none")
        if message["role"] == "assistant":
            written = _content_mask(tokenizer, piece, len(header.encode()))
        else:
            written = [0] * len(piece)
        trained = int(message["role"] == "assistant")
        ids += [start, *piece, end, *newline]
        mask += [0, *written, trained] + [0] * len(newline)
    if add_generation_prompt:
        header = tokenizer.encode("assistant\n")
        ids += [start, *header]
        mask += [0] * (1 + len(header))
    return ids, mask



def _content_mask(tokenizer, piece: list[int], header_bytes: int) -> list[int]:
    """1 for the tokens of ``piece`` that hold bytes of the content (after the role header).

    The header (``"assistant\\n"``) and the content are encoded together, as every runtime
    does; a token may then straddle both (a content starting with a line break joins the
    header's): it holds content, so it is trained.
    """
    out, position = [], 0
    for token in piece:
        position += len(tokenizer.token_bytes(token))
        out.append(int(position > header_bytes))
    return out


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


def render_text(messages: Sequence[dict], add_generation_prompt: bool = False, fmt: str = CHATML) -> str:
    """The same conversation as text (what ``tokenizer.decode(render_chat(...)[0])`` gives)."""
    check_messages(messages, add_generation_prompt)
    if fmt == LEGACY:
        parts = [BOS] + [legacy_role_token(m["role"]) + m["content"] + LEGACY_END for m in messages]
        if add_generation_prompt:
            parts.append(legacy_role_token("assistant"))
        return "".join(parts)
    parts = [BOS] + [f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages]
    if add_generation_prompt:
        parts.append(f"{IM_START}assistant\n")
    return "".join(parts)
