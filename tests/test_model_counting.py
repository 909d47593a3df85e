"""Presets, config checks, parameter counts and FLOPs per token."""

from __future__ import annotations

import itertools

import pytest
import torch

from causette.config import load_config
from causette.errors import ConfigError
from causette.model import ModelConfig, Transformer, count_params, flops_per_token, numel

PRESETS = ["gpt2", "llama", "seed16m", "demo", "moe", "gpt2-124m"]


def meta_model(cfg: ModelConfig) -> Transformer:
    with torch.device("meta"):  # shapes only: no memory, no time
        return Transformer(cfg)


@pytest.mark.parametrize("preset", PRESETS)
def test_analytic_count_equals_numel_for_each_preset(preset):
    cfg = load_config(f"model/{preset}").model
    model = meta_model(cfg)
    c = count_params(cfg)
    assert c.total == numel(model)
    embedding = model.wte.weight.numel() + (model.positions.wpe.weight.numel() if cfg.pos == "learned" else 0)
    assert c.embedding == embedding and c.non_embedding == c.total - embedding


def test_known_sizes():
    assert count_params(load_config("model/gpt2-124m").model).total == 124_439_808  # GPT-2 small
    seed = count_params(load_config("model/seed16m").model)
    assert (seed.total, seed.non_embedding) == (16_128_384, 12_982_656)
    demo = load_config("model/demo").model
    assert (demo.n_layer, demo.n_embd, demo.block_size) == (4, 256, 256)


@pytest.mark.parametrize(
    "pos,norm,mlp,bias,tie,qk,experts",
    list(
        itertools.product(
            ["learned", "rope"],
            ["layernorm", "rmsnorm"],
            ["gelu", "swiglu"],
            [False, True],
            [False, True],
            [False, True],
            [0, 3],
        )
    )[::3]
    + [("sinusoidal", "rmsnorm", "relu2", True, False, True, 2)],
)
def test_analytic_count_equals_numel_for_switch_combinations(pos, norm, mlp, bias, tie, qk, experts):
    cfg = ModelConfig(
        vocab_size=50,
        block_size=12,
        n_layer=2,
        n_head=4,
        n_kv_head=2,
        n_embd=24,
        pos=pos,
        norm=norm,
        mlp=mlp,
        bias=bias,
        tie_embeddings=tie,
        qk_norm=qk,
        n_experts=experts,
        experts_per_token=min(2, max(experts, 1)),
        moe_shared_expert=experts == 3,
    )
    assert count_params(cfg).total == numel(meta_model(cfg))


def test_swiglu_hidden_size_is_rounded_like_llama():
    assert ModelConfig(n_embd=384, mlp="swiglu").hidden_size == 1024  # 2/3·4·384 = 1024
    assert ModelConfig(n_embd=256, mlp="swiglu").hidden_size == 704  # 682.7 → next multiple of 64
    assert ModelConfig(n_embd=256, mlp="swiglu", mlp_multiple_of=256).hidden_size == 768
    assert ModelConfig(n_embd=256, mlp="gelu").hidden_size == 1024
    assert ModelConfig(n_embd=256, mlp="swiglu", mlp_hidden=100).hidden_size == 100


def test_flops_per_token_formula():
    cfg = ModelConfig(
        vocab_size=100,
        block_size=16,
        n_layer=2,
        n_head=2,
        n_embd=8,
        mlp="gelu",
        pos="learned",
        norm="rmsnorm",
        bias=False,
        tie_embeddings=True,
    )
    # Matrices per layer: qkv 8×24, proj 8×8, up 8×32, down 32×8 = 768; 2 layers; output layer 100×8.
    n_matmul = 2 * 768 + 800
    norms = 2 * 2 * 8 + 8  # counted with the non-embedding parameters (negligible in real sizes)
    attention = 12 * 2 * 2 * 4 * 16  # 12·L·H·hd·T
    assert flops_per_token(cfg) == 6 * (n_matmul + norms) + attention
    assert flops_per_token(cfg, training=False) == 2 * (n_matmul + norms) + attention / 3
    assert flops_per_token(cfg, seq_len=32) > flops_per_token(cfg)


def test_moe_flops_count_only_active_experts():
    dense = load_config("model/demo").model
    moe = load_config("model/moe").model
    c = count_params(moe)
    assert c.active < c.total
    assert flops_per_token(moe) < 6 * (c.total - c.embedding + moe.vocab_size * moe.n_embd)
    assert flops_per_token(dense) > 0


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.n_head=5", "multiple of n_head"),
        ("model.n_kv_head=4", "must divide n_head"),
        ("model.experts_per_token=9", "experts_per_token"),
        ("model.pos=alibi", "'model.pos' must be one of"),
        ("model.dropout=1.5", "dropout"),
        ("model.n_layers=2", "did you mean 'model.n_layer'"),
    ],
)
def test_bad_settings_are_clear_errors(override, message):
    extra = ["model.n_experts=4"] if "experts" in override else []
    with pytest.raises(ConfigError, match=message):
        load_config("model/llama", [*extra, override])


def test_inspection_command(capsys):
    from causette.model.__main__ import main

    assert main(["model/seed16m", "--tensors"]) == 0
    out = capsys.readouterr().out
    assert "16,128,384 total" in out and "blocks.7.mlp.down.weight" in out
    assert main(["model/llama", "--set", "model.n_head=5"]) == 1
    assert "multiple of n_head" in capsys.readouterr().err
