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

``PARAMETER stop`` lists the special tokens as text: Ollama stops on the GGUF's end-of-sequence
token by itself, and on these if the model ever writes one, as ``causette chat`` stops on any
special token. The sampling values are ``causette chat``'s defaults (``repeat_penalty 1``:
Ollama's own default, 1.1, would change the answers).
"""

from __future__ import annotations

from pathlib import Path

from causette.data.chat_template import chat_format
from causette.export.gguf import export_gguf
from causette.export.source import open_checkpoint, prepare_out_dir
from causette.inference.config import CHAT_DEFAULTS, GENERATE_DEFAULTS
from causette.tokenizer.special import reserved_name
from causette.utils.io import atomic_write

TEMPLATES = {
    "chatml": (
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n"
        "{{ .Content }}<|im_end|>\n"
        "{{ end }}<|im_start|>assistant\n"
    ),
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
    # the end of turn first, then the other named specials (never the unused reserved slots)
    specials = [end] + [s for s in tok.special_tokens if s not in reserved and s != end] if end else []
    with atomic_write(out / "Modelfile") as f:
        f.write(modelfile(fmt, specials, loaded.model.cfg.block_size))
    return out
