"""The language-model loss without the ``tokens × vocabulary`` logits in memory (CPU, bf16).

The usual way — ``logits = x Wᵀ`` then ``F.cross_entropy(logits, targets)`` — writes ``N × V``
logits (4,096 tokens × 8,192 ids: 67 MB in bf16, 134 MB once in float32 for the softmax), reads
them back for the softmax, and writes and reads an equally large gradient in the backward pass.
On a CPU those passes over memory, not the arithmetic, are the cost: the head's matrix products
ran at a third of the speed of the others (bench/LOG.md).

Here the rows go through a chunk at a time, and for each chunk we compute at once, while its
logits are still in the CPU caches:

    loss_i = logsumexp(z_i) − z_i[target_i]                 (z = x Wᵀ, the chunk's logits)
    ∂loss/∂z_i = softmax(z_i) − onehot(target_i)            (0 for ignored targets)
    ∂x_i = (∂loss/∂z_i) W,   ∂W += (∂loss/∂z_i)ᵀ x_i

So the gradient is computed in the *forward* pass (it is exact: the loss is a mean of these
rows, and the backward pass only multiplies by the incoming scalar). The element-wise work is
one compiled loop per chunk (``torch.compile``). ``tests/test_chunked_loss.py`` compares loss
and gradients with ``F.cross_entropy`` in float64.
"""

from __future__ import annotations

import functools

import torch

from causette.model.layers import IGNORE_INDEX
from causette.utils.device import inductor_works_here

ROWS_PER_CHUNK = 512  # 512 × 8,192 logits: 8 MB in bf16, mostly cache-resident (bench/LOG.md)


def usable(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """For bf16-autocast training on CPU (gradients wanted) where ``torch.compile`` works.

    fp32 training keeps the plain ``F.cross_entropy`` (it is the reference the others are
    compared with, and what the exact-resume tests run).
    """
    return (
        x.device.type == "cpu"
        and torch.is_grad_enabled()
        and weight.requires_grad
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
        and inductor_works_here()
    )


def lm_head_loss(x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``x @ weight.T`` against ``targets``, ignoring ``IGNORE_INDEX`` ones.

    ``x`` ``(..., d)``, ``weight`` ``(V, d)``, ``targets`` ``(...)``. The products run in the autocast
    dtype when autocast is on (as ``nn.Linear`` would), the softmax in float32.
    """
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    return _loss(x.reshape(-1, x.shape[-1]), weight, targets.reshape(-1), dtype)


@functools.cache
def _compiled_chunk():
    return torch.compile(_chunk, dynamic=False)


def _chunk(logits: torch.Tensor, targets: torch.Tensor):
    """Per chunk: the summed loss and ``∂loss/∂logits`` (in the logits' dtype) of its rows."""
    z = logits.float()
    valid = targets != IGNORE_INDEX
    safe = torch.where(valid, targets, 0)
    lse = torch.logsumexp(z, dim=-1)
    picked = z.gather(1, safe[:, None]).squeeze(1)
    loss = torch.where(valid, lse - picked, 0.0).sum()
    onehot = torch.arange(z.shape[1], device=z.device)[None, :] == safe[:, None]
    grad = torch.exp(z - lse[:, None]) - onehot.float()
    grad = torch.where(valid[:, None], grad, 0.0)
    return loss, grad.to(logits.dtype)


@torch.library.custom_op("causette::chunked_lm_loss", mutates_args=())
def _forward(
    x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns (mean loss, ∂mean/∂x, ∂mean/∂weight)."""
    xc, wc = x.to(dtype), weight.to(dtype)
    chunk = _compiled_chunk()
    total = torch.zeros((), dtype=torch.float32, device=x.device)
    dx = torch.empty_like(xc)
    dw = torch.zeros(weight.shape, dtype=torch.float32, device=x.device)
    for i in range(0, x.shape[0], ROWS_PER_CHUNK):
        rows = slice(i, i + ROWS_PER_CHUNK)
        loss, g = chunk(xc[rows] @ wc.t(), targets[rows])
        total += loss
        torch.mm(g, wc, out=dx[rows])
        dw += (g.t() @ xc[rows]).float()
    count = (targets != IGNORE_INDEX).sum().clamp(min=1).float()
    return total / count, (dx.float() / count).to(x.dtype), (dw / count).to(weight.dtype)


@_forward.register_fake
def _(x, weight, targets, dtype):
    return x.new_empty((), dtype=torch.float32), torch.empty_like(x), torch.empty_like(weight)


def _setup_context(ctx, inputs, output):
    _, dx, dw = output
    ctx.mark_non_differentiable(dx, dw)
    ctx.save_for_backward(dx, dw)


def _backward(ctx, d_loss, d_dx, d_dw):
    dx, dw = ctx.saved_tensors
    return dx * d_loss.to(dx.dtype), dw * d_loss.to(dw.dtype), None, None


_forward.register_autograd(_backward, setup_context=_setup_context)


def _loss(x, weight, targets, dtype):
    return _forward(x, weight, targets, dtype)[0]
