"""``causette export ollama``: a checkpoint → a folder that ``ollama create`` turns into a model.

    OUT/model.gguf   the GGUF export (causette/export/gguf.py)
    OUT/Modelfile    what Ollama needs besides the weights: the chat template, where a reply
                     stops, and the sampling settings of ``causette chat``

Then ``ollama create NAME -f OUT/Modelfile`` and ``ollama run NAME``.

The ``TEMPLATE`` is written in Ollama's Go-template language, and renders our chat format
(ChatML, causette/data/chat_template.py) character for character. Ollama hands the template
the conversation as ``.Messages`` (system messages included, in order: a ``SYSTEM`` line of the
Modelfile becomes the first message), so the template walks that list only. It does not write
``<|bos|>``: the GGUF says ``add_bos_token``, so Ollama's tokenizer adds it, as llama.cpp does.
A base model (stage ``pretrain``) gets ``{{ .Prompt }}``: the text is continued as it is. A chat
model made before Causette adopted ChatML gets a template of its older format.

**Tools.** The ChatML template also renders ``.Tools`` (the compact line or the full block),
assistant messages with ``.ToolCalls`` and ``tool`` messages (consecutive ones in one user turn,
closed when another role comes: Go's templates cannot look ahead). Ollama finds the tag that
opens a call in the model's output in the template itself, in the first text inside the first
``{{ if }}`` whose condition names ``.ToolCalls``: that is why the line break between an
assistant's text and its first call is tested on ``$m.ToolCalls`` (a variable, which Ollama does
not look at), leaving ``<tool_call>`` as that first text. Two differences come from Ollama: a
template receives a call's arguments as a Go map, whose keys come sorted (our order is the given
one), and a client's tools as Ollama's structures, which its ``json`` writes compact in its own
field order (the same content, other bytes; our built-in tools' compact line is identical).
Argument strings are quoted with Go's ``%q``: JSON's quoting for ordinary text, accents included,
where Go's ``json`` would write ``\\u003c`` for ``<``. tests/test_export_ollama.py runs all of it
with Go's engine.

``PARAMETER stop`` lists the special tokens as text: Ollama stops on the GGUF's end-of-sequence
token by itself, and on these if the model ever writes one, as ``causette chat`` stops on any
special token. The tool tags are not listed: they are text of a reply. The sampling values are
``causette chat``'s defaults (``repeat_penalty 1``: Ollama's own default, 1.1, would change the
answers).
"""

from __future__ import annotations

from pathlib import Path

from causette.data.chat_template import (
    BUILTIN_TOOLS,
    TOOLS_BLOCK_END,
    TOOLS_BLOCK_START,
    TOOLS_LINE_END,
    TOOLS_LINE_START,
    builtin_signature,
    chat_format,
)
from causette.export.gguf import export_gguf
from causette.export.source import open_checkpoint, prepare_out_dir
from causette.inference.config import CHAT_DEFAULTS, GENERATE_DEFAULTS
from causette.tokenizer.special import TEXT_SPECIALS, reserved_name
from causette.utils.io import atomic_write


def _builtin_cases() -> str:
    """Go ``if/else if`` over the built-in tool names, writing each one's signature."""
    cases = " else if ".join(
        f'eq .Function.Name "{name}" }}}}{builtin_signature(name)}{{{{' for name in BUILTIN_TOOLS
    )
    return "{{ if " + cases + " end }}"


def _tools_block() -> str:
    """The end of the system turn listing ``.Tools``: the compact line or the full block."""
    builtin = " ".join(f'(eq .Function.Name "{name}")' for name in BUILTIN_TOOLS)
    return (
        "{{ $compact := true }}{{ range .Tools }}{{ if not (or " + builtin + ") }}"
        "{{ $compact = false }}{{ end }}{{ end }}"
        "{{ if $compact }}" + TOOLS_LINE_START
        + "{{ range $k, $t := .Tools }}{{ if $k }}, {{ end }}" + _builtin_cases() + "{{ end }}"
        + TOOLS_LINE_END
        + "{{ else }}" + TOOLS_BLOCK_START + "{{ range .Tools }}\n{{ json . }}{{ end }}" + TOOLS_BLOCK_END
        + "{{ end }}"
    )


# An argument value: a string quoted as JSON quotes it (Go's json would write \u003c for "<"),
# anything else as JSON.
_ARG_VALUE = '{{ if eq (printf "%T" $v) "string" }}{{ printf "%q" $v }}{{ else }}{{ json $v }}{{ end }}'

CHATML_TEMPLATE = (
    # the system turn: the first message if it is a system one, then the tools block
    '{{ $system := false }}{{ $text := "" }}'
    '{{ range $i, $m := .Messages }}{{ if and (eq $i 0) (eq .Role "system") }}'
    "{{ $system = true }}{{ $text = .Content }}{{ end }}{{ end }}"
    "{{ if or $system .Tools }}<|im_start|>system\n{{ $text }}"
    '{{ if .Tools }}{{ if $text }}\n\n{{ end }}' + _tools_block() + "{{ end }}<|im_end|>\n{{ end }}"
    # the turns; consecutive tool results make one user turn, closed when another role comes
    '{{ $prev := "" }}'
    "{{ range $i, $m := .Messages }}"
    '{{ if and (eq $prev "tool") (ne .Role "tool") }}<|im_end|>\n{{ end }}'
    '{{ if and (eq $i 0) $system }}'
    '{{ else if eq .Role "tool" }}{{ if ne $prev "tool" }}<|im_start|>user{{ end }}'
    "\n<tool_response>\n{{ .Content }}\n</tool_response>"
    '{{ else if eq .Role "assistant" }}<|im_start|>assistant\n{{ .Content }}'
    # (names $m.ToolCalls, not .ToolCalls: Ollama reads its tool-call tag, <tool_call>, in the
    # first "if" on .ToolCalls, below)
    "{{ if and .Content $m.ToolCalls }}\n{{ end }}"
    "{{ if .ToolCalls }}{{ range $k, $c := .ToolCalls }}<tool_call>\n"
    '{"name": "{{ .Function.Name }}", "arguments": {{ "{" }}'
    "{{ $first := true }}{{ range $key, $v := .Function.Arguments }}"
    '{{ if not $first }}, {{ end }}{{ $first = false }}{{ printf "%q" $key }}: ' + _ARG_VALUE + "{{ end }}"
    "}}\n</tool_call>{{ if ne (len (slice $m.ToolCalls $k)) 1 }}\n{{ end }}{{ end }}{{ end }}"
    "<|im_end|>\n"
    "{{ else }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "{{ $prev = .Role }}{{ end }}"
    '{{ if eq $prev "tool" }}<|im_end|>\n{{ end }}<|im_start|>assistant\n'
)

TEMPLATES = {
    "chatml": CHATML_TEMPLATE,
    # Causette's format before ChatML (tokenizers with <|user|>, <|assistant|>, <|end|>)
    "legacy": "{{- range .Messages }}<|{{ .Role }}|>{{ .Content }}<|end|>{{ end }}<|assistant|>",
    "raw": "{{ .Prompt }}",
}


def modelfile(fmt: str, specials: list[str], block_size: int, gguf_name: str = "model.gguf") -> str:
    """The Modelfile's text; ``fmt``: "chatml" or "legacy" (a chat model) or "raw" (a base model)."""
    chat = fmt != "raw"
    d = CHAT_DEFAULTS if chat else GENERATE_DEFAULTS
    lines = [
        "# Written by `causette export ollama`. Use: ollama create NAME -f Modelfile; ollama run NAME",
        f"FROM ./{gguf_name}",
        f'TEMPLATE """{TEMPLATES[fmt]}"""',
    ]
    if chat:
        lines += [f'PARAMETER stop "{name}"' for name in specials]
    lines += [
        f"PARAMETER temperature {d.temperature:g}",
        f"PARAMETER top_k {d.top_k}",
        f"PARAMETER top_p {d.top_p:g}",
        f"PARAMETER min_p {d.min_p:g}",
        f"PARAMETER repeat_penalty {d.repetition_penalty:g}",
        f"PARAMETER num_predict {d.max_new_tokens}",
        f"PARAMETER num_ctx {block_size}",
    ]
    return "\n".join(lines) + "\n"


def export_ollama(
    source: str | Path, out: str | Path, dtype: str = "float32", force: bool = False, warn=None
) -> Path:
    """Write ``out/model.gguf`` and ``out/Modelfile`` for the checkpoint ``source``; return ``out``."""
    loaded = open_checkpoint(source)
    tok = loaded.tokenizer
    fmt = chat_format(tok) if loaded.stage == "sft" else "raw"
    out = prepare_out_dir(out, force)
    export_gguf(loaded.path, out / "model.gguf", dtype=dtype, force=True, warn=warn)
    end = tok.special_names[tok.end_id] if fmt != "raw" else None
    reserved = {reserved_name(k) for k in range(len(tok.special_tokens))}
    # the end of turn first, then the other named specials (never the unused reserved slots, nor
    # the tool tags: those are text of a reply)
    others = [s for s in tok.special_tokens if s not in reserved and s != end and s not in TEXT_SPECIALS]
    specials = [end] + others if end else []
    with atomic_write(out / "Modelfile") as f:
        f.write(modelfile(fmt, specials, loaded.model.cfg.block_size))
    return out
