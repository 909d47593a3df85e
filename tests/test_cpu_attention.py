"""The bf16 CPU attention path (flash forward + our tiled backward) against SDPA in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from causette.model import cpu_attention
from causette.model.config import ModelConfig
from causette.model.transformer import Transformer
from causette.utils.device import cpu_compile_supported

pytestmark = pytest.mark.skipif(not cpu_compile_supported(), reason="needs a C++ compiler for torch.compile")


def _qkv(B, H, KV, T, D, seed=0):
    g = torch.Generator().manual_seed(seed)

    def make(heads):  # (B, T, heads, D) memory seen as (B, heads, T, D), as the model makes them
        x = torch.randn(B, T, heads, D, generator=g).to(torch.bfloat16)
        return x.transpose(1, 2).requires_grad_()

    return make(H), make(KV), make(KV), torch.randn(B, H, T, D, generator=g).to(torch.bfloat16)


def _rel(ref, got):
    return float((ref - got.double()).norm() / ref.norm())


@pytest.mark.parametrize(
    "B,H,KV,T,D",
    [
        (3, 4, 2, 19, 8),  # GQA, a length that is no power of two, 6 pairs: one partial tile
        (2, 2, 2, 16, 16),  # plain multi-head attention
        (9, 3, 1, 8, 4),  # multi-query attention, 9 pairs: two tiles
    ],
)
def test_values_and_gradients_match_sdpa(B, H, KV, T, D):
    q, k, v, go = _qkv(B, H, KV, T, D)
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=True, enable_gqa=H != KV)
    ref_grads = torch.autograd.grad(ref, (q, k, v), go.double())
    assert cpu_attention.usable(q)
    out = cpu_attention.causal_attention(q, k, v)
    grads = torch.autograd.grad(out, (q, k, v), go)
    bf16 = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=H != KV)
    bf16_grads = torch.autograd.grad(bf16, (q, k, v), go)

    assert out.dtype == torch.bfloat16 and out.shape == (B, H, T, D)
    assert _rel(ref, out) < 1e-2
    for name, r, ours, theirs in zip("qkv", ref_grads, grads, bf16_grads):
        assert ours.shape == r.shape, name
        # as close to float64 as PyTorch's own bf16 kernel is, to within a bf16 rounding step
        assert _rel(r, ours) < max(2 * _rel(r, theirs), 1e-2), name


def test_not_used_outside_bf16_training():
    q, k, v, _ = _qkv(1, 2, 2, 4, 4)
    assert not cpu_attention.usable(q.detach())  # no gradient wanted: SDPA's forward is enough
    assert not cpu_attention.usable(q.float())  # fp32 training keeps SDPA (exact resume tests)


def test_model_gradients_with_and_without_the_path(monkeypatch):
    cfg = ModelConfig(n_layer=2, n_head=4, n_kv_head=2, n_embd=32, block_size=24, vocab_size=64, mlp_hidden=64)
    torch.manual_seed(0)
    model = Transformer(cfg, cpu_kernels=True)
    idx = torch.randint(0, 64, (3, 24))

    def grads():
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _, loss = model(idx, idx)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    calls = []
    real = cpu_attention.causal_attention
    monkeypatch.setattr(cpu_attention, "causal_attention", lambda *a: calls.append(1) or real(*a))
    loss_ours, ours = grads()
    assert len(calls) == cfg.n_layer
    monkeypatch.setattr(cpu_attention, "usable", lambda q: False)
    loss_sdpa, sdpa = grads()
    assert len(calls) == cfg.n_layer  # not called again
    assert abs(float(loss_ours) - float(loss_sdpa)) < 1e-3
    for a, b in zip(ours, sdpa):
        assert float((a - b).norm()) <= 2e-2 * float(b.norm()) + 1e-6


def test_the_path_is_chosen_when_the_model_is_built():
    """Only a model built with cpu_kernels=True (pretraining with train.compile on) takes the path."""
    idx = torch.randint(0, 16, (2, 4))
    for flag in (False, True):
        torch.manual_seed(0)
        model = Transformer(ModelConfig(n_layer=1, n_head=2, n_embd=8, block_size=4, vocab_size=16, mlp_hidden=16),
                            cpu_kernels=flag)
        calls = []
        real = cpu_attention.causal_attention
        cpu_attention.causal_attention = lambda *a: calls.append(1) or real(*a)
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                model(idx, idx)[1].backward()
        finally:
            cpu_attention.causal_attention = real
        assert len(calls) == (1 if flag else 0)


def test_custom_op_registration_is_consistent():
    """torch.library's own checks: fake (shape-only) outputs match the real ones, autograd is
    registered, and the op survives torch.compile's tracing."""
    q, k, v, _ = _qkv(2, 4, 2, 8, 8)
    torch.library.opcheck(torch.ops.causette.cpu_causal_attention.default, (q, k, v))
