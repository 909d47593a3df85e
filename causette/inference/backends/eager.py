"""The eager backend: the model's own ``step``, operation by operation (the reference)."""

from __future__ import annotations

import torch

from causette.inference.backends import Backend


class EagerBackend(Backend):
    """``model.step`` itself, in inference mode. Runs every model that keeps a KV cache."""

    name = "eager"

    def __init__(self, model: torch.nn.Module):
        self.model = model

    @staticmethod
    def supports(model: torch.nn.Module) -> bool:
        return bool(getattr(model, "supports_cache", True))

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor, positions: torch.Tensor, cache) -> torch.Tensor:
        return self.model.step(tokens, positions, cache)


__all__ = ["EagerBackend"]
