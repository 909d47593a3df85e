"""Generation: sampling filters, the KV-cache engine, the terminal chat, the server.

    from causette.inference import Engine, SamplingParams
    engine = Engine(model, tokenizer)
    [g] = engine.generate([engine.encode_prompt("Il était une fois")], SamplingParams(seed=0))

Modules: ``sampling`` (settings and filters), ``engine`` (batched generation, streaming,
``sample_texts`` for the trainer), ``chat`` (conversation and REPL), ``decode_step`` and ``compiled`` (the
static one-token step, compiled ahead of time and cached), ``server*`` (``causette serve``), ``cli`` (``causette
generate`` and ``causette chat``). Checkpoints are opened by causette/checkpoint/load.py.

Attributes are imported on first use, so that ``causette --help`` does not import PyTorch.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Engine": "engine",
    "Generation": "engine",
    "TextStream": "engine",
    "sample_texts": "engine",
    "SamplingParams": "sampling",
}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"causette.inference.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'causette.inference' has no attribute {name!r}")
