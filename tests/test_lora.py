"""LoRA (causette/model/lora.py): a fresh adapter changes nothing, merging changes nothing, only the
adapter learns, and the adapter file is a small fraction of the model file."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from causette.checkpoint.weights import save_model
from causette.errors import CausetteError
from causette.model.config import LoRAConfig, ModelConfig
from causette.model.lora import LoRALinear, adapter_state, apply_lora, load_adapter_state, merge_lora
from causette.model.transformer import Transformer

# Merged and unmerged outputs differ only by float32 rounding: W x + s·B(A x) against (W + s·B A) x.
MERGE_ATOL = 1e-5


def tiny(**kw) -> Transformer:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=96, block_size=16, n_layer=2, n_head=2, n_kv_head=1, n_embd=32, mlp_hidden=64, **kw)
    return Transformer(cfg).eval()


def tokens(seed: int = 1, shape=(3, 12)) -> torch.Tensor:
    return torch.randint(0, 96, shape, generator=torch.Generator().manual_seed(seed))


def randomise_adapter(model: nn.Module, seed: int = 2) -> None:
    """A trained adapter has B ≠ 0; fill A and B with noise to stand for one."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_A.copy_(torch.randn(m.lora_A.shape, generator=g) * 0.2)
                m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * 0.2)


def test_fresh_adapter_leaves_outputs_unchanged():
    model = tiny()
    x = tokens()
    before = model(x)[0]
    wrapped = apply_lora(model, LoRAConfig(r=4, alpha=8))
    assert len(wrapped) == 2 * 4  # qkv, proj, up, down in each of the 2 blocks
    after = model(x)[0]
    assert torch.equal(before, after)  # B = 0: the correction is exactly zero


def test_merged_equals_unmerged():
    model = tiny()
    apply_lora(model, LoRAConfig(r=4, alpha=8))
    randomise_adapter(model)
    x = tokens()
    unmerged = model(x)[0]
    assert not torch.allclose(unmerged, tiny()(x)[0], atol=1e-3)  # the adapter does change outputs
    merged = merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in merged.modules())
    assert not any(".lora_" in k for k in merged.state_dict())  # a plain model again
    torch.testing.assert_close(merged(x)[0], unmerged, atol=MERGE_ATOL, rtol=0)


def test_only_adapter_parameters_receive_gradients():
    model = tiny().train()
    apply_lora(model, LoRAConfig(r=2, alpha=4, targets=["qkv", "down"]))
    randomise_adapter(model)  # with B = 0 the gradient of A would be zero as well
    x = tokens()
    _, loss = model(x[:, :-1], x[:, 1:])
    loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert with_grad == trainable
    assert with_grad and all(n.endswith((".lora_A", ".lora_B")) for n in with_grad)
    assert {n.rsplit(".", 2)[-2] for n in with_grad} == {"qkv", "down"}
    assert all(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if p.grad is not None)


def test_training_moves_the_adapter_only():
    model = tiny().train()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    apply_lora(model, LoRAConfig(r=4, alpha=8))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x = tokens()
    first = None
    for _ in range(10):
        _, loss = model(x[:, :-1], x[:, 1:])
        first = first if first is not None else float(loss.detach())
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert float(loss.detach()) < first
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in base.items())  # base weights untouched
    assert any(state[k].abs().sum() > 0 for k in state if k.endswith("lora_B"))


def test_adapter_file_is_small_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=512, block_size=64, n_layer=2, n_head=4, n_embd=128)).eval()
    save_model(model, tmp_path / "base")
    apply_lora(model, LoRAConfig(r=4, alpha=8))
    randomise_adapter(model)
    save_file(adapter_state(model), str(tmp_path / "adapter.safetensors"))
    model_bytes = (tmp_path / "base" / "model.safetensors").stat().st_size
    adapter_bytes = (tmp_path / "adapter.safetensors").stat().st_size
    assert adapter_bytes < 0.05 * model_bytes, (adapter_bytes, model_bytes)

    again = Transformer(model.cfg).eval()
    again.load_state_dict({k: v for k, v in model.state_dict().items() if ".lora_" not in k}, strict=False)
    apply_lora(again, LoRAConfig(r=4, alpha=8))
    load_adapter_state(again, load_file(str(tmp_path / "adapter.safetensors")))
    x = torch.randint(0, 512, (2, 20))
    assert torch.equal(again(x)[0], model(x)[0])


def test_adapter_that_does_not_fit_is_refused():
    model = tiny()
    apply_lora(model, LoRAConfig(r=4, alpha=8))
    state = adapter_state(model)
    other = tiny()
    apply_lora(other, LoRAConfig(r=2, alpha=8))
    with pytest.raises(CausetteError, match="shape"):
        load_adapter_state(other, state)
    one_layer = tiny()
    apply_lora(one_layer, LoRAConfig(r=4, alpha=8, targets=["qkv"]))
    with pytest.raises(CausetteError, match="does not match"):
        load_adapter_state(one_layer, state)
    with pytest.raises(CausetteError, match="rank"):
        apply_lora(tiny(), LoRAConfig(r=0))


def test_moe_experts_are_adapted_and_merge_exactly():
    model = tiny(n_experts=4, experts_per_token=2)
    x = tokens()
    before = model(x)[0]
    wrapped = apply_lora(model, LoRAConfig(r=2, alpha=4, targets=["up", "down"]))
    assert sum(".experts." in w for w in wrapped) == 2 * 4 * 2  # 2 layers × 4 experts × (up, down)
    assert not any("router" in w for w in wrapped)
    assert torch.equal(model(x)[0], before)
    randomise_adapter(model)
    unmerged = model(x)[0]
    torch.testing.assert_close(merge_lora(model)(x)[0], unmerged, atol=MERGE_ATOL, rtol=0)


def test_scale_is_alpha_over_r():
    layer = nn.Linear(8, 6, bias=True)
    lora = LoRALinear(layer, r=2, alpha=6.0)
    assert lora.scale == 3.0
    with torch.no_grad():
        lora.lora_B.fill_(0.5)
    x = torch.randn(4, 8)
    expected = layer(x) + 3.0 * (x @ lora.lora_A.T) @ lora.lora_B.T
    torch.testing.assert_close(lora(x), expected)
