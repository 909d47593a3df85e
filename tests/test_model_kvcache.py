"""KV cache: prefill then one token at a time gives the logits of one full forward pass.

Tolerance: fp32, atol 1e-5 (same weights, different matrix shapes: only rounding differs);
bf16 autocast decoding is compared with bf16 full forward at atol 0.1.
"""

from __future__ import annotations

import pytest
import torch

from causette.config import load_config
from causette.errors import CausetteError
from causette.model import Transformer

SIZE = [
    "model.n_layer=2",
    "model.n_embd=32",
    "model.n_head=4",
    "model.vocab_size=64",
    "model.block_size=32",
    "model.init_std=0.2",
]  # larger weights than usual: sharper attention, stricter comparisons
FAMILIES = {
    "gpt2": ("gpt2", []),
    "llama": ("llama", ["model.n_kv_head=2"]),
    "moe": ("moe", ["model.n_kv_head=2", "model.n_experts=4"]),
    "sinusoidal-mqa-qknorm": ("llama", ["model.pos=sinusoidal", "model.n_kv_head=1", "model.qk_norm=true"]),
    "gpt2-rope-relu2-softcap": ("gpt2", ["model.pos=rope", "model.mlp=relu2", "model.logit_softcap=3.0"]),
}


def build(family: str) -> Transformer:
    preset, extra = FAMILIES[family]
    torch.manual_seed(0)
    return Transformer(load_config(f"model/{preset}", [*SIZE, *extra]).model).eval()


def decode(model, idx, prefill: int, chunks=()):
    """Logits for ``idx`` via the cache: a prefill, optional chunks, then one token per step."""
    cache = model.new_cache(idx.shape[0])
    outs = [model(idx[:, :prefill], cache=cache)[0]]
    t = prefill
    for size in chunks:
        outs.append(model(idx[:, t : t + size], cache=cache)[0])
        t += size
    while t < idx.shape[1]:
        outs.append(model(idx[:, t : t + 1], cache=cache)[0])
        t += 1
    assert cache.pos == idx.shape[1]
    return torch.cat(outs, dim=1), cache


@pytest.mark.parametrize("family", FAMILIES)
@torch.no_grad()
def test_cached_decoding_equals_full_forward(family):
    model = build(family)
    idx = torch.randint(0, 64, (3, 32), generator=torch.Generator().manual_seed(1))  # batch of 3, full block
    full, _ = model(idx)
    cached, _ = decode(model, idx, prefill=5)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["llama", "gpt2", "moe"])
@torch.no_grad()
def test_chunked_prefill_on_a_filled_cache(family):
    model = build(family)
    idx = torch.randint(0, 64, (2, 20), generator=torch.Generator().manual_seed(2))
    full, _ = model(idx)
    cached, _ = decode(model, idx, prefill=4, chunks=(6, 1, 3))
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)


@torch.no_grad()
def test_reset_starts_over_and_rows_are_independent():
    model = build("llama")
    idx = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(3))
    first, cache = decode(model, idx, prefill=3)
    cache.reset()
    assert cache.pos == 0
    again = torch.cat([model(idx[:, :8], cache=cache)[0], model(idx[:, 8:], cache=cache)[0]], dim=1)
    torch.testing.assert_close(again, first, atol=1e-5, rtol=0)
    # Row 1 alone through its own cache gives the same logits as inside the batch.
    alone, _ = decode(model, idx[1:], prefill=3)
    torch.testing.assert_close(alone[0], first[1], atol=1e-5, rtol=0)


@torch.no_grad()
def test_last_only_with_cache():
    model = build("llama")
    idx = torch.randint(0, 64, (2, 10))
    full, _ = model(idx)
    cache = model.new_cache(2)
    last = model.logits(idx[:, :7], cache=cache, last_only=True)
    torch.testing.assert_close(last[:, 0], full[:, 6], atol=1e-5, rtol=0)
    step = model.logits(idx[:, 7:8], cache=cache, last_only=True)
    torch.testing.assert_close(step[:, 0], full[:, 7], atol=1e-5, rtol=0)


def test_cache_errors_are_clear():
    model = build("llama")
    cache = model.new_cache(2, max_len=8)
    assert len(cache.k) == len(cache.v) == 2  # one tensor per layer
    assert cache.k[0].shape == (2, 2, 8, 8)  # (batch, kv heads, max_len, head_dim): GQA stores 2 heads
    with pytest.raises(CausetteError, match="batch size 2"):
        model(torch.zeros(3, 4, dtype=torch.long), cache=cache)
    model(torch.zeros(2, 6, dtype=torch.long), cache=cache)
    with pytest.raises(CausetteError, match="KV cache full"):
        model(torch.zeros(2, 3, dtype=torch.long), cache=cache)


@torch.no_grad()
def test_bf16_cache_under_autocast():
    model = build("llama")
    idx = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        full, _ = model(idx)
        cache = model.new_cache(2, dtype=torch.bfloat16)
        outs = [model(idx[:, :4], cache=cache)[0]] + [
            model(idx[:, t : t + 1], cache=cache)[0] for t in range(4, 16)
        ]
    assert cache.dtype == torch.bfloat16 and cache.k[1].dtype == torch.bfloat16
    assert (torch.cat(outs, 1).float() - full.float()).abs().max() < 0.1
