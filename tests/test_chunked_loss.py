"""The chunked LM-head loss (bf16, CPU) against ``F.cross_entropy`` in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from causette.model import chunked_loss
from causette.model.config import ModelConfig
from causette.model.layers import IGNORE_INDEX
from causette.model.transformer import Transformer
from causette.utils.device import cpu_compile_supported

pytestmark = pytest.mark.skipif(not cpu_compile_supported(), reason="needs a C++ compiler for torch.compile")


def _reference(x, w, targets):
    """What nn.Linear + F.cross_entropy compute, in float64 from the same bf16-rounded inputs."""
    xd, wd = x.to(torch.bfloat16).double(), w.to(torch.bfloat16).double()
    logits = xd.reshape(-1, xd.shape[-1]) @ wd.t()
    return F.cross_entropy(logits, targets.reshape(-1), ignore_index=IGNORE_INDEX)


@pytest.mark.parametrize("rows", [7, 1100])  # less than one chunk; two full chunks and a partial one
def test_loss_and_gradients_match_cross_entropy(monkeypatch, rows):
    g = torch.Generator().manual_seed(rows)
    x = torch.randn(rows, 16, generator=g, requires_grad=True)
    w = torch.randn(50, 16, generator=g, requires_grad=True)
    targets = torch.randint(0, 50, (rows,), generator=g)
    targets[::3] = IGNORE_INDEX  # masked positions (SFT prompts) count for nothing
    ref = _reference(x, w, targets)
    ref_dx, ref_dw = torch.autograd.grad(ref, (x, w))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert chunked_loss.usable(x, w)
        loss = chunked_loss.lm_head_loss(x, w, targets)
    dx, dw = torch.autograd.grad(loss * 3.0, (x, w))  # an upstream factor reaches both gradients
    assert loss.dtype == torch.float32 and dx.dtype == x.dtype and dw.dtype == w.dtype
    assert abs(float(loss) - float(ref)) < 1e-2 * float(ref)
    for r, got in ((ref_dx, dx), (ref_dw, dw)):
        assert float((3.0 * r - got.double()).norm() / (3.0 * r).norm()) < 2e-2


def test_all_targets_ignored_gives_zero_not_nan():
    x = torch.randn(4, 8, requires_grad=True)
    w = torch.randn(10, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = chunked_loss.lm_head_loss(x, w, torch.full((4,), IGNORE_INDEX))
    loss.backward()
    assert float(loss) == 0.0 and float(x.grad.abs().sum()) == 0.0


def test_only_for_bf16_training():
    x = torch.randn(4, 8)
    w = torch.randn(10, 8, requires_grad=True)
    assert not chunked_loss.usable(x, w)  # fp32: the plain cross-entropy stays the reference
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert chunked_loss.usable(x, w)
        with torch.no_grad():
            assert not chunked_loss.usable(x, w)  # evaluation wants logits anyway


def test_model_training_loss_without_logits():
    """The same weights built with and without cpu_kernels: the fused loss equals head + cross-entropy."""
    cfg = ModelConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=64, mlp_hidden=64)
    torch.manual_seed(0)
    reference = Transformer(cfg)
    fused = Transformer(cfg, cpu_kernels=True)
    fused.load_state_dict(reference.state_dict())
    idx = torch.randint(0, 64, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, plain = reference(idx, idx)
        none, chunked = fused(idx, idx)  # cpu_kernels: the loss without the logits
    assert logits.shape == (2, 16, 64) and none is None
    assert abs(float(plain) - float(chunked)) < 1e-2
    plain.backward()
    chunked.backward()
    g_plain, g = reference.wte.weight.grad, fused.wte.weight.grad  # tied: reading and writing tokens both count
    assert float((g - g_plain).norm()) < 2e-2 * float(g_plain.norm())


def test_custom_op_registration_is_consistent():
    """torch.library's own checks on the op: fake outputs match the real ones, autograd works."""
    x = torch.randn(6, 8, requires_grad=True)
    w = torch.randn(10, 8, requires_grad=True)
    targets = torch.tensor([1, 2, IGNORE_INDEX, 3, 4, 5])
    torch.library.opcheck(torch.ops.causette.chunked_lm_loss.default, (x, w, targets, torch.bfloat16))


def test_a_model_built_without_cpu_kernels_keeps_the_logits():
    cfg = ModelConfig(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=64, mlp_hidden=64)
    model = Transformer(cfg)
    idx = torch.randint(0, 64, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _ = model(idx, idx)
    assert logits is not None and logits.shape == (2, 16, 64)
