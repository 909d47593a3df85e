"""A compiled decoding step: ``torch.compile`` for the one-token forward passes of generation.

Why: at batch 1 a decoding step of a small model is a few hundred tiny operations (norms,
RoPE, the cache update, residual additions...) around ~33 matrix-vector products. Run one by
one from Python ("eager" mode), each costs a few microseconds of dispatch, which adds up to
~1.5 ms per step for seed16m, as much as the products themselves once the weights are int8
(quantize.py). ``torch.compile`` traces the step once and generates C++ code that fuses the
small operations into a few loops; only the products and the attention remain library calls.

How it is used here (``Engine(..., compile=True)``):

* only decoding steps (one new token per row, with a cache) go through the compiled model; the
  prefill, whose length changes from prompt to prompt, stays eager. ``dynamic=True`` makes the
  position in the cache a symbol rather than a constant, so the step compiles once per batch
  size (1 and "more than 1"; ``torch.compile`` always treats size 1 apart), not once per token;
* the first step pays the compilation: 15 to 50 s for seed16m on 2 busy CPU cores, ~11 s when
  Inductor finds its earlier work in its on-disk cache (bench/LOG.md). At 1.5 to 3 ms saved
  per token it pays back after 5,000 to 30,000 tokens: an option for long chats, servers and
  benchmarks, not the default;
* the numbers change slightly (fused loops sum in another order), so greedy decoding is not
  guaranteed to give exactly the eager tokens: another reason to keep it opt-in.

**The cache, one tensor per layer.** Compiled code does not write in place into a tensor it
received, as eager code does: it writes into a copy and copies the result back. With one tensor
shared by all layers ``(n_layer, B, heads, max_len, head_dim)`` that meant copying the whole
cache once per layer and step (25 MB per step for seed16m: ~1.3 ms, which ate most of the
gain), so the model's :class:`~causette.model.layers.KVCache` keeps one tensor per layer and
each layer only touches its own (bench/LOG.md: 4.3 → 2.9 ms per compiled fp32 step).
"""

from __future__ import annotations

import torch



# Inductor's generated code re-checks the sizes, strides and alignment of its inputs and of the
# library calls' outputs at every call: ~160 checks from Python per step for seed16m, ~5 % of a
# compiled step. Dynamo's guards already check the inputs before the call, so we leave them out.
INDUCTOR_OPTIONS = {"size_asserts": False, "alignment_asserts": False}


def compile_decode_step(model: torch.nn.Module):
    """``model.logits`` compiled for one-token decoding steps (call it like ``model.logits``)."""
    return torch.compile(model.logits, dynamic=True, options=INDUCTOR_OPTIONS)


__all__ = ["compile_decode_step"]
