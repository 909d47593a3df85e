"""Reference check: our logits equal those of Hugging Face ``transformers`` with the same weights.

The HF models are built from a config object (never downloaded), our weights copied in through
causette/model/hf_reference.py. Tolerance: fp32, atol 1e-4 on logits of size ~1 (observed
differences are ~1e-7: only the order of floating-point sums differs).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from causette.config import load_config
from causette.model import Transformer
from causette.model import hf_reference as hf_ref

transformers = pytest.importorskip("transformers")

SIZE = [
    "model.n_layer=2",
    "model.n_embd=64",
    "model.n_head=4",
    "model.vocab_size=96",
    "model.block_size=32",
    "model.init_std=0.1",
]  # larger weights than usual: sharper attention, stricter comparison
ATOL = 1e-4


def ours(preset: str, *overrides: str) -> Transformer:
    torch.manual_seed(0)
    model = Transformer(load_config(f"model/{preset}", [*SIZE, *overrides]).model).eval()
    with torch.no_grad():  # norm scales away from 1 so that a mix-up would show
        for p in model.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    return model


def compare(model, hf_model):
    idx = torch.randint(0, 96, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = hf_model(idx).logits
        got, _ = model(idx)
    assert expected.abs().max() > 0.1  # not trivially small
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.n_kv_head=2"],  # GQA, tied
        ["model.n_kv_head=4", "model.tie_embeddings=false", "model.rope_theta=500.0", "model.norm_eps=1e-6"],
        ["model.n_kv_head=1", "model.mlp_hidden=80"],  # multi-query, explicit hidden size
    ],
)
def test_llama_family_matches_transformers(overrides):
    model = ours("llama", *overrides)
    hf_model = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**hf_ref.llama_config(model.cfg))
    ).eval()
    hf_model.load_state_dict(hf_ref.llama_state_dict(model), strict=True)
    compare(model, hf_model)


def test_qk_norm_matches_qwen3():
    """Qwen3 is the Llama architecture plus an RMSNorm on each head's queries and keys."""
    model = ours("llama", "model.n_kv_head=2", "model.qk_norm=true")
    kwargs = hf_ref.llama_config(dataclasses.replace(model.cfg, qk_norm=False))
    hf_model = transformers.Qwen3ForCausalLM(transformers.Qwen3Config(**kwargs)).eval()
    state = hf_ref.llama_state_dict(model)
    for i, block in enumerate(model.blocks):
        state[f"model.layers.{i}.self_attn.q_norm.weight"] = block.attn.q_norm.weight.detach().clone()
        state[f"model.layers.{i}.self_attn.k_norm.weight"] = block.attn.k_norm.weight.detach().clone()
    hf_model.load_state_dict(state, strict=True)
    compare(model, hf_model)


@pytest.mark.parametrize("overrides", [[], ["model.n_layer=3", "model.norm_eps=1e-6"]])
def test_gpt2_family_matches_transformers(overrides):
    model = ours("gpt2", *overrides)
    config = transformers.GPT2Config(**hf_ref.gpt2_config(model.cfg), bos_token_id=None, eos_token_id=None)
    hf_model = transformers.GPT2LMHeadModel(config).eval()
    missing, unexpected = hf_model.load_state_dict(hf_ref.gpt2_state_dict(model), strict=False)
    assert not unexpected and all(
        k.endswith(".attn.bias") for k in missing
    )  # HF's causal-mask buffers, if any
    compare(model, hf_model)


def test_mapping_refuses_other_switches():
    with pytest.raises(ValueError, match="LlamaForCausalLM needs"):
        hf_ref.llama_config(ours("gpt2").cfg)
    with pytest.raises(ValueError, match="GPT2LMHeadModel needs"):
        hf_ref.gpt2_config(ours("llama").cfg)
