"""The runner: the model's KV cache for a number of rows, and the one backend that steps it.

The scheduler (scheduler.py) decides *what* to compute: which request sits in which row, which
prompt tokens to read, which token each busy row feeds next. The runner computes it, through two
calls:

* ``prefill(row, ids, start)``: read prompt tokens ``ids`` into row ``row`` of the cache at
  positions ``start ..`` (the positions before ``start`` already hold the same tokens' keys and
  values); the logits of the last one. Always the model's own forward (``model.logits``);
* ``step(tokens, positions, busy)``: one token per row, row ``b`` at ``positions[b]``; the
  logits ``(B, V)``. Through the backend chosen once, at construction, by :func:`choose_backend`
  (the only place that decides which code runs a token).

A model without attention (the progression's bigram and window models) keeps no cache: the
runner then keeps each row's tokens and recomputes the row over its whole context at each step
(only the busy rows).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from causette.inference.backends import Backend, aoti, native
from causette.inference.backends.eager import EagerBackend

DECODE_MODES = ("auto", "fast", "exact")


def choose_backend(
    model: torch.nn.Module, batch_size: int, decode: str = "auto", use_native: bool = True,
    notify: Callable[[str], None] | None = None,
) -> Backend | None:
    """The backend that runs ``model``'s step for ``batch_size`` rows (None: the model keeps no
    cache, the runner recomputes).

    * ``decode="exact"``, a model on another device than the CPU, or one only the eager step
      covers (MoE): the eager backend, the reference;
    * otherwise the native C++ step where it applies (``use_native``), else the AOTInductor one;
    * ``decode="fast"`` compiles what is not in the disk cache yet (``notify`` gets a line
      first); ``"auto"`` never waits for a compilation: it takes what is already built, else eager.
    """
    if not EagerBackend.supports(model):
        return None
    eager = EagerBackend(model)
    device = next(model.parameters()).device
    if decode == "exact" or device.type != "cpu" or not aoti.supports(model):
        return eager
    if use_native:
        step = native.load(model, notify=notify, compile=decode == "fast")
        if step is not None:
            return step
    length = model.cache_length(model.cfg.block_size)  # block_size, or a sliding window's ring
    if decode == "auto" and not aoti.is_cached(model, batch_size, length):
        return eager
    return aoti.load_or_compile(model, batch_size, length, notify=notify)


class Runner:
    """A KV cache of ``rows`` rows for ``model``, and its backend (see the module docstring)."""

    def __init__(self, model: torch.nn.Module, rows: int, backend: Backend | None):
        self.model = model
        self.rows = rows
        self.backend = backend
        self.device = next(model.parameters()).device
        self.vocab_size: int = model.cfg.vocab_size
        # The compiled steps have static shapes: a cache of block_size positions per row (a
        # sliding window's ring: the window).
        self.cache = model.new_cache(rows, max_len=model.cfg.block_size) if backend is not None else None
        self._context: list[list[int]] = [[] for _ in range(rows)]  # without a cache: each row's tokens

    @torch.inference_mode()
    def prefill(self, row: int, ids: Sequence[int], start: int = 0) -> torch.Tensor:
        """Read ``ids`` into ``row`` at positions ``start ..``; the logits ``(V,)`` of the last."""
        if self.cache is None:
            self._context[row] = self._context[row][:start] + list(ids)
            idx = torch.tensor([self._context[row]], dtype=torch.long, device=self.device)
            return self.model.logits(idx, last_only=True)[0, -1].float()
        view = self.cache.rows(row, row + 1)
        view.pos = start  # positions 0 .. start-1 hold these tokens' keys and values already
        idx = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        return self.model.logits(idx, cache=view, last_only=True)[0, -1].float()

    def copy_prefix(self, source: int, target: int, n: int) -> None:
        """Row ``target`` takes the first ``n`` positions of row ``source``."""
        if self.cache is None:
            self._context[target] = self._context[source][:n]
        else:
            self.cache.copy_prefix(source, target, n)

    def step(self, tokens: Sequence[int], positions: Sequence[int], busy: Sequence[bool]) -> torch.Tensor:
        """One token per row at its position; the logits ``(rows, V)`` (those of rows that are
        not ``busy`` mean nothing: their token is written just past what the row holds)."""
        if self.cache is None:
            return self._recompute(tokens, positions, busy)
        t = torch.tensor(tokens, dtype=torch.long)
        p = torch.tensor(positions, dtype=torch.long)
        if self.device.type != "cpu":
            t, p = t.to(self.device), p.to(self.device)
        return self.backend.step(t, p, self.cache).float()

    @torch.inference_mode()
    def _recompute(self, tokens, positions, busy) -> torch.Tensor:
        out = torch.zeros(self.rows, self.vocab_size)
        for b in range(self.rows):
            if busy[b]:
                self._context[b] = self._context[b][: positions[b]] + [int(tokens[b])]
                idx = torch.tensor([self._context[b]], dtype=torch.long, device=self.device)
                out[b] = self.model.logits(idx, last_only=True)[0, -1].float().cpu()
        return out


__all__ = ["DECODE_MODES", "Runner", "choose_backend"]
