"""Mixture-of-Experts: routing, dispatch, shared expert, auxiliary losses, statistics.

Tolerances: fp32, atol 1e-5 against per-token reference loops and against the dense MLP.
"""

from __future__ import annotations

import pytest
import torch

from causette.config import load_config
from causette.model import MLP, ModelConfig, MoE, Transformer

SIZE = [
    "model.n_layer=2",
    "model.n_embd=32",
    "model.n_head=4",
    "model.n_kv_head=2",
    "model.vocab_size=64",
    "model.block_size=32",
]


def moe_cfg(**kw) -> ModelConfig:
    base = dict(n_embd=32, n_head=4, n_experts=4, experts_per_token=2, mlp_hidden=48)
    return ModelConfig(**{**base, **kw})


@pytest.mark.parametrize("mlp", ["swiglu", "gelu", "relu2"])
def test_one_expert_equals_the_dense_mlp(mlp):
    torch.manual_seed(0)
    cfg = moe_cfg(n_experts=1, experts_per_token=1, mlp=mlp, bias=True)
    dense, moe = MLP(cfg), MoE(cfg)
    moe.experts[0].load_state_dict(dense.state_dict())
    x = torch.randn(3, 7, 32)
    out, stats = moe(x)
    torch.testing.assert_close(out, dense(x), atol=1e-5, rtol=0)
    assert stats["load"].tolist() == [1.0] and stats["aux"].item() == pytest.approx(1.0)


def test_one_expert_model_equals_dense_model():
    torch.manual_seed(0)
    dense = Transformer(load_config("model/llama", SIZE).model).eval()
    moe = Transformer(
        load_config("model/llama", [*SIZE, "model.n_experts=1", "model.experts_per_token=1"]).model
    ).eval()
    state = {k.replace(".mlp.", ".mlp.experts.0."): v for k, v in dense.state_dict().items()}
    missing, unexpected = moe.load_state_dict(state, strict=False)
    assert all(k.endswith("router.weight") for k in missing) and not unexpected
    idx = torch.randint(0, 64, (2, 12))
    torch.testing.assert_close(moe(idx)[0], dense(idx)[0], atol=1e-5, rtol=0)


def test_dispatch_equals_a_per_token_loop_and_weights_are_renormalised():
    torch.manual_seed(0)
    moe = MoE(moe_cfg(n_experts=5, experts_per_token=3, moe_shared_expert=True))
    with torch.no_grad():
        moe.router.weight.normal_(0, 1.0)  # decisive routing
    x = torch.randn(2, 9, 32)
    out, _ = moe(x)

    logits, experts, weights = moe.route(x.reshape(-1, 32))
    torch.testing.assert_close(weights.sum(-1), torch.ones(18))
    probs = logits.softmax(-1)
    assert torch.equal(experts.sort(-1).values, probs.topk(3, dim=-1).indices.sort(-1).values)
    chosen = probs.gather(1, experts)
    torch.testing.assert_close(weights, chosen / chosen.sum(-1, keepdim=True))

    expected = []
    for n, token in enumerate(x.reshape(-1, 32)):  # the slow, obvious way
        y = moe.shared(token)
        for j in range(3):
            y = y + weights[n, j] * moe.experts[experts[n, j]](token)
        expected.append(y)
    torch.testing.assert_close(out.reshape(-1, 32), torch.stack(expected), atol=1e-5, rtol=0)


def _aux_for_router(preferred: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Aux loss when token n strongly prefers expert ``preferred[n]``."""
    torch.manual_seed(0)
    moe = MoE(moe_cfg(n_experts=4, experts_per_token=1))
    x = torch.nn.functional.one_hot(preferred, 32).float()[None] * 5.0  # token n = basis vector
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[:, :4] = torch.eye(4) * 2.0  # basis vector e → expert e
    _, stats = moe(x)
    return stats["aux"].item(), stats["load"]


def test_aux_loss_is_larger_for_an_unbalanced_router():
    balanced, load_b = _aux_for_router(torch.arange(64) % 4)
    unbalanced, load_u = _aux_for_router(torch.zeros(64, dtype=torch.long))
    assert load_b.tolist() == [0.25] * 4 and load_u.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert balanced == pytest.approx(1.0, abs=1e-5)  # the minimum: uniform load
    assert unbalanced > 3.0 > balanced  # approaches n_experts = 4


def test_z_loss_and_total_loss():
    torch.manual_seed(0)
    model = Transformer(load_config("model/moe", SIZE).model)
    idx = torch.randint(0, 64, (2, 16))
    _, loss = model(idx, idx)
    s = model.last_stats
    cfg = model.cfg
    torch.testing.assert_close(
        loss, s["lm_loss"] + cfg.moe_aux_coef * s["moe_aux"] + cfg.moe_z_coef * s["moe_z"]
    )
    assert s["expert_load"].shape == (2, 8)
    torch.testing.assert_close(s["expert_load"].sum(-1), torch.ones(2))

    moe = model.blocks[0].mlp
    x = torch.randn(1, 5, 32)
    _, stats = moe(x)
    logits = moe.router(x.reshape(-1, 32))
    torch.testing.assert_close(stats["z"], torch.logsumexp(logits, -1).square().mean())
    # Switch Transformer's balance loss: n_experts · Σ_e (share of assignments to e) · (mean prob. of e).
    chosen = logits.topk(2, dim=-1).indices.reshape(-1)
    share = torch.bincount(chosen, minlength=8).float() / chosen.numel()
    torch.testing.assert_close(stats["load"], share)
    torch.testing.assert_close(stats["aux"], 8 * (share * logits.softmax(-1).mean(0)).sum())


def test_aux_loss_trains_the_router():
    torch.manual_seed(0)
    moe = MoE(moe_cfg())
    _, stats = moe(torch.randn(2, 8, 32))
    (stats["aux"] + stats["z"]).backward()
    assert moe.router.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in moe.experts.parameters())  # only the router is concerned


def test_moe_preset_counts_active_parameters():
    from causette.model import count_params

    cfg = load_config("model/moe").model
    c = count_params(cfg)
    one = 3 * cfg.n_embd * cfg.hidden_size  # one SwiGLU expert
    assert c.total - c.active == cfg.n_layer * (cfg.n_experts - cfg.experts_per_token) * one
