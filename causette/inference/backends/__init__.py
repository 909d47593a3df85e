"""The backends that run the model's decoding step, behind one interface.

A backend computes ``model.step`` (causette/model/transformer.py): one new token per row of the
KV cache, each row at its own position, the logits of the next token. They differ in how:

* ``eager`` (eager.py): the model's own ``step``, operation by operation in PyTorch. The
  reference, on every device and for every model with a KV cache (MoE, int8, LoRA included);
* ``aoti`` (aoti.py): the same ``step_kv`` compiled ahead of time by AOTInductor into a
  shared library, cached on disk (CPU; models without MoE);
* ``native`` (native.py): native_step.cpp, a C++ step written for the dense float32 models
  on the CPU, its weights read from the model's tensor table (causette/model/tensors.py);
  tested against ``model.step``.

Each says which models it runs (``supports(model)``); causette/inference/runner.py chooses one
once per (model, batch size). Interface, for a cache of ``B`` rows::

    backend.step(tokens (B,), positions (B,), cache) -> logits (B, V) float32

and afterwards row ``b`` of ``cache`` holds ``positions[b] + 1`` positions, as after
``model.step``. The prompt itself (the prefill) is always read by the model's own forward.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from causette.utils.paths import user_cache_dir


class Backend:
    """What every backend offers (see the module docstring)."""

    name = "?"
    compile_seconds = 0.0  # the time its first use spent compiling (0: found in the disk cache)

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, cache) -> torch.Tensor:
        raise NotImplementedError


def cache_dir() -> Path:
    """Where compiled steps live: ``$CAUSETTE_CACHE_DIR`` or ``<user cache>/causette``, + ``decode``."""
    return user_cache_dir() / "decode"


def cpu_flags() -> str:
    """The CPU's instruction-set flags (compiled code may use any of them)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


__all__ = ["Backend", "cache_dir", "cpu_flags"]
