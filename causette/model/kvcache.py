"""KV cache: remember every layer's keys and values so that generation costs one token per step.

Without a cache, producing token ``t+1`` recomputes attention over all ``t`` previous tokens,
for every new token. But the keys and values of past tokens never change (the model is
causal), so we compute them once and store them:

1. **prefill**: run the whole prompt ``(B, T0)`` once; each layer writes its ``T0`` keys/values;
2. **decode**: feed only the newest token ``(B, 1)``; each layer appends one key/value and
   its query attends to everything stored so far.

Storage is preallocated, one ``(B, n_kv_head, max_len, head_dim)`` tensor per layer for keys
and the same for values, so a step never reallocates. With grouped-query attention only the
``n_kv_head`` shared heads are stored: that is the memory GQA saves. One tensor *per layer*
(rather than one stacked tensor for all layers) matters under ``torch.compile``: compiled code
writes into a copy of a tensor it received and copies it back, so with a stacked tensor each
layer's update would copy the whole cache (25 MB per token for seed16m; see
``causette/inference/compiled.py``).

All rows of a batch advance together (``pos`` is shared): prompts in one batch must have the
same length. Usage::

    cache = model.new_cache(batch_size=2)            # max_len = block_size
    logits, _ = model(prompt, cache=cache)           # prefill, prompt (2, T0)
    logits, _ = model(next_tokens, cache=cache)      # one step, next_tokens (2, 1)
    cache.reset()                                    # reuse for a new conversation
"""

from __future__ import annotations

import torch

from causette.errors import CausetteError


class KVCache:
    """Preallocated keys/values for every layer, plus the number of positions already filled."""

    def __init__(
        self,
        n_layer: int,
        batch_size: int,
        n_kv_head: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ):
        shape = (batch_size, n_kv_head, max_len, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.max_len = max_len
        self.pos = 0  # positions 0 .. pos-1 hold valid keys/values

    @property
    def batch_size(self) -> int:
        return self.k[0].shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.k[0].dtype

    def reset(self) -> None:
        """Forget everything (the old values are simply overwritten later)."""
        self.pos = 0

    def check(self, batch_size: int, seq_len: int) -> None:
        """Fail clearly before a forward pass that would not fit."""
        if batch_size != self.batch_size:
            raise CausetteError(f"KV cache was made for batch size {self.batch_size}, got {batch_size}")
        if self.pos + seq_len > self.max_len:
            raise CausetteError(
                f"KV cache full: {self.pos} positions used + {seq_len} new > max_len {self.max_len} "
                "(crop the context or reset the cache)"
            )

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k, v`` ``(B, n_kv_head, T, head_dim)`` at positions ``pos .. pos+T-1`` of ``layer``.

        Returns all keys/values of that layer so far, ``(B, n_kv_head, pos+T, head_dim)``, in the
        dtype of ``k``. ``pos`` itself moves only when the model calls :meth:`advance` after the
        last layer, so every layer writes at the same place.
        """
        end = self.pos + k.shape[2]
        self.k[layer][:, :, self.pos : end] = k
        self.v[layer][:, :, self.pos : end] = v
        return self.k[layer][:, :, :end].to(k.dtype), self.v[layer][:, :, :end].to(v.dtype)

    def advance(self, seq_len: int) -> None:
        self.pos += seq_len
