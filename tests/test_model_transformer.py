"""The Transformer as a whole, for every family: causality, gradients, loss, init, overfitting.

Tolerances: fp32 everywhere, atol 1e-5 for "unchanged" logits (the same operations on the same
rows; only the summation order of a few kernels may differ).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from causette.config import load_config
from causette.errors import CausetteError
from causette.model import IGNORE_INDEX, Transformer

SIZE = ["model.n_layer=2", "model.n_embd=32", "model.n_head=4", "model.vocab_size=64", "model.block_size=32"]
# Each family from its preset file, shrunk; the last one turns on every other switch.
FAMILIES = {
    "gpt2": ("gpt2", []),
    "llama": ("llama", ["model.n_kv_head=2"]),
    "moe": ("moe", ["model.n_kv_head=2", "model.n_experts=4", "model.mlp_hidden=48"]),
    "other-switches": (
        "llama",
        [
            "model.pos=sinusoidal",
            "model.mlp=relu2",
            "model.qk_norm=true",
            "model.logit_softcap=5.0",
            "model.n_kv_head=1",
            "model.tie_embeddings=false",
            "model.bias=true",
            "model.norm=layernorm",
        ],
    ),
}


def tiny(family: str, *overrides: str):
    preset, extra = FAMILIES[family]
    return load_config(f"model/{preset}", [*SIZE, *extra, *overrides]).model


def build(family: str, *overrides: str, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(tiny(family, *overrides))


@pytest.mark.parametrize("family", FAMILIES)
def test_causality(family):
    model = build(family).eval()
    idx = torch.randint(0, 64, (2, 24), generator=torch.Generator().manual_seed(1))
    logits, _ = model(idx)
    assert logits.shape == (2, 24, 64)
    for t in (0, 7, 22):
        changed = idx.clone()
        changed[:, t + 1 :] = (
            changed[:, t + 1 :] + 1 + torch.arange(changed[:, t + 1 :].numel()).view(2, -1)
        ) % 64
        new, _ = model(changed)
        torch.testing.assert_close(new[:, : t + 1], logits[:, : t + 1], atol=1e-5, rtol=0)
        assert (new[:, t + 1 :] - logits[:, t + 1 :]).abs().max() > 1e-3  # the future did change


@pytest.mark.parametrize("family", FAMILIES)
def test_every_parameter_gets_a_gradient(family):
    model = build(family, "model.dropout=0.1").train()
    idx = torch.randint(0, 64, (4, 32), generator=torch.Generator().manual_seed(2))
    _, loss = model(idx, idx.roll(-1, dims=1))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{name} got a zero gradient"


@pytest.mark.parametrize("family", ["llama", "moe", "gpt2"])
def test_tiny_model_overfits_one_batch(family):
    model = build(family, "model.n_embd=64").train()
    idx = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(3))
    targets = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    for _ in range(120):
        _, loss = model(idx, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert model.last_stats["lm_loss"] < 0.05, f"{family}: loss stayed at {model.last_stats['lm_loss']:.3f}"


def test_loss_is_mean_cross_entropy_over_unmasked_targets():
    model = build("llama").eval()
    idx = torch.randint(0, 64, (2, 10), generator=torch.Generator().manual_seed(5))
    targets = idx.roll(-1, dims=1)
    logits, loss = model(idx, targets)
    torch.testing.assert_close(loss, F.cross_entropy(logits.view(-1, 64), targets.view(-1)))
    assert model.last_stats["lm_loss"] == loss  # dense model: no auxiliary term

    masked = targets.clone()
    masked[:, :6] = IGNORE_INDEX  # e.g. the prompt of an SFT example
    _, loss_masked = model(idx, masked)
    expected = F.cross_entropy(logits[:, 6:].reshape(-1, 64), targets[:, 6:].reshape(-1))
    torch.testing.assert_close(loss_masked, expected)

    _, loss_none = model(idx, torch.full_like(targets, IGNORE_INDEX))
    assert loss_none.item() == 0.0  # not NaN


def test_logit_softcap_bounds_logits():
    model = build("llama", "model.logit_softcap=2.0").eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(100.0)  # huge raw logits
    logits, _ = model(torch.randint(0, 64, (1, 8)))
    assert logits.abs().max() <= 2.0
    assert logits.abs().max() > 1.9  # and they do reach towards the cap


def test_last_only_and_no_targets():
    model = build("gpt2").eval()
    idx = torch.randint(0, 64, (3, 9))
    full, loss = model(idx)
    last = model.logits(idx, last_only=True)
    assert loss is None and last.shape == (3, 1, 64)
    torch.testing.assert_close(last[:, 0], full[:, -1])
    torch.testing.assert_close(model.logits(idx), full)
    targets = torch.randint(0, 64, (3, 9))
    torch.testing.assert_close(model.loss(idx, targets), model(idx, targets)[1])


def test_dropout_only_in_training():
    model = build("gpt2", "model.dropout=0.2")
    idx = torch.randint(0, 64, (2, 12))
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0])
    model.eval()
    assert torch.equal(model(idx)[0], model(idx)[0])


def test_too_long_sequence_is_a_clear_error():
    model = build("llama")
    with pytest.raises(CausetteError, match="block_size 32"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_initialisation_follows_gpt2_rules():
    torch.manual_seed(0)
    cfg = load_config("model/gpt2", ["model.n_layer=8", "model.n_embd=256", "model.n_head=4"]).model
    model = Transformer(cfg)
    resid = 0.02 / math.sqrt(2 * 8)
    for name, p in model.named_parameters():
        if name.endswith(("attn.proj.weight", "down.weight")):
            assert abs(p.std().item() - resid) < 0.1 * resid, name
        elif p.dim() == 2:
            assert abs(p.std().item() - 0.02) < 0.002, name
        elif name.endswith("bias"):
            assert torch.all(p == 0), name
        else:
            assert torch.all(p == 1), name
    assert model.lm_head.weight is model.wte.weight  # tied: one matrix


def test_untied_output_layer_is_its_own_parameter():
    model = build("llama", "model.tie_embeddings=false")
    assert model.lm_head.weight is not model.wte.weight
    assert not torch.equal(model.lm_head.weight, model.wte.weight)


@pytest.mark.parametrize("family", ["llama", "moe"])
def test_bf16_autocast_is_close_to_fp32(family):
    model = build(family).eval()
    idx = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(6))
    ref, ref_loss = model(idx, idx)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, low_loss = model(idx, idx)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.1  # bf16 keeps ~3 significant digits
    assert abs(low_loss.item() - ref_loss.item()) < 0.02
