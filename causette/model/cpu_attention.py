"""Causal attention for bf16 training on CPU: PyTorch's flash forward, a faster backward.

On CPU, ``F.scaled_dot_product_attention`` runs a flash-attention kernel whose forward is fast
but whose *backward* is ~7× slower than the forward (head size 48: 37 ms against 5 ms per
layer for 16 × 256 tokens, ``bench/attention.py``): it was a third of a whole training step.

This module keeps the flash forward (it also returns the log-sum-exp of each query's scores)
and computes the backward itself, the textbook way, a few (batch, key/value head) pairs at a
time so that the ``T × T`` score tiles stay in the CPU caches:

    S  = Q Kᵀ · scale          (recomputed: cheaper than storing it)
    P  = exp(S − lse)          (the softmax, from the saved log-sum-exp; masked entries are 0)
    dV = Pᵀ dO
    dP = dO Vᵀ
    dS = P ⊙ (dP − δ),  δ = rowsum(dO ⊙ O)
    dQ = dS K · scale,   dK = dSᵀ Q · scale

Products run in bf16 on the matrix units (AMX), the element-wise part in fp32, fused into a
couple of loops by ``torch.compile`` — so the path is used only where compilation works.
With grouped-query attention the ``g = n_head / n_kv_head`` query heads sharing one key/value
head are stacked as one ``(g·T) × head_dim`` matrix, so ``dK``/``dV`` need no reduction.

Both directions are ``torch.library`` custom operators: ``torch.compile`` of the whole model
sees them as opaque calls (with shape-only "fake" implementations), and autograd knows the
backward. ``tests/test_cpu_attention.py`` checks values and gradients against SDPA in fp64.
"""

from __future__ import annotations

import functools

import torch

from causette.utils.device import inductor_works_here

# (batch × key/value head) pairs per backward tile: 8 pairs × g=2 × 256 × 256 fp32 scores = 4 MB,
# the L2 cache of the two cores together (bench/LOG.md, "attention backward").
PAIRS_PER_TILE = 8


def usable(q: torch.Tensor) -> bool:
    """Whether this path applies: bf16 training on CPU with a working ``torch.compile``."""
    return q.device.type == "cpu" and q.dtype == torch.bfloat16 and q.requires_grad and inductor_works_here()


@functools.cache
def _compiled_tile():
    return torch.compile(_backward_tile, dynamic=False)


def _backward_impl(do, q, k, v, out, lse):
    """``dq, dk, dv`` for ``q`` ``(B, H, T, D)``, ``k``/``v`` ``(B, KV, T, D)``, tile by tile."""
    B, H, T, D = q.shape
    KV = k.shape[1]
    g = H // KV
    scale = D**-0.5
    # Query heads h = kv·g + j are consecutive per key/value head: stack them as g·T rows.
    qg = q.contiguous().view(B * KV, g * T, D)
    dog = do.to(q.dtype).contiguous().view(B * KV, g * T, D)
    kf, vf = k.contiguous().view(B * KV, T, D), v.contiguous().view(B * KV, T, D)
    lse = lse.contiguous().view(B * KV, g * T)
    og = out.contiguous().view(B * KV, g * T, D)
    # Row r of a stacked block is query position r mod T; it sees key positions 0..r mod T.
    visible = (torch.arange(g * T, device=q.device) % T)[:, None] >= torch.arange(T, device=q.device)[None, :]
    grads = []
    for i in range(0, B * KV, PAIRS_PER_TILE):
        j = slice(i, i + PAIRS_PER_TILE)
        grads.append(_compiled_tile()(qg[j], kf[j], vf[j], og[j], dog[j], lse[j], visible, scale))
    dq, dk, dv = (torch.cat(parts) for parts in zip(*grads))
    return dq.view(B, H, T, D), dk.view(B, KV, T, D), dv.view(B, KV, T, D)


def _backward_tile(q, k, v, o, do, lse, visible, scale: float):
    """Gradients for a few (batch, kv-head) pairs. ``q``/``o``/``do``: ``(n, g·T, D)``; ``k``/``v``: ``(n, T, D)``."""
    delta = (do.float() * o.float()).sum(-1)  # δ = rowsum(dO ⊙ O)
    s = torch.bmm(q, k.transpose(1, 2)).float() * scale  # (n, g·T, T)
    p = torch.where(visible, torch.exp(s - lse.unsqueeze(-1)), 0.0).to(q.dtype)  # kept in bf16 only
    dv = torch.bmm(p.transpose(1, 2), do)
    dp = torch.bmm(do, v.transpose(1, 2)).float()
    ds = (p.float() * (dp - delta.unsqueeze(-1)) * scale).to(q.dtype)
    return torch.bmm(ds, k), torch.bmm(ds.transpose(1, 2), q), dv


@torch.library.custom_op("causette::cpu_causal_attention", mutates_args=())
def _forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    g = q.shape[1] // k.shape[1]
    if g > 1:  # the flash kernel wants one key/value head per query head
        k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, True)
    # Results in (B, T, H, ·) memory seen as (B, H, T, ·): the layout the model wants next (heads
    # side by side again), and what the kernel gives for the model's q (no copy then).
    return _bthd(out), _bthd(lse)


def _bthd(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(1, 2).contiguous().transpose(1, 2)


# The "fake" implementations tell torch.compile the outputs' shapes and strides without running.
# Inductor's on-disk cache does not notice when they change: after editing one, clear
# /tmp/torchinductor_<user> (bench/LOG.md). tests/test_cpu_attention.py runs torch.library.opcheck.
@_forward.register_fake
def _(q, k, v):
    B, H, T, D = q.shape
    out = q.new_empty((B, T, H, D)).transpose(1, 2)
    return out, q.new_empty((B, T, H), dtype=torch.float32).transpose(1, 2)


@torch.library.custom_op("causette::cpu_causal_attention_backward", mutates_args=())
def _backward(
    do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, lse: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _backward_impl(do, q, k, v, out, lse)


@_backward.register_fake
def _(do, q, k, v, out, lse):
    return (
        torch.empty_like(q, memory_format=torch.contiguous_format),
        torch.empty_like(k, memory_format=torch.contiguous_format),
        torch.empty_like(v, memory_format=torch.contiguous_format),
    )


def _setup_context(ctx, inputs, output):
    q, k, v = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse)


def _autograd_backward(ctx, d_out, d_lse):
    q, k, v, out, lse = ctx.saved_tensors
    return _backward(d_out, q, k, v, out, lse)


_forward.register_autograd(_autograd_backward, setup_context=_setup_context)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention of ``q`` ``(B, H, T, D)`` over ``k``/``v`` ``(B, KV, T, D)``; same result as SDPA."""
    return _forward(q, k, v)[0]
