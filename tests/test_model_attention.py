"""Attention and positions: GQA against plain multi-head attention, QK-norm, RoPE's properties.

Tolerances: fp32, atol 1e-5 (explicit softmax attention vs SDPA's fused kernel).
"""

from __future__ import annotations

import math

import pytest
import torch

from causette.model import CausalSelfAttention, ModelConfig
from causette.model.layers import Rotary, apply_rope, rope_tables, sinusoidal_table


def reference_attention(x, attn: CausalSelfAttention, rope=None):
    """Multi-head causal attention written out: one key/value head per query head (kv repeated)."""
    B, T, _ = x.shape
    H, K, hd = attn.n_head, attn.n_kv_head, attn.head_dim
    q, k, v = attn.qkv(x).split([H * hd, K * hd, K * hd], dim=-1)
    q = q.view(B, T, H, hd).transpose(1, 2)
    k = k.view(B, T, K, hd).transpose(1, 2).repeat_interleave(H // K, dim=1)
    v = v.view(B, T, K, hd).transpose(1, 2).repeat_interleave(H // K, dim=1)
    if attn.q_norm is not None:
        q = q * torch.rsqrt(q.pow(2).mean(-1, keepdim=True) + 1e-5) * attn.q_norm.weight
        k = k * torch.rsqrt(k.pow(2).mean(-1, keepdim=True) + 1e-5) * attn.k_norm.weight
    if rope is not None:
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
    scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    y = scores.softmax(-1) @ v
    return attn.proj(y.transpose(1, 2).reshape(B, T, H * hd))


def make(n_kv_head, **kw):
    torch.manual_seed(0)
    cfg = ModelConfig(n_embd=48, n_head=6, n_kv_head=n_kv_head, block_size=16, **kw)
    attn = CausalSelfAttention(cfg, 0).eval()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.2) if p.dim() > 1 else p.uniform_(0.5, 1.5)
    return cfg, attn


@pytest.mark.parametrize("n_kv_head", [None, 6, 3, 2, 1])
@pytest.mark.parametrize("qk_norm", [False, True])
def test_attention_equals_explicit_multi_head_attention(n_kv_head, qk_norm):
    cfg, attn = make(n_kv_head, qk_norm=qk_norm)
    x = torch.randn(2, 11, 48)
    rope = Rotary(cfg)(11)
    torch.testing.assert_close(attn(x, rope), reference_attention(x, attn, rope), atol=1e-5, rtol=0)


def test_gqa_equals_mha_with_shared_key_value_heads():
    """A GQA layer is an MHA layer whose key/value heads are copied across each group."""
    _, gqa = make(2)
    _, mha = make(None)  # n_kv_head = n_head = 6
    H, K, hd = 6, 2, 8
    with torch.no_grad():
        q, k, v = gqa.qkv.weight.split([H * hd, K * hd, K * hd])
        rep = lambda w: w.view(K, hd, -1).repeat_interleave(H // K, dim=0).reshape(H * hd, -1)  # noqa: E731
        mha.qkv.weight.copy_(torch.cat([q, rep(k), rep(v)]))
        mha.proj.weight.copy_(gqa.proj.weight)
    x = torch.randn(2, 9, 48)
    torch.testing.assert_close(gqa(x), mha(x), atol=1e-5, rtol=0)


def test_qk_norm_gives_unit_rms_queries_before_scaling():
    cfg, attn = make(None, qk_norm=True)
    with torch.no_grad():
        attn.q_norm.weight.fill_(1.0)
    q = torch.randn(2, 6, 5, 8) * 30
    assert torch.allclose(attn.q_norm(q).pow(2).mean(-1), torch.ones(2, 6, 5), atol=1e-4)


# ----------------------------------------------------------------------------- RoPE


def test_rope_matches_complex_rotation():
    """Independent reference: pair (x_i, x_{i+hd/2}) as a complex number times e^{i·p·θ_i}."""
    hd, T = 16, 12
    cos, sin = rope_tables(T, hd, theta=10000.0)
    x = torch.randn(2, 3, T, hd)
    z = torch.complex(x[..., : hd // 2].double(), x[..., hd // 2 :].double())
    theta = 10000.0 ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * theta
    rotated = z * torch.polar(torch.ones_like(angles), angles)
    expected = torch.cat([rotated.real, rotated.imag], dim=-1).float()
    torch.testing.assert_close(apply_rope(x, cos, sin), expected, atol=1e-5, rtol=0)


def test_rope_scores_depend_only_on_relative_position():
    hd = 32
    cos, sin = rope_tables(256, hd)
    q, k = torch.randn(hd), torch.randn(hd)

    def score(m, n):  # query at position m, key at position n
        qm = apply_rope(q.view(1, 1, 1, hd), cos[m : m + 1], sin[m : m + 1])
        kn = apply_rope(k.view(1, 1, 1, hd), cos[n : n + 1], sin[n : n + 1])
        return (qm * kn).sum().item()

    for delta in (0, 1, 5, 37):
        scores = [score(n + delta, n) for n in (0, 3, 50, 200)]
        assert max(scores) - min(scores) < 1e-4, (delta, scores)
    assert abs(score(10, 0) - score(10, 9)) > 1e-3  # different distances do differ
    # A rotation keeps lengths.
    rotated = apply_rope(q.view(1, 1, 1, hd), cos[77:78], sin[77:78])
    torch.testing.assert_close(rotated.norm(), q.norm())


def test_rope_tables_sliced_at_an_offset_equal_a_longer_run():
    cfg = ModelConfig(n_embd=32, n_head=2, block_size=64)
    rotary = Rotary(cfg)
    x = torch.randn(1, 2, 40, 16)
    full = apply_rope(x, *rotary(40))
    part = apply_rope(x[:, :, 25:], *rotary(15, offset=25))
    torch.testing.assert_close(part, full[:, :, 25:])


def test_sinusoidal_table_formula():
    table = sinusoidal_table(50, 16)
    p, i = 37, 3
    assert table[p, 2 * i].item() == pytest.approx(math.sin(p / 10000 ** (2 * i / 16)), abs=1e-6)
    assert table[p, 2 * i + 1].item() == pytest.approx(math.cos(p / 10000 ** (2 * i / 16)), abs=1e-6)
