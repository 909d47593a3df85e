"""Sliding-window attention (``model.sliding_window = N``): each token sees itself and the N-1
previous tokens. Checked against attention written by hand with a band mask, against full
attention when the window covers the whole context, through the KV cache (one token at a time
and chunked prefill), the static decode step, the config check and the exports (Hugging Face as
``MistralForCausalLM`` with equal logits; GGUF refused: llama.cpp's ``llama`` architecture has no
window)."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import pytest
import torch

from causette.cli import main as cli_main
from causette.config import load_config
from causette.errors import CausetteError
from causette.inference.decode_step import DecodeStep
from causette.model import Transformer
from causette.model.config import ModelConfig
from test_export import FRENCH, greedy, make_checkpoint, needs_transformers, tok, transformers  # noqa: F401

SIZE = dict(vocab_size=96, block_size=32, n_layer=2, n_head=4, n_embd=64, init_std=0.1)


def model_with(window, seed: int = 0, **over) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(ModelConfig(**{**SIZE, **over, "sliding_window": window})).eval()


def ids(T: int = 32, B: int = 2) -> torch.Tensor:
    return torch.randint(0, SIZE["vocab_size"], (B, T), generator=torch.Generator().manual_seed(1))


def band_attention(attn, x: torch.Tensor, window: int) -> torch.Tensor:
    """One attention layer by hand, no RoPE: scores, band mask ``i-window < j <= i``, softmax."""
    B, T, _ = x.shape
    H, KV, D = attn.n_head, attn.n_kv_head, attn.head_dim
    q, k, v = attn.qkv(x).split([H * D, KV * D, KV * D], dim=-1)
    q = q.view(B, T, H, D).transpose(1, 2)
    k = k.view(B, T, KV, D).transpose(1, 2).repeat_interleave(H // KV, dim=1)
    v = v.view(B, T, KV, D).transpose(1, 2).repeat_interleave(H // KV, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)
    for i in range(T):
        for j in range(T):
            if not (i - window < j <= i):
                scores[:, :, i, j] = float("-inf")
    y = torch.softmax(scores, dim=-1) @ v
    return attn.proj(y.transpose(1, 2).reshape(B, T, H * D))


@pytest.mark.parametrize("window,kv", [(1, 4), (4, 4), (5, 2), (31, 1)])
@torch.no_grad()
def test_attention_equals_a_band_mask_written_by_hand(window, kv):
    model = model_with(window, pos="learned", n_kv_head=kv)  # no RoPE inside attention
    attn = model.blocks[0].attn
    x = torch.randn(2, 32, SIZE["n_embd"], generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(attn(x), band_attention(attn, x, window), atol=1e-5, rtol=0)


@torch.no_grad()
def test_a_window_that_covers_the_context_gives_exactly_full_attention():
    full = model_with(None)
    for window in (32, 100):  # block_size, and more
        model = model_with(window)
        assert torch.equal(model.logits(ids()), full.logits(ids()))
    assert not torch.allclose(model_with(8).logits(ids()), full.logits(ids()), atol=1e-3)


@pytest.mark.parametrize("chunks", [[32], [7, 12, 13], [1] * 32, [20] + [1] * 12])
@torch.no_grad()
def test_kv_cache_prefill_chunks_and_decoding_equal_full_recompute(chunks):
    model = model_with(6, n_kv_head=2)
    idx = ids()
    want = model.logits(idx)
    cache, got, start = model.new_cache(2), [], 0
    for n in chunks:
        got.append(model.logits(idx[:, start : start + n], cache=cache))
        start += n
    torch.testing.assert_close(torch.cat(got, 1), want, atol=1e-5, rtol=0)


@torch.no_grad()
def test_greedy_generation_with_the_cache_equals_recompute_without(tok):  # noqa: F811
    from causette.inference.engine import Engine
    from causette.inference.sampling import SamplingParams

    torch.manual_seed(0)
    cfg = ModelConfig(**{**SIZE, "vocab_size": tok.vocab_size, "block_size": 64, "init_std": 0.3}, sliding_window=5)
    model = Transformer(cfg).eval()
    prompt = tok.encode(FRENCH[0])[:12]
    params = SamplingParams(temperature=0.0, max_new_tokens=30, stop_token_ids=(), seed=0)
    [g] = Engine(model, tok).generate([prompt], params)
    seq = list(prompt)
    for _ in range(30):  # no cache: the whole sequence again at every step
        seq.append(int(model.logits(torch.tensor([seq]))[0, -1].argmax()))
    assert g.token_ids == seq[len(prompt) :]


@pytest.mark.parametrize("options", [{}, {"matvec": True}])
@torch.no_grad()
def test_static_decode_step_equals_eager_each_row_at_its_own_position(options):
    model = model_with(5, n_kv_head=2)
    step = DecodeStep(model, **options)
    rows = [ids(3, 1)[0].tolist(), ids(11, 1)[0].tolist(), ids(7, 1)[0].tolist()]
    cache = model.new_cache(len(rows))
    nxt, pos = [], []
    for i, p in enumerate(rows):
        logits = model.logits(torch.tensor([p]), cache=cache.rows(i, i + 1), last_only=True)[0, -1]
        nxt.append(int(logits.argmax()))
        pos.append(len(p))
    for _ in range(12):
        got = step(torch.tensor(nxt), torch.tensor(pos), cache.k, cache.v)
        for i, p in enumerate(rows):
            p.append(nxt[i])
            want = model.logits(torch.tensor([p]))[0, -1]
            assert (got[i] - want).abs().max() < 1e-4
        nxt = [int(t) for t in got.argmax(-1)]
        pos = [x + 1 for x in pos]


def test_config_refuses_a_window_below_one():
    for bad in (0, -3):
        with pytest.raises(ValueError, match="sliding_window must be at least 1"):
            ModelConfig(sliding_window=bad).validate()
    ModelConfig(sliding_window=1).validate()
    assert load_config("model/llama", ["model.sliding_window=64"]).model.sliding_window == 64
    assert load_config("model/llama", []).model.sliding_window is None


def test_training_backward_runs_with_a_window():
    model = model_with(4).train()
    idx = ids()
    loss = model.loss(idx[:, :-1], idx[:, 1:])
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


@needs_transformers
@torch.no_grad()
def test_model_equals_transformers_mistral():
    from causette.model import hf_reference as hf_ref

    model = model_with(5, n_kv_head=2)
    hf = transformers.MistralForCausalLM(transformers.MistralConfig(**hf_ref.mistral_config(model.cfg))).eval()
    hf.load_state_dict(hf_ref.llama_state_dict(model), strict=True)
    torch.testing.assert_close(model.logits(ids()), hf(ids()).logits, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="no sliding window"):
        hf_ref.llama_config(model.cfg)


@needs_transformers
def test_hf_export_is_mistral_with_equal_logits_and_generation(tmp_path, tok):  # noqa: F811
    os.environ["HF_HUB_OFFLINE"] = "1"
    model = make_checkpoint(tmp_path / "ckpt", tok, overrides=["model.n_kv_head=2", "model.sliding_window=6"])
    assert cli_main(["export", "hf", str(tmp_path / "ckpt"), str(tmp_path / "out")]) == 0
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["model_type"] == "mistral" and cfg["sliding_window"] == 6
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    assert type(hf).__name__ == "MistralForCausalLM"
    x = torch.tensor([tok.encode(FRENCH[0] + FRENCH[1])[:64]])
    with torch.no_grad():
        expected, got = hf(x).logits, model(x)[0]
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    prompt = tok.encode(FRENCH[0])[:12]
    with torch.no_grad():
        gen = hf.generate(torch.tensor([prompt]), max_new_tokens=20, do_sample=False)
    stops = sorted(tok.special_ids)
    theirs = gen[0, len(prompt) :].tolist()
    if theirs and theirs[-1] in stops:
        theirs = theirs[:-1]
    assert theirs == greedy(model, tok, prompt, 20, stops)


def test_gguf_export_refuses_a_window_in_one_line(tmp_path, tok):  # noqa: F811
    from causette.export.gguf import export_gguf

    make_checkpoint(tmp_path / "ckpt", tok, overrides=["model.sliding_window=6"])
    with pytest.raises(CausetteError, match=r"sliding_window=6 \(Llama has no sliding-window attention\)"):
        export_gguf(tmp_path / "ckpt", tmp_path / "m.gguf")
    assert not (tmp_path / "m.gguf").exists()


def test_gpt2_family_with_a_window_is_refused_for_hf(tmp_path, tok):  # noqa: F811
    from causette.export.hf import hf_architecture

    cfg = load_config("model/gpt2", ["model.sliding_window=6"]).model
    with pytest.raises(CausetteError, match="sliding_window=6"):
        hf_architecture(cfg)
    assert hf_architecture(dataclasses.replace(cfg, sliding_window=None)) == "gpt2"


def test_default_path_builds_no_mask(monkeypatch):
    """``sliding_window: null``: the attention never calls the window code (same speed as before)."""
    from causette.model.layers import CausalSelfAttention

    called = []
    monkeypatch.setattr(CausalSelfAttention, "_sliding_window", lambda *a: called.append(1))
    model_with(None).logits(ids())
    assert not called


def test_flops_count_at_most_the_window():
    from causette.model.counting import flops_per_token

    full, win = ModelConfig(**SIZE), ModelConfig(**SIZE, sliding_window=8)
    per_key = 12 * SIZE["n_layer"] * SIZE["n_embd"]  # training: 3 × 4·L·H·hd per key
    assert flops_per_token(full) - flops_per_token(win) == per_key * (32 - 8)
    assert flops_per_token(win, seq_len=4) == flops_per_token(full, seq_len=4)
