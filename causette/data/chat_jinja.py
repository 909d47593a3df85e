"""The chat template as Jinja: the ``chat_template`` text of the Hugging Face and GGUF exports.

One job: the template that ``transformers`` (``tokenizer.apply_chat_template``) and llama.cpp run
to render a conversation, written to give exactly the text of :func:`render_text`
(causette/data/chat_template.py, where the format is described and rendered in Python): the
same ChatML turns, the same tools line or block, the same ``<tool_call>`` layout (Qwen2.5's).
:data:`CHAT_TEMPLATE_JINJA` is the ChatML one, :data:`LEGACY_CHAT_TEMPLATE_JINJA` the one of the
older tokenizers (``<|user|>``… ``<|end|>``), and :func:`jinja_template` picks the one a
tokenizer speaks. The format's constants (the tools line, the built-in tools) come from
chat_template.py, so that the two renderings cannot drift apart.
"""

from __future__ import annotations

import json

from causette.data.chat_template import (
    BUILTIN_TOOLS,
    CHATML,
    TOOLS_BLOCK_END,
    TOOLS_BLOCK_START,
    TOOLS_LINE_END,
    TOOLS_LINE_START,
    builtin_signature,
    chat_format,
)


def _jinja_string(text: str) -> str:
    """A Jinja string literal (JSON's double-quoted form, which both Jinja engines read)."""
    return json.dumps(text, ensure_ascii=False)


# The same format for the Jinja engines of Hugging Face ``transformers``
# (``tokenizer.apply_chat_template``) and llama.cpp. ``bos_token`` is given by both; llama.cpp
# removes it from the text because it adds the token itself (``add_bos_token``), transformers
# keeps it (its chat tokenisation adds nothing). It contains ``<tool_call>``, in Qwen2.5's layout,
# so that llama.cpp's tool-call parser recognises the format. tests/test_chat_template.py checks
# the text against :func:`render_text`; tests/test_llamacpp.py checks the ids llama.cpp gets from
# it, and that llama.cpp reads a call the model writes.
CHAT_TEMPLATE_JINJA = (
    "{%- set offset = 1 if messages and messages[0]['role'] == 'system' else 0 -%}"
    "{%- set builtin = {"
    + ", ".join(f"{_jinja_string(name)}: {_jinja_string(builtin_signature(name))}" for name in BUILTIN_TOOLS)
    + "} -%}"
    "{%- set ns = namespace(prev='', compact=true) -%}"
    "{%- if tools -%}{%- for tool in tools -%}"
    "{%- if tool['function']['name'] not in builtin -%}{%- set ns.compact = false -%}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- bos_token -}}"
    "{%- if tools or offset -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if offset -%}{{- messages[0]['content'] -}}{%- endif -%}"
    "{%- if tools -%}"
    "{%- if offset and messages[0]['content'] -%}{{- '\\n\\n' -}}{%- endif -%}"
    "{%- if ns.compact -%}"
    "{{- " + _jinja_string(TOOLS_LINE_START) + " -}}"
    "{%- for tool in tools -%}"
    "{%- if not loop.first -%}{{- ', ' -}}{%- endif -%}{{- builtin[tool['function']['name']] -}}"
    "{%- endfor -%}"
    "{{- " + _jinja_string(TOOLS_LINE_END) + " -}}"
    "{%- else -%}"
    "{{- " + _jinja_string(TOOLS_BLOCK_START) + " -}}"
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
    "{{- " + _jinja_string(TOOLS_BLOCK_END) + " -}}"
    "{%- endif -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- set role = message['role'] -%}"
    "{%- if loop.index0 >= offset -%}"
    "{%- if not ((role == 'user' and ns.prev in ['', 'assistant'])"
    " or (role == 'assistant' and ns.prev in ['user', 'tool'])"
    " or (role == 'tool' and ns.prev in ['calls', 'tool'])) -%}"
    "{{- raise_exception('after an optional first system message, roles must alternate user/assistant"
    " (tool messages answer an assistant message with tool_calls)') -}}"
    "{%- endif -%}"
    "{%- if role == 'tool' -%}"
    "{%- if ns.prev != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}"
    "{{- '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' -}}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- set ns.prev = 'tool' -%}"
    "{%- elif role == 'assistant' and message['tool_calls'] -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- if message['content'] -%}{{- message['content'] -}}{%- endif -%}"
    "{%- for call in message['tool_calls'] -%}"
    "{%- if message['content'] or not loop.first -%}{{- '\\n' -}}{%- endif -%}"
    "{{- '<tool_call>\\n{\"name\": \"' + call['function']['name'] + '\", \"arguments\": ' -}}"
    "{%- if call['function']['arguments'] is string -%}{{- call['function']['arguments'] -}}"
    "{%- else -%}{{- call['function']['arguments'] | tojson -}}{%- endif -%}"
    "{{- '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- set ns.prev = 'calls' -%}"
    "{%- else -%}"
    "{{- '<|im_start|>' + role + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- set ns.prev = role -%}"
    "{%- endif -%}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
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


def jinja_template(tokenizer) -> str:
    """The Jinja chat template of the format the tokenizer speaks."""
    return CHAT_TEMPLATE_JINJA if chat_format(tokenizer) == CHATML else LEGACY_CHAT_TEMPLATE_JINJA
