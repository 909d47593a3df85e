"""The Transformer (GPT-2 and Llama families, Mixture-of-Experts) and what goes with it.

    from causette.model import Transformer, ModelConfig
    model = Transformer(load_config("model/llama").model)

Saving and loading a model is the checkpoint format's job (causette/checkpoint/weights.py).
Attributes are imported on first use, so that reading a config (which needs only
``ModelConfig``) does not import PyTorch.
"""

from __future__ import annotations

import importlib

from causette.model.config import ModelConfig

_LAZY = {
    "Transformer": "transformer",
    "IGNORE_INDEX": "layers",
    "lm_loss": "layers",
    "KVCache": "kvcache",
    "MoE": "moe",
    "MLP": "layers",
    "CausalSelfAttention": "attention",
    "init_weights": "transformer",
    "ParamCount": "counting",
    "count_params": "counting",
    "numel": "counting",
    "flops_per_token": "counting",
}

__all__ = ["ModelConfig", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"causette.model.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'causette.model' has no attribute {name!r}")
