"""Generation: sampling filters, the KV-cache engine, the terminal chat, the server.

    from causette.inference import Engine, SamplingParams
    engine = Engine(model, tokenizer)
    [g] = engine.generate([engine.encode_prompt("Il était une fois")], SamplingParams(seed=0))

Modules: ``sampling`` (settings and filters), ``engine`` (generation and streaming, ``sample_texts``
for the trainer), ``scheduler`` (requests into rows of the KV cache, one token per busy row per
step), ``runner`` (the cache and the backend that steps it), ``backends/`` (the model's step:
eager, compiled ahead of time, native C++), ``row`` (one sequence's text and stopping), ``chat``
(conversation and REPL), ``server*`` (``causette serve``), ``cli`` (``causette generate`` and
``causette chat``). Checkpoints are opened by causette/checkpoint/load.py.

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
