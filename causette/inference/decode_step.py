"""The one-token decoding step with static shapes: every row of a batch at its own position.

The model's own forward (transformer.py) is written for training and prefill: a sequence of
``T`` tokens, a cache whose rows all sit at one shared position, and shapes that grow with
that position (attention reads ``cache[:, :, :pos]``). For decoding, :class:`DecodeStep` does
the same computation for one new token per row, differently arranged:

* **each row has its own position** ``pos[b]``: its key and value are written at
  ``cache[b, :, pos[b]]``, its RoPE angles are those of ``pos[b]``, and its query sees the keys
  ``0 .. pos[b]``. Rows of different lengths decode together without padding, a row can start
  (a new request) or end at any step: what continuous batching needs (server_batch.py);
* **the shapes never change**: attention reads the whole cache, ``max_len`` keys per row, with
  a mask that hides the keys after ``pos[b]`` (their weights are exactly 0). One step is then one
  fixed graph, which can be compiled ahead of time once per model shape (compiled.py) instead
  of once per position.

The weights are the model's own modules (norms, linear layers, int8 or LoRA ones included);
only attention and the positions are written here. MoE models are not covered (their router
keeps statistics per call): :func:`supports` says so and the engine then decodes eagerly.

The arithmetic is the model's, step for step, except the attention, which sums over ``max_len``
keys instead of ``pos + 1`` (the masked ones add exact zeros, but the kernel may group the
others in another order): the logits may differ from the eager step by a few units in the last
place of float32 (tests/test_decode_step.py measures it).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def supports(model: nn.Module) -> bool:
    """Whether :class:`DecodeStep` can run this model (every dense Transformer with attention
    can; MoE cannot, nor the progression's models without a KV cache)."""
    from causette.model import Transformer

    return isinstance(model, Transformer) and not model.cfg.n_experts and model.supports_cache


class DecodeStep(nn.Module):
    """``step(tokens, pos, ks, vs) → logits``: one new token per row, each at its own position.

    * ``tokens`` ``(B,)`` int64: the newest token of each row;
    * ``pos`` ``(B,)`` int64: its position (the number of tokens of that row already cached);
    * ``ks``, ``vs``: one ``(B, n_kv_head, max_len, head_dim)`` tensor per layer (the tensors of
      a :class:`~causette.model.kvcache.KVCache`), updated in place at ``pos`` (with a sliding
      window, a ring buffer of ``window`` slots: at ``pos mod window``);
    * returns the logits ``(B, vocab_size)`` in float32.
    """

    def __init__(self, model: nn.Module, matvec: bool = False, transposed: bool = False):
        """``matvec``: write the products of plain linear layers as a multiply and a sum, and the
        attention likewise (for a compiler: see :func:`linear`). ``transposed``: keep a
        transposed copy ``(in, out)`` of each plain linear weight and multiply by it (see
        :func:`linear`). Both off: the layers' own calls."""
        super().__init__()
        self.matvec = matvec or transposed
        self.transposed = transposed
        if transposed:
            # Buffers, so that they are part of the step's tensors (compiled.py passes them in).
            for i, layer in enumerate(_plain_linears(model)):
                self.register_buffer(f"wt{i}", layer.weight.detach().t().contiguous(), persistent=False)
            self._wt_index = {id(layer): i for i, layer in enumerate(_plain_linears(model))}
        if not supports(model):
            raise ValueError("DecodeStep does not run Mixture-of-Experts models")
        self.model = model
        cfg = model.cfg
        self.n_head, self.n_kv, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor, ks: list[torch.Tensor], vs: list[torch.Tensor]):
        m = self.model
        B = tokens.shape[0]
        L = ks[0].shape[2]
        x = m.wte(tokens)[:, None, :]  # (B, 1, C)
        if m.positions is not None:  # learned or sinusoidal: the table row of each row's position
            table = m.positions.wpe.weight if hasattr(m.positions, "wpe") else m.positions.table
            x = x + table[pos][:, None, :].to(x.dtype)
        rope = None
        if m.rotary is not None:  # (B, 1, 1, head_dim/2): broadcast over heads
            rope = (m.rotary.cos[pos][:, None, None, :], m.rotary.sin[pos][:, None, None, :])
        rows = torch.arange(B, device=tokens.device)
        # Key j of row b is visible when j <= pos[b]: (B, 1, 1, L), broadcast over heads.
        keys = torch.arange(L, device=tokens.device)[None, :]
        visible = keys <= pos[:, None]
        slot = pos  # where row b's new key/value go
        if m.cfg.sliding_window is not None:
            # A ring buffer of L slots (KVCache.update_window; L = max_len without a ring):
            # position p in slot p mod L, so slot j now holds position pos - (pos - j) mod L
            # (negative: never written), visible when within the window.
            slot = pos % L
            held = pos[:, None] - (pos[:, None] - keys) % L
            visible = (held >= 0) & (held > pos[:, None] - m.cfg.sliding_window)
        visible = visible[:, None, None, :]
        for i, block in enumerate(m.blocks):
            x = x + self._attention(block.attn, block.norm1(x), rope, ks[i], vs[i], rows, slot, visible)
            if block.mlp is not None:  # mlp: none (the progression's step 3) has no MLP
                x = x + self._mlp(block.mlp, block.norm2(x))
        logits = self._linear(m.lm_head, m.norm_f(x))
        if m.cfg.logit_softcap is not None:
            cap = m.cfg.logit_softcap
            logits = cap * torch.tanh(logits.float() / cap)
        return logits[:, 0].float()

    def _linear(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.transposed and id(layer) in self._wt_index:
            y = x @ getattr(self, f"wt{self._wt_index[id(layer)]}")
            return y if layer.bias is None else y + layer.bias
        return linear(layer, x) if self.matvec else layer(x)

    def _mlp(self, mlp, x):
        if not self.matvec:
            return mlp(x)
        return self._linear(mlp.down, mlp.activate(self._linear(mlp.up, x)))

    def _attention(self, attn, x, rope, k_cache, v_cache, rows, slot, visible):
        from causette.model.layers import apply_rope

        B = x.shape[0]
        H, KV, D = self.n_head, self.n_kv, self.head_dim
        q, k, v = self._linear(attn.qkv, x).split([H * D, KV * D, KV * D], dim=-1)
        q = q.view(B, 1, H, D).transpose(1, 2)  # (B, H, 1, D)
        k = k.view(B, 1, KV, D).transpose(1, 2)
        v = v.view(B, 1, KV, D).transpose(1, 2)
        if attn.q_norm is not None:
            q, k = attn.q_norm(q), attn.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        # Row b's new key/value go to slot[b] (its position, or that mod the ring's length) of its row.
        k_cache[rows, :, slot] = k[:, :, 0].to(k_cache.dtype)
        v_cache[rows, :, slot] = v[:, :, 0].to(v_cache.dtype)
        if self.matvec:  # the same attention as sums of products, for the compiler to fuse
            y = _attention_sums(q, k_cache.to(q.dtype), v_cache.to(q.dtype), visible)
        else:
            y = F.scaled_dot_product_attention(
                q, k_cache.to(q.dtype), v_cache.to(q.dtype), attn_mask=visible, enable_gqa=KV != H
            )
        return self._linear(attn.proj, y.transpose(1, 2).reshape(B, 1, H * D))


def _attention_sums(q, k, v, visible):
    """Softmax attention of one query per row and head, ``q`` ``(B, H, 1, D)``, over the cached
    ``k``, ``v`` ``(B, KV, L, D)`` (``H / KV`` query heads share a key/value head), keys hidden
    where ``visible`` ``(B, 1, 1, L)`` is False. Written as products and sums, which a compiler
    fuses into a couple of loops; eagerly, ``F.scaled_dot_product_attention`` is the way."""
    B, H, _, D = q.shape
    KV, L = k.shape[1], k.shape[2]
    qg = q.reshape(B, KV, H // KV, 1, D)
    scores = (qg * k[:, :, None]).sum(-1) * (D ** -0.5)  # (B, KV, G, L)
    scores = scores.masked_fill(~visible.view(B, 1, 1, L), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    y = (weights[..., None] * v[:, :, None]).sum(-2)  # (B, KV, G, D)
    return y.reshape(B, H, 1, D)


def _plain_linears(model: nn.Module) -> list[nn.Linear]:
    """The model's plain ``nn.Linear`` layers, each once (a tied output layer included once)."""
    seen, out = set(), []
    for m in model.modules():
        if type(m) is nn.Linear and id(m.weight) not in seen:
            seen.add(id(m.weight))
            out.append(m)
    return out


def linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` for ``x`` ``(1, 1, in)``; a plain ``nn.Linear`` as ``(x · W).sum(-1)``.

    At batch 1 a linear layer is a matrix-vector product that reads every weight once: its speed
    is the memory bandwidth. On the AMD CPU of bench/LOG.md, PyTorch's BLAS call (MKL) for it
    reads ~16 GB/s; the same product written as an elementwise multiply and a sum, which
    Inductor turns into one vectorised loop, reads ~45 GB/s. Only worth it compiled (eagerly the
    multiply would write the whole ``(out, in)`` product to memory). Other layers (int8, LoRA)
    keep their own call.
    """
    if type(layer) is not nn.Linear:
        return layer(x)
    y = (x[..., None, :] * layer.weight).sum(-1)
    return y if layer.bias is None else y + layer.bias


__all__ = ["DecodeStep", "linear", "supports"]
